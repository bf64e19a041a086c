// Building the page's DOM without ever parsing strings as HTML, and the small helpers the
// panels share (formats, form fields, links to the page's routes, timers).
//
// Document text, file names, chunk text and model output are untrusted: they reach the DOM
// only as text nodes (`textContent`), never through `innerHTML`. `h()` is the one way the
// page creates elements; `snippet()` turns the `<mark>` markers of keyword snippets into
// real <mark> elements around text nodes, so nothing else in a snippet can become markup.

/**
 * Creates an element.
 * attrs: `class`, `text` (textContent), `on<event>` (a listener function),
 * `dataset` (an object), `hidden`/`disabled`/`checked`/`selected` (booleans, set as
 * properties), `value` (property), anything else as an attribute (null/undefined/false skip).
 * children: nodes, strings (text nodes), numbers, arrays (flattened), null/undefined/false (skipped).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs ?? {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name === 'class') el.className = value;
    else if (name === 'text') el.textContent = String(value);
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2).toLowerCase(), value);
    } else if (['hidden', 'disabled', 'checked', 'selected', 'value', 'multiple'].includes(name)) {
      el[name] = value;
    } else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

/** Appends children (see `h`) to `el`. */
export function append(el, children) {
  for (const child of [children].flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Removes every child of `el`, then appends `children`. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/**
 * A keyword snippet (`... the <mark>brass</mark> lens ...`) as a fragment: text nodes and
 * <mark> elements. Only the exact markers `<mark>` and `</mark>` become elements; any
 * other `<...>` in the text stays text.
 */
export function snippet(text) {
  const fragment = document.createDocumentFragment();
  let inside = false;
  for (const part of String(text).split(/(<mark>|<\/mark>)/)) {
    if (part === '<mark>') inside = true;
    else if (part === '</mark>') inside = false;
    else if (part) fragment.append(inside ? h('mark', { text: part }) : document.createTextNode(part));
  }
  return fragment;
}

/** 1536 → "1.5 KiB". */
export function bytes(n) {
  if (n === null || n === undefined || Number.isNaN(n)) return '–';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = Number(n);
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${value.toFixed(unit === 0 ? 0 : 1)} ${units[unit]}`;
}

/** An RFC 3339 timestamp in the reader's locale. */
export function time(iso) {
  if (!iso) return '–';
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? String(iso) : date.toLocaleString();
}

/** Seconds as "1 h 2 min", "3 min 4 s", "5 s". */
export function duration(secs) {
  const s = Math.round(Number(secs) || 0);
  if (s >= 3600) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${s % 60} s`;
  return `${s} s`;
}

/** A labelled form field: <div class="field"><label>…</label>control<p class="field-error"></p></div>. */
export function field(label, control, hint) {
  if (!control.id) control.id = `f-${Math.random().toString(36).slice(2, 9)}`;
  const error = h('p', { class: 'field-error', id: `${control.id}-error`, 'aria-live': 'polite' });
  const help = hint ? h('p', { class: 'hint muted', id: `${control.id}-hint`, text: hint }) : null;
  control.setAttribute('aria-describedby', help ? `${help.id} ${error.id}` : error.id);
  return h('div', { class: 'field' }, h('label', { for: control.id, text: label }), control, help, error);
}

/**
 * `[[term, value, class?], …]` as a `<dl class="facts">`: null entries are left out, a value
 * may be a node, and an absent one (null, undefined, '') shows as "–".
 */
export function facts(pairs) {
  return h('dl', { class: 'facts' }, pairs.filter(Boolean).map(([term, value, cls]) => [
    h('dt', { text: term }),
    h('dd', { class: cls }, value === null || value === undefined || value === '' ? '–' : value)]));
}

/** The page's link to a document (`#/documents/<id>`), marking one of its chunks when given. */
export function documentHref(id, chunkId) {
  const chunk = chunkId ? `?chunk=${encodeURIComponent(chunkId)}` : '';
  return `#/documents/${encodeURIComponent(id)}${chunk}`;
}

/** Puts `message` (or nothing) in the error line of the field around `control`. */
export function fieldError(control, message) {
  const error = document.getElementById(`${control.id}-error`);
  if (error) error.textContent = message ?? '';
  control.toggleAttribute('aria-invalid', Boolean(message));
}

/**
 * Runs `rebuild()`, which replaces the items inside `container`, keeping the keyboard focus
 * on the same control (its `data-action`) of the same item (the element whose dataset has
 * `key`, e.g. `documentId` for `data-document-id`). When that item is gone the focus goes
 * to `fallback`, if given, rather than to the page's body.
 */
export function keepingFocus(container, key, rebuild, fallback) {
  const active = document.activeElement;
  const inside = active && active !== container && container.contains(active) ? active : null;
  const attr = `data-${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  const id = inside?.closest(`[${attr}]`)?.getAttribute(attr);
  const action = inside?.dataset.action;
  rebuild();
  if (!inside) return;
  const item = id ? container.querySelector(`[${attr}="${CSS.escape(id)}"]`) : null;
  const target = action ? item?.querySelector(`[data-action="${CSS.escape(action)}"]`) : null;
  (target ?? fallback)?.focus();
}

/**
 * Disables `button` while `work()` runs and resolves to its result. A browser sends the
 * focus of a control it disables to the page's body, so a button that had the focus gets
 * it back afterwards (or `fallback()`'s element, when the button is no longer shown).
 */
export async function whileBusy(button, work, fallback) {
  const focused = document.activeElement === button;
  button.disabled = true;
  try {
    return await work();
  } finally {
    button.disabled = false;
    if (focused && (document.activeElement === document.body || document.activeElement === null)) {
      button.focus();
      if (document.activeElement !== button) fallback?.()?.focus();
    }
  }
}

/** Calls `fn` every `ms` (and once now) until the returned function is called. */
export function every(ms, fn) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    try { await fn(); } catch (err) { console.warn(err); }
    if (!stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

/**
 * The timers and requests of one rendering of a panel, all stopped when the reader leaves
 * it: `signal` aborts the requests, `after()` timers are cleared, `onStop()` callbacks run.
 */
export class Lifetime {
  constructor() {
    this.alive = true;
    this.controller = new AbortController();
    this.timers = new Set();
    this.stops = [];
  }

  get signal() { return this.controller.signal; }

  /** Runs `fn` once after `ms` unless the panel is left first; returns the timer. */
  after(ms, fn) {
    const timer = setTimeout(() => { this.timers.delete(timer); if (this.alive) fn(); }, ms);
    this.timers.add(timer);
    return timer;
  }

  cancel(timer) {
    clearTimeout(timer);
    this.timers.delete(timer);
  }

  onStop(fn) { this.stops.push(fn); }

  stop() {
    if (!this.alive) return;
    this.alive = false;
    this.controller.abort();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    for (const fn of this.stops) {
      try { fn(); } catch (err) { console.warn(err); }
    }
  }
}
