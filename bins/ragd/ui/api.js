// Talking to ragd's REST API: JSON requests, uploads, server-sent events, the API key and
// readable errors.
//
// Every call goes through `request()`. When the server answers 401 the page asks for the
// API key (the dialog in index.html; one dialog however many requests wait), keeps it in
// sessionStorage (this tab only) and sends it as `Authorization: Bearer <key>` from then
// on. Closing the dialog without a key fails the waiting requests with a 401 `ApiError`;
// the page asks again at the next navigation. Errors become `ApiError`s whose message is
// the server's `{"error": {"code", "message"}}`, or a sentence about the status when the
// body is not that shape (a proxy's 502, a network failure).

import { h } from './dom.js';

const KEY_STORAGE = 'ragd.api_key';

/** An answer that was not 2xx, or no answer at all (`status` 0). */
export class ApiError extends Error {
  constructor(status, code, message, retryAfter) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

const STATUS_TEXT = {
  400: 'The request was not valid',
  401: 'An API key is needed',
  404: 'Not found',
  409: 'Conflict with the current state',
  413: 'Too large for this server',
  415: 'This type of file is not supported',
  429: 'The server is busy; try again shortly',
  500: 'The server failed',
  501: 'Not supported by this server',
  503: 'Not available right now',
  504: 'The server took too long',
};

function key() {
  return sessionStorage.getItem(KEY_STORAGE);
}

/** The open key dialog: `{promise, resolve, reject}`, or null. */
let asking = null;
/** The reader closed the dialog without a key: 401s fail at once until the next navigation. */
let declined = false;
let keyDialogWired = false;

window.addEventListener('hashchange', () => { declined = false; });

/** The dialog's listeners, added once: submit keeps the key, Cancel or Escape declines. */
function wireKeyDialog() {
  if (keyDialogWired) return;
  keyDialogWired = true;
  const dialog = document.getElementById('key-dialog');
  const form = document.getElementById('key-form');
  const input = document.getElementById('key-input');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const value = input.value.trim();
    if (!value) { input.focus(); return; }
    sessionStorage.setItem(KEY_STORAGE, value);
    input.value = '';
    dialog.close('key');
  });
  document.getElementById('key-cancel').addEventListener('click', () => dialog.close());
  dialog.addEventListener('close', () => {
    const pending = asking;
    asking = null;
    if (!pending) return;
    if (dialog.returnValue === 'key') pending.resolve();
    else {
      declined = true;
      pending.reject(new ApiError(401, 'unauthorized', STATUS_TEXT[401]));
    }
  });
}

/** Shows the key dialog (once, however many requests wait); resolves when a key is given. */
function askKey(wrong) {
  if (declined) return Promise.reject(new ApiError(401, 'unauthorized', STATUS_TEXT[401]));
  if (!asking) {
    wireKeyDialog();
    const dialog = document.getElementById('key-dialog');
    asking = {};
    asking.promise = new Promise((resolve, reject) => Object.assign(asking, { resolve, reject }));
    document.getElementById('key-error').textContent = wrong ? 'That key was not accepted.' : '';
    dialog.returnValue = '';
    if (!dialog.open) dialog.showModal();
    document.getElementById('key-input').focus();
  }
  return asking.promise;
}

async function errorOf(response) {
  let code = `http_${response.status}`;
  let message = STATUS_TEXT[response.status] ?? `The server answered ${response.status}`;
  try {
    const body = await response.json();
    if (body?.error?.message) {
      code = body.error.code ?? code;
      message = body.error.message;
    }
  } catch {
    // Not JSON: keep the sentence about the status.
  }
  const retry = response.headers.get('retry-after');
  if (response.status === 429 && retry) message += ` (retry in ${retry} s)`;
  return new ApiError(response.status, code, message, retry ? Number(retry) : undefined);
}

/**
 * Sends one request and returns the Response when it is 2xx; throws `ApiError` otherwise.
 * `body`: a plain object (sent as JSON) or FormData (sent as multipart).
 */
export async function request(method, path, body, { signal } = {}) {
  for (;;) {
    const headers = {};
    const current = key();
    if (current) headers.authorization = `Bearer ${current}`;
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers['content-type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let response;
    try {
      response = await fetch(path, { method, headers, body: payload, signal });
    } catch (err) {
      if (isAbort(err)) throw err;
      throw new ApiError(0, 'network', 'The server cannot be reached');
    }
    if (response.status === 401) {
      // A key given while this request was under way: send it again with that key.
      const now = key();
      if (now && now !== current) continue;
      // Ask (again, when the key we sent was refused), then send the same request again.
      if (current) sessionStorage.removeItem(KEY_STORAGE);
      await askKey(Boolean(current));
      continue;
    }
    if (!response.ok) throw await errorOf(response);
    return response;
  }
}

/** A JSON request; resolves to the parsed answer (null for 204). */
export async function api(method, path, body, options) {
  const response = await request(method, path, body, options);
  if (response.status === 204) return null;
  return response.json();
}

export const get = (path, options) => api('GET', path, undefined, options);
export const post = (path, body, options) => api('POST', path, body ?? {}, options);
export const put = (path, body, options) => api('PUT', path, body, options);
export const patch = (path, body, options) => api('PATCH', path, body, options);
export const del = (path, options) => api('DELETE', path, undefined, options);

/** Uploads files (multipart field `files`); resolves to `{documents: [...]}`. */
export function upload(files) {
  const form = new FormData();
  for (const file of files) form.append('files', file, file.name);
  return api('POST', '/api/v1/documents', form);
}

/**
 * POSTs JSON and reads the answer as server-sent events: yields `{event, data}` with
 * `data` parsed as JSON (the text itself when it is not JSON). Aborting `signal`, or
 * leaving the loop early, closes the connection (ragd then stops generating).
 */
export async function* events(path, body, { signal } = {}) {
  const response = await request('POST', path, body, { signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const parser = sseParser();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      yield* parser.push(value);
    }
    yield* parser.end();
  } finally {
    reader.cancel().catch(() => {});
  }
}

/**
 * The event-stream format, as text arrives: lines end with CRLF, LF or a lone CR (also when
 * a CRLF is split between two reads), `data:` lines of one event are joined with "\n",
 * comments (`:` keep-alives) and other fields are skipped. One liberty: an event still open
 * when the stream ends (no blank line after it) is delivered rather than dropped.
 */
function sseParser() {
  let buffer = '';
  let event = '';
  let data = [];
  const dispatch = () => {
    if (data.length === 0) { event = ''; return null; }
    const text = data.join('\n');
    let parsed = text;
    try { parsed = JSON.parse(text); } catch { /* keep the text */ }
    const out = { event: event || 'message', data: parsed };
    event = '';
    data = [];
    return out;
  };
  const field = (line) => {
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (name === 'event') event = value;
    else if (name === 'data') data.push(value);
  };
  function* lines(final) {
    for (;;) {
      const end = /\r\n|\r|\n/.exec(buffer);
      // A CR that ends the buffer may be the first half of a CRLF: wait for the next read.
      if (!end || (end[0] === '\r' && end.index === buffer.length - 1 && !final)) break;
      const line = buffer.slice(0, end.index);
      buffer = buffer.slice(end.index + end[0].length);
      if (line === '') {
        const out = dispatch();
        if (out) yield out;
      } else field(line);
    }
    if (final) {
      if (buffer) field(buffer);
      buffer = '';
      const out = dispatch();
      if (out) yield out;
    }
  }
  return {
    push(text) { buffer += text; return lines(false); },
    end() { return lines(true); },
  };
}

/** Shows a message in the corner of the page; errors stay until dismissed, others fade. */
export function notify(message, kind = 'error') {
  const box = document.getElementById('notices');
  const note = h('div', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('span', { class: 'notice-text', text: message }),
    h('button', { type: 'button', class: 'link', 'aria-label': 'Dismiss', text: '×',
      onclick: () => note.remove() }));
  box.append(note);
  // A few at a time: the oldest go first.
  while (box.children.length > 4) box.firstElementChild.remove();
  if (kind !== 'error') setTimeout(() => note.remove(), 5000);
  return note;
}

/** Whether `err` is the end of a request the page aborted itself (the reader left). */
export const isAbort = (err) => err?.name === 'AbortError';

/** The sentence to show for `err`: the server's message for API errors. */
export function errorText(err) {
  return String(err?.message ?? err);
}

/** Shows `err` as a notice: the server's message for API errors. */
export function showError(err, what) {
  if (isAbort(err)) return null;
  const text = errorText(err);
  return notify(what ? `${what}: ${text}` : text, 'error');
}
