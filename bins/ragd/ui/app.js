// The page's shell: the router over `location.hash` and the server state in the header.
//
// Every panel is a URL (`#/documents`, `#/documents/<id>?chunk=<chunk id>`, `#/search?q=…`,
// `#/chat`, `#/chat/<session id>`, `#/models`, `#/system`), so back, forward and reload
// work. A panel module exports `render(main, params)`: it fills `main` and returns a function
// that stops what it started (timers, requests, streams) when the reader leaves the panel.
// `params` is `{path: [segments after the panel name], query: URLSearchParams}`. A hash that
// names no panel (a mistyped link) shows the documents.

import { get, showError, errorText } from './api.js';
import { h, replace, every } from './dom.js';
import * as documents from './documents.js';
import * as search from './search.js';
import * as chat from './chat.js';
import * as models from './models.js';
import * as system from './system.js';

const PANELS = { documents, search, chat, models, system };
const TITLES = { documents: 'Documents', search: 'Search', chat: 'Chat', models: 'Models', system: 'System' };

let leave = null;
let generation = 0;

/** `decodeURIComponent`, keeping a malformed escape (`%E0%A4%A`) as it is. */
function decode(segment) {
  try { return decodeURIComponent(segment); } catch { return segment; }
}

/** `#/chat/abc?x=1` → `{panel: 'chat', path: ['abc'], query}`. */
function parse(hash) {
  const [route, search = ''] = hash.replace(/^#\/?/, '').split('?');
  const [panel, ...path] = route.split('/').filter(Boolean).map(decode);
  return { panel: Object.hasOwn(PANELS, panel ?? '') ? panel : 'documents', path, query: new URLSearchParams(search) };
}

async function route() {
  const { panel, path, query } = parse(location.hash);
  generation += 1;
  const mine = generation;
  if (leave) {
    try { leave(); } catch (err) { console.warn(err); }
    leave = null;
  }
  for (const link of document.querySelectorAll('#nav a')) {
    if (link.dataset.panel === panel) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  document.title = `${TITLES[panel]} · ragd`;
  const main = document.getElementById('main');
  replace(main);
  main.dataset.panel = panel;
  try {
    const stop = await PANELS[panel].render(main, { path, query });
    // The reader may have moved on while the panel loaded.
    if (mine !== generation) { if (typeof stop === 'function') stop(); return; }
    leave = typeof stop === 'function' ? stop : null;
  } catch (err) {
    if (mine !== generation) return;
    showError(err, TITLES[panel]);
    replace(main, h('p', { class: 'load-error', role: 'alert',
      text: `The ${TITLES[panel]} panel could not be shown: ${errorText(err)}` }));
  }
}

/** The model and its state in the header, refreshed every 5 s and on every navigation. */
function watchServer() {
  const state = document.getElementById('server-state');
  let latest = 0;
  const refresh = async () => {
    // The poll and a navigation may overlap: only the newest answer is shown.
    const mine = ++latest;
    let text;
    try {
      const status = await get('/api/v1/models/status');
      const model = status.model?.model_id ?? status.model?.model;
      text = model ? `${model} · ${status.state}` : `no model · ${status.state}`;
    } catch (err) {
      text = { 0: 'server unreachable', 401: 'API key needed' }[err.status] ?? '';
    }
    if (mine === latest) state.textContent = text;
  };
  every(5000, refresh);
  window.addEventListener('hashchange', refresh);
}

/** The skip link moves the focus to the panel; followed as a link it would change the hash. */
function skipLink() {
  document.querySelector('a.skip')?.addEventListener('click', (event) => {
    event.preventDefault();
    document.getElementById('main').focus();
  });
}

window.addEventListener('hashchange', route);
skipLink();
if (!location.hash) history.replaceState(null, '', '#/documents');
route();
watchServer();
