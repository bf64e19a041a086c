// Building the page's DOM without ever parsing strings as HTML.
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

/** Puts `message` (or nothing) in the error line of the field around `control`. */
export function fieldError(control, message) {
  const error = document.getElementById(`${control.id}-error`);
  if (error) error.textContent = message ?? '';
  control.toggleAttribute('aria-invalid', Boolean(message));
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
