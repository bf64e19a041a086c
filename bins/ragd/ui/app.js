// The page's shell: the router over `location.hash` and the server state in the header.
//
// Every panel is a URL (`#/documents`, `#/documents/<id>?chunk=<chunk id>`, `#/search?q=…`,
// `#/chat`, `#/chat/<session id>`, `#/models`, `#/system`), so back, forward and reload
// work. A panel module exports `render(main, params)`: it fills `main` and may return a
// function that stops what it started (timers, streams) when the reader leaves the panel.
// `params` is `{path: [segments after the panel name], query: URLSearchParams}`.

import { get, showError } from './api.js';
import { replace, every } from './dom.js';
import * as documents from './documents.js';
import * as search from './search.js';
import * as chat from './chat.js';
import * as models from './models.js';
import * as system from './system.js';

const PANELS = { documents, search, chat, models, system };
const TITLES = { documents: 'Documents', search: 'Search', chat: 'Chat', models: 'Models', system: 'System' };

let leave = null;
let generation = 0;

/** `#/chat/abc?x=1` → `{panel: 'chat', path: ['abc'], query}`. */
function parse(hash) {
  const [route, search = ''] = hash.replace(/^#\/?/, '').split('?');
  const [panel, ...path] = route.split('/').filter(Boolean).map(decodeURIComponent);
  return { panel: PANELS[panel] ? panel : 'documents', path, query: new URLSearchParams(search) };
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
    showError(err, TITLES[panel]);
  }
}

/** The model and its state in the header, refreshed every 5 s and on every navigation. */
function watchServer() {
  const state = document.getElementById('server-state');
  const refresh = async () => {
    try {
      const status = await get('/api/v1/models/status');
      const model = status.model?.model_id ?? status.model?.model;
      state.textContent = model ? `${model} · ${status.state}` : `no model · ${status.state}`;
    } catch (err) {
      state.textContent = err.status === 0 ? 'server unreachable' : '';
    }
  };
  every(5000, refresh);
  window.addEventListener('hashchange', refresh);
}

window.addEventListener('hashchange', route);
if (!location.hash) history.replaceState(null, '', '#/documents');
route();
watchServer();
