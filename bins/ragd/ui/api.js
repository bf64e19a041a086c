// Talking to ragd's REST API: JSON requests, uploads, server-sent events, the API key and
// readable errors.
//
// Every call goes through `request()`. When the server answers 401 the page asks for the
// API key once (the dialog in index.html), keeps it in sessionStorage (this tab only) and
// sends it as `Authorization: Bearer <key>` from then on. Errors become `ApiError`s whose
// message is the server's `{"error": {"code", "message"}}`, or a sentence about the status
// when the body is not that shape (a proxy's 502, a network failure).

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

let asking = null;

/** Shows the key dialog (once, however many requests wait) and resolves when a key is given. */
function askKey(wrong) {
  if (!asking) {
    asking = new Promise((resolve) => {
      const dialog = document.getElementById('key-dialog');
      const form = document.getElementById('key-form');
      const input = document.getElementById('key-input');
      document.getElementById('key-error').textContent = wrong ? 'That key was not accepted.' : '';
      const submit = (event) => {
        event.preventDefault();
        const value = input.value.trim();
        if (!value) return;
        sessionStorage.setItem(KEY_STORAGE, value);
        form.removeEventListener('submit', submit);
        dialog.close();
        input.value = '';
        asking = null;
        resolve();
      };
      form.addEventListener('submit', submit);
      dialog.addEventListener('cancel', (event) => event.preventDefault());
      if (!dialog.open) dialog.showModal();
      input.focus();
    });
  }
  return asking;
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
      if (err.name === 'AbortError') throw err;
      throw new ApiError(0, 'network', 'The server cannot be reached');
    }
    if (response.status === 401) {
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
 * `data` parsed as JSON. Aborting `signal` closes the connection (ragd then stops
 * generating).
 */
export async function* events(path, body, { signal } = {}) {
  const response = await request('POST', path, body, { signal });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.search(/\r?\n\r?\n/)) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end).replace(/^\r?\n\r?\n/, '');
      let event = 'message';
      const data = [];
      for (const line of block.split(/\r?\n/)) {
        if (line.startsWith('event:')) event = line.slice(6).trim();
        else if (line.startsWith('data:')) data.push(line.slice(5).replace(/^ /, ''));
      }
      if (data.length === 0) continue;
      const text = data.join('\n');
      let parsed = text;
      try { parsed = JSON.parse(text); } catch { /* keep the text */ }
      yield { event, data: parsed };
    }
  }
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

/** Shows `err` as a notice: the server's message for API errors. */
export function showError(err, what) {
  if (err?.name === 'AbortError') return null;
  const text = err instanceof ApiError ? err.message : String(err?.message ?? err);
  return notify(what ? `${what}: ${text}` : text, 'error');
}
