// The models panel (`#/models`): which chat model is loaded and how its load goes, the models
// on disk, loading one (a local GGUF, a file on the Hugging Face hub, a safetensors folder or
// hub repo imported into GGUF, or a model of a remote OpenAI-compatible or Ollama server), unloading it, and the generation settings in force.
//
// The status card polls `GET /api/v1/models/status`: every second while a model downloads,
// is imported (converted, quantized), loads or unloads, every five seconds otherwise. The forms check nothing themselves: the
// server validates, and its message is shown under the field it names (or above the form
// when it names none). Values typed into number fields are sent as typed (as a string when
// they are not a number), so the server's message says what is wrong with them.

import { get, post, put, showError, errorText, isAbort } from './api.js';
import { h, append, replace, bytes, time, field, fieldError, facts, Lifetime } from './dom.js';

const API = '/api/v1/models';
/** States during which the status changes quickly. */
const BUSY = new Set(['downloading', 'converting', 'quantizing', 'loading', 'unloading']);
const FAST_MS = 1000;
const SLOW_MS = 5000;

export function render(main) {
  const life = new Lifetime();
  // `accepted` counts accepted loads and unloads: a status poll that was under way when one
  // was accepted answers the state before it, and is not shown.
  const panel = { life, accepted: 0 };
  const poller = poll(() => refreshStatus(panel));
  life.onStop(poller.stop);
  // A load or unload was accepted: show its status now and follow it closely.
  const started = (status) => {
    if (!life.alive) return;
    panel.accepted += 1;
    panel.state = status.state;
    panel.status.show(status);
    panel.available.mark(status);
    poller.now();
  };
  panel.status = statusCard(() => unloadModel(started));
  panel.available = availableCard((id) => loadAvailable(id, started));
  panel.load = loadForm(started);
  panel.settings = settingsForm(life);
  append(main, [
    h('h1', { text: 'Models' }),
    panel.status.card,
    panel.available.card,
    h('div', { class: 'models-forms' }, panel.load.card, panel.settings.card),
  ]);
  refreshAvailable(panel);
  panel.settings.reload();
  return () => life.stop();
}

// ---------------------------------------------------------------------------------------
// Polling

/**
 * Calls `fn` now and again after the delay (ms) it resolves to, until `stop()`; `now()`
 * asks for a call at once (after the running one, when one runs).
 */
function poll(fn) {
  let stopped = false;
  let running = false;
  let again = false;
  let timer = null;
  const tick = async () => {
    clearTimeout(timer);
    if (stopped) return;
    if (running) { again = true; return; }
    running = true;
    let delay = SLOW_MS;
    try { delay = await fn(); } catch { /* fn shows its own errors */ }
    running = false;
    if (stopped) return;
    if (again) { again = false; tick(); return; }
    timer = setTimeout(tick, delay);
  };
  tick();
  return { now: tick, stop: () => { stopped = true; clearTimeout(timer); } };
}

/** One status poll; resolves to the delay before the next. */
async function refreshStatus(panel) {
  const accepted = panel.accepted;
  let status;
  try {
    status = await get(`${API}/status`, { signal: panel.life.signal });
  } catch (err) {
    if (panel.life.alive && !isAbort(err)) panel.status.fail(err);
    return SLOW_MS;
  }
  if (!panel.life.alive) return SLOW_MS;
  if (accepted !== panel.accepted) return FAST_MS;
  const before = panel.state;
  panel.state = status.state;
  panel.status.show(status);
  panel.available.mark(status);
  // A load that just ended may have downloaded a model (now in the list) or changed settings.
  if (BUSY.has(before) && !BUSY.has(status.state)) {
    panel.load.settled();
    refreshAvailable(panel);
    if (!panel.settings.dirty()) panel.settings.reload();
  }
  return BUSY.has(status.state) ? FAST_MS : SLOW_MS;
}

// ---------------------------------------------------------------------------------------
// Status card

function statusCard(onUnload) {
  const state = h('span', { id: 'model-state', class: 'badge', 'aria-live': 'polite', text: '…' });
  const since = h('span', { id: 'model-since', class: 'muted' });
  // Focus goes here when Unload, focused, disables itself (the model is unloading).
  const title = h('h2', { id: 'model-status-title', tabindex: '-1', text: 'Chat model' });
  let unloading = false;
  const unload = h('button', { type: 'button', id: 'unload', class: 'danger', text: 'Unload',
    onclick: async () => {
      if (unloading) return;
      unloading = true;
      try { await onUnload(); } finally { unloading = false; }
    } });
  const error = h('p', { class: 'field-error', role: 'status' });
  const body = h('div', { class: 'model-status-body' }, h('p', { class: 'muted', text: 'Loading the status…' }));
  let shown = '';
  const card = h('section', { class: 'card', id: 'model-status', 'aria-labelledby': 'model-status-title' },
    h('div', { class: 'model-status-head' }, title, state, since,
      h('span', { class: 'grow' }), unload),
    error, body);
  return {
    card,
    unload,
    show(status) {
      if (state.textContent !== status.state) state.textContent = status.state;
      state.className = `badge ${status.state}`;
      since.textContent = status.since ? `since ${time(status.since)}` : '';
      const focused = document.activeElement === unload;
      unload.disabled = status.state === 'not_loaded' || status.state === 'unloading';
      if (focused && unload.disabled) title.focus();
      error.textContent = '';
      // Rebuilt only when it changed, so that a failure (an alert) is announced once.
      const key = JSON.stringify(status);
      if (key !== shown) replace(body, failure(status), download(status), importing(status), modelFacts(status.model));
      shown = key;
    },
    fail(err) { error.textContent = `Cannot read the model status: ${errorText(err)}`; },
  };
}

function failure(status) {
  if (status.state !== 'failed') return null;
  return h('p', { id: 'model-reason', class: 'model-reason', role: 'alert' },
    h('strong', { text: 'The load failed: ' }), status.reason ?? 'no reason given');
}

function download(status) {
  if (status.state !== 'downloading') return null;
  const known = Number(status.total_bytes) > 0;
  const bar = h('progress', { id: 'model-progress', max: '100', 'aria-labelledby': 'model-progress-text' });
  if (known) bar.value = status.percent ?? 0;
  const text = known
    ? `Downloading: ${status.percent ?? 0} % · ${bytes(status.downloaded_bytes)} of ${bytes(status.total_bytes)}`
    : `Downloading: ${bytes(status.downloaded_bytes)} so far (size not announced)`;
  return h('div', { class: 'model-download' }, h('p', { id: 'model-progress-text', text }), bar);
}

/** The progress of an import: converting to GGUF, then quantizing. */
function importing(status) {
  const label = { converting: 'Converting to GGUF', quantizing: 'Quantizing' }[status.state];
  if (!label) return null;
  const bar = h('progress', { id: 'model-progress', max: '100', 'aria-labelledby': 'model-progress-text' });
  bar.value = status.percent ?? 0;
  const text = `${label}: ${status.percent ?? 0} %`;
  return h('div', { class: 'model-download' }, h('p', { id: 'model-progress-text', text }), bar);
}

function modelFacts(model) {
  if (!model) {
    return h('p', { class: 'muted', text: 'No model is loaded. Load one from the list or with the form below.' });
  }
  const name = model.model_id ?? model.model;
  return facts([
    ['Model', name],
    model.model !== name && model.model !== model.path ? ['Requested as', model.model] : null,
    ['Backend', model.backend],
    model.base_url ? ['Base URL', model.base_url, 'mono'] : null,
    model.device ? ['Device', model.device] : null,
    // Known once the model has loaded (context length) or for local files (size, path).
    model.context_length != null ? ['Context length', `${model.context_length.toLocaleString()} tokens`] : null,
    model.size_bytes != null ? ['Size', bytes(model.size_bytes)] : null,
    model.path ? ['Path', model.path, 'mono'] : null,
    model.quantization ? ['Quantization', model.quantization] : null,
    model.imported_from ? ['Imported from', model.imported_from, 'mono'] : null,
  ]);
}

async function unloadModel(started) {
  try {
    started(await post(`${API}/unload`));
  } catch (err) {
    showError(err, 'Unload');
  }
}

// ---------------------------------------------------------------------------------------
// Models on disk

function availableCard(onLoad) {
  const tbody = h('tbody', {}, h('tr', {}, h('td', { colspan: '6', class: 'muted', text: 'Looking for models…' })));
  const options = h('datalist', { id: 'load-model-options' });
  const rows = new Map();
  const table = h('table', { id: 'models-available', 'aria-labelledby': 'models-available-title' },
    h('thead', {}, h('tr', {}, ['Model', 'Source', 'Format', 'Size', 'Revision', 'Action'].map((name) =>
      h('th', { scope: 'col', class: { Size: 'num', Source: 'optional-xs', Format: 'optional', Revision: 'optional' }[name] },
        name === 'Action' ? h('span', { class: 'visually-hidden', text: name }) : name)))),
    tbody);
  const card = h('section', { class: 'card', 'aria-labelledby': 'models-available-title' },
    h('h2', { id: 'models-available-title', text: 'Models on disk' }),
    h('p', { class: 'muted hint', text: 'The models folder, the Hugging Face cache and the bundled model.' }),
    h('div', { class: 'table-wrap' }, table), options);
  let current = null;
  const mark = (status) => {
    current = status;
    for (const { row, model, badge } of rows.values()) {
      const inUse = isCurrent(model, status);
      row.classList.toggle('current', inUse);
      badge.textContent = inUse ? status.state : '';
      badge.className = inUse ? `badge ${status.state}` : 'badge hidden';
    }
  };
  return {
    card,
    mark,
    show(models) {
      // Keep the keyboard focus on the same row's button when the list is rebuilt.
      const focused = document.activeElement?.closest?.('#models-available tr')?.dataset.modelId;
      rows.clear();
      replace(tbody, models.length ? models.map((model) => {
        const entry = modelRow(model, onLoad);
        rows.set(model.id, entry);
        return entry.row;
      }) : h('tr', {}, h('td', { colspan: '6', class: 'muted', text: 'No models found on disk.' })));
      replace(options, models.map((model) => h('option', { value: model.id })));
      if (current) mark(current);
      if (focused) rows.get(focused)?.button.focus();
    },
    fail(err) {
      replace(tbody, h('tr', {}, h('td', { colspan: '6', class: 'field-error', text: `Cannot list the models: ${errorText(err)}` })));
    },
  };
}

function modelRow(model, onLoad) {
  const badge = h('span', { class: 'badge hidden' });
  const button = h('button', { type: 'button', text: 'Load', 'aria-label': `Load ${model.id}` });
  let sending = false;
  button.addEventListener('click', async () => {
    if (sending) return;
    sending = true;
    try { await onLoad(model.id); } finally { sending = false; }
  });
  if (model.unsupported) {
    // A Hugging Face folder ragd cannot import: say why instead of offering a load that fails.
    button.disabled = true;
    button.title = model.unsupported;
    badge.textContent = 'cannot import';
    badge.title = model.unsupported;
    badge.classList.remove('hidden');
    badge.classList.add('failed');
  }
  const revision = model.revision ?? '';
  const row = h('tr', { dataset: { modelId: model.id } },
    h('td', { class: 'model-id' }, h('span', { class: 'mono', title: model.path, text: model.id }), ' ', badge),
    h('td', { class: 'optional-xs', text: model.source }),
    h('td', { class: 'optional', text: model.format }),
    h('td', { class: 'num', text: bytes(model.size_bytes) }),
    h('td', { class: 'mono optional', title: revision || null, text: revision ? revision.slice(0, 12) : '–' }),
    h('td', { class: 'row-actions' }, button));
  return { row, model, badge, button };
}

function isCurrent(model, status) {
  const loaded = status?.model;
  if (!loaded || status.state === 'not_loaded' || loaded.backend !== 'local') return false;
  return loaded.path === model.path || loaded.model === model.id || loaded.model === model.path;
}

async function refreshAvailable(panel) {
  try {
    const answer = await get(`${API}/available`, { signal: panel.life.signal });
    if (panel.life.alive) panel.available.show(answer.models ?? []);
  } catch (err) {
    if (panel.life.alive && !isAbort(err)) panel.available.fail(err);
  }
}

async function loadAvailable(id, started) {
  try {
    started(await post(`${API}/load`, { backend: 'local', model: id }));
  } catch (err) {
    showError(err, `Load ${id}`);
  }
}

// ---------------------------------------------------------------------------------------
// Load form

const MODEL_HINTS = {
  local: 'An id from the list, a path to a GGUF file or a Hugging Face safetensors folder, a hub file org/name/file.gguf, or a hub repo org/name (downloaded when not cached; folders and repos are imported into GGUF once).',
  remote: "The remote server's model name; empty: the configured default, else the first model an OpenAI-compatible server lists.",
};

function loadForm(started) {
  const c = loadControls();
  const error = h('p', { id: 'load-error', class: 'field-error', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', id: 'load-submit', class: 'primary', text: 'Load model' });
  const modelField = field('Model', c.model, MODEL_HINTS.local);
  const hub = h('fieldset', { class: 'load-hub' },
    h('legend', { text: 'Or a file of a Hugging Face hub repo' }),
    h('p', { class: 'hint muted', text: 'Used instead of the model when the repo is filled in.' }),
    h('div', { class: 'form-grid' },
      field('Repo', c.hubRepo), field('File', c.hubFile), field('Revision', c.hubRevision, 'Branch, tag or commit; default main.')));
  const local = [hub, field('Device', c.device),
    field('Quantization', c.quantization, 'For safetensors folders and repos: how the import stores the weights.')];
  const remote = [field('Base URL', c.baseUrl, "Empty: the configured default, else the preset's usual address."), field('API key', c.apiKey, 'OpenAI-compatible servers that need one.')];
  const form = h('form', { id: 'load-form', novalidate: true, 'aria-labelledby': 'load-title' },
    error,
    h('div', { class: 'form-grid' }, field('Backend', c.backend), modelField),
    hub,
    h('div', { class: 'form-grid' }, remote, field('Context length', c.contextLength, "Tokens; empty: the model's own."), local[1], local[2]),
    h('div', { class: 'actions' }, submit));
  const showBackend = () => {
    const isLocal = c.backend.value === 'local';
    for (const el of local) el.classList.toggle('hidden', !isLocal);
    for (const el of remote) el.classList.toggle('hidden', isLocal);
    modelField.querySelector('.hint').textContent = isLocal ? MODEL_HINTS.local : MODEL_HINTS.remote;
    if (isLocal) c.model.setAttribute('list', 'load-model-options');
    else c.model.removeAttribute('list');
  };
  c.backend.addEventListener('change', showBackend);
  clearOnInput(Object.values(c));
  let sending = false;
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    if (sending) return;
    sending = true;
    form.setAttribute('aria-busy', 'true');
    clearLoadErrors(c, error);
    try {
      const status = await post(`${API}/load`, loadBody(c));
      started(status);
    } catch (err) {
      showLoadError(err, c, error);
    } finally {
      sending = false;
      form.removeAttribute('aria-busy');
    }
  });
  showBackend();
  const card = h('section', { class: 'card', 'aria-labelledby': 'load-title' },
    h('h2', { id: 'load-title', text: 'Load a model' }), form);
  return {
    card,
    /** A load or unload ended: a conflict reported above the form is over. */
    settled() { if (error.dataset.conflict) { error.textContent = ''; delete error.dataset.conflict; } },
  };
}

function loadControls() {
  const text = (id, attrs = {}) => h('input', { id, type: 'text', autocomplete: 'off', spellcheck: 'false', ...attrs });
  return {
    backend: h('select', { id: 'load-backend', name: 'backend' },
      h('option', { value: 'local', text: 'local (a GGUF file, in-process)' }),
      h('option', { value: 'openai', text: 'openai (OpenAI-compatible server)' }),
      h('option', { value: 'ollama', text: 'ollama (Ollama server)' }),
      h('option', { value: 'vllm', text: 'vllm (vLLM server, :8000)' }),
      h('option', { value: 'llamacpp', text: 'llamacpp (llama-server, :8080)' }),
      h('option', { value: 'lmstudio', text: 'lmstudio (LM Studio, :1234)' }),
      h('option', { value: 'instructlab', text: 'instructlab (ilab model serve, :8000)' })),
    model: text('load-model', { name: 'model', list: 'load-model-options' }),
    hubRepo: text('load-hub-repo', { name: 'hub_repo', placeholder: 'org/name' }),
    hubFile: text('load-hub-file', { name: 'hub_file', placeholder: 'model.Q4_K_M.gguf' }),
    hubRevision: text('load-hub-revision', { name: 'hub_revision', placeholder: 'main' }),
    baseUrl: text('load-base-url', { name: 'base_url', type: 'url' }),
    apiKey: text('load-api-key', { name: 'api_key', type: 'password' }),
    contextLength: text('load-context-length', { name: 'context_length', inputmode: 'numeric' }),
    device: h('select', { id: 'load-device', name: 'device' },
      h('option', { value: 'auto', text: 'auto (server default: cpu)' }),
      h('option', { value: 'cpu', text: 'cpu' }),
      h('option', { value: 'cuda', text: 'cuda (all layers on the GPU)' })),
    quantization: h('select', { id: 'load-quantization', name: 'quantization' },
      h('option', { value: 'none', text: 'none (F16, as published)' }),
      h('option', { value: 'q8_0', text: 'q8_0 (8-bit, half the size)' }),
      h('option', { value: 'q4_k_m', text: 'q4_k_m (4-bit, about a third)' })),
  };
}

/** The `POST /load` body the form describes; empty fields are left out. */
function loadBody(c) {
  const backend = c.backend.value;
  const body = { backend };
  const isLocal = backend === 'local';
  const repo = c.hubRepo.value.trim();
  if (isLocal && repo) {
    body.hub = { repo, file: c.hubFile.value.trim() };
    if (c.hubRevision.value.trim()) body.hub.revision = c.hubRevision.value.trim();
  } else if (c.model.value.trim()) {
    body.model = c.model.value.trim();
  }
  if (!isLocal && c.baseUrl.value.trim()) body.base_url = c.baseUrl.value.trim();
  if (!isLocal && c.apiKey.value) body.api_key = c.apiKey.value;
  if (c.contextLength.value.trim()) body.context_length = numeric(c.contextLength.value);
  if (isLocal && c.device.value !== 'auto') body.device = c.device.value;
  if (isLocal && c.quantization.value !== 'none') body.quantization = c.quantization.value;
  return body;
}

/**
 * Which control a load error is about, from the words of the server's message. The most
 * specific phrases come first: a message names the model (or a path) it refuses, and
 * that may contain any word.
 */
const LOAD_ERROR_FIELDS = [
  [/folders models may be loaded from|^cannot resolve /, 'model'],
  [/\bcontext_length\b|context window/, 'contextLength'],
  [/\bdevice\b/, 'device'],
  [/\bquantization\b|quantize/, 'quantization'],
  [/\bbase_url\b|base URL/i, 'baseUrl'],
  [/\bapi_key\b|API key/i, 'apiKey'],
  [/the repo id|\bhub\.repo\b/, 'hubRepo'],
  [/the revision|\bhub\.revision\b/, 'hubRevision'],
  [/the file path|\bhub\.file\b|not a GGUF file/, 'hubFile'],
  [/(^|: )backend\b|hub files load with the local backend|custom backends/, 'backend'],
  [/\bmodel\b|`hub`/, 'model'],
];

function showLoadError(err, c, error) {
  showError(err, 'Load');
  const message = errorText(err);
  // A conflict (409) is about the server's state, not about a field.
  const rule = err.status === 400 ? LOAD_ERROR_FIELDS.find(([pattern]) => pattern.test(message)) : null;
  let control = rule ? c[rule[1]] : null;
  // A hub file error names the model field when no hub repo was given.
  if (control === c.hubFile && !(c.backend.value === 'local' && c.hubRepo.value.trim())) control = c.model;
  if (control && !control.closest('.hidden')) {
    fieldError(control, message);
    control.focus();
  } else {
    error.textContent = message;
    if (err.status === 409) error.dataset.conflict = 'true';
  }
}

function clearLoadErrors(c, error) {
  error.textContent = '';
  delete error.dataset.conflict;
  for (const control of Object.values(c)) fieldError(control, null);
}

/** Clears a control's error once the reader changes it. */
function clearOnInput(controls) {
  for (const control of controls) {
    control.addEventListener('input', () => { if (control.hasAttribute('aria-invalid')) fieldError(control, null); });
  }
}

/**
 * A number field's text as JSON: a number when it is one (integers past 2^53 kept exact),
 * the text itself otherwise, so that the server's message says what is wrong with it.
 */
function numeric(text) {
  const value = text.trim();
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(value)) return value;
  const n = Number(value);
  if (/^\d+$/.test(value) && !Number.isSafeInteger(n) && typeof JSON.rawJSON === 'function') {
    return JSON.rawJSON(value);
  }
  return Number.isFinite(n) ? n : value;
}

// ---------------------------------------------------------------------------------------
// Generation settings

/** `[name, label, hint, inputmode]`: the number fields of the settings form. */
const SETTINGS = [
  ['temperature', 'Temperature', '0 (greedy) to 2.', 'decimal'],
  ['top_p', 'Top p', 'Nucleus sampling mass: above 0, at most 1.', 'decimal'],
  ['top_k', 'Top k', 'Keep the k most likely tokens; 0 turns it off; at most 1000.', 'numeric'],
  ['repetition_penalty', 'Repetition penalty', '0.5 to 2; 1 turns it off.', 'decimal'],
  ['max_new_tokens', 'Max new tokens', '1 to 32768.', 'numeric'],
  ['seed', 'Seed', 'Empty: a random seed for each reply.', 'numeric'],
];
const SETTING_NAMES = [...SETTINGS.map(([name]) => name), 'stop'];

function settingsForm(life) {
  const controls = settingsControls();
  const error = h('p', { id: 'settings-error', class: 'field-error', 'aria-live': 'polite' });
  const saved = h('span', { id: 'settings-saved', class: 'settings-saved', role: 'status' });
  const submit = h('button', { type: 'submit', id: 'settings-save', class: 'primary', text: 'Save settings' });
  const form = h('form', { id: 'settings-form', novalidate: true, 'aria-labelledby': 'settings-title' },
    error,
    h('div', { class: 'form-grid' }, SETTINGS.map(([name, label, hint]) => field(label, controls[name], hint))),
    field('Stop sequences', controls.stop, 'One per line; at most 8, each 1 to 64 bytes.'),
    h('div', { class: 'actions' }, saved, submit));
  const state = { shown: {}, savedTimer: null };
  const fill = (settings) => {
    for (const name of SETTING_NAMES) {
      state.shown[name] = settingText(name, settings[name]);
      controls[name].value = state.shown[name];
    }
  };
  const changed = () => SETTING_NAMES.filter((name) => controls[name].value !== state.shown[name]);
  clearOnInput(Object.values(controls));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    clearSettingsErrors(controls, error);
    const patch = Object.fromEntries(changed().map((name) => [name, settingValue(name, controls[name].value)]));
    try {
      fill(await put(`${API}/config`, patch));
      life.cancel(state.savedTimer);
      saved.textContent = 'Saved';
      state.savedTimer = life.after(4000, () => { saved.textContent = ''; });
    } catch (err) {
      showSettingsError(err, controls, error);
    }
  });
  const card = h('section', { class: 'card', 'aria-labelledby': 'settings-title' },
    h('h2', { id: 'settings-title', text: 'Generation settings' }),
    h('p', { class: 'hint muted', text: 'Used by every reply that does not set its own.' }),
    form);
  return {
    card,
    dirty: () => changed().length > 0,
    async reload() {
      try {
        fill(await get(`${API}/config`, { signal: life.signal }));
        error.textContent = '';
      } catch (err) {
        if (life.alive && !isAbort(err)) error.textContent = `Cannot read the settings: ${errorText(err)}`;
      }
    },
  };
}

function settingsControls() {
  const controls = {};
  for (const [name, , , inputmode] of SETTINGS) {
    controls[name] = h('input', { id: `settings-${name}`, name, type: 'text', inputmode, autocomplete: 'off' });
  }
  controls.seed.placeholder = 'random';
  controls.stop = h('textarea', { id: 'settings-stop', name: 'stop', rows: '3', spellcheck: 'false' });
  return controls;
}

/** A setting as the form shows it. */
function settingText(name, value) {
  if (name === 'stop') return (value ?? []).join('\n');
  return value === null || value === undefined ? '' : String(value);
}

/** A field's text as the value `PUT /config` takes (see `numeric`); empty lines of stop are dropped. */
function settingValue(name, text) {
  if (name === 'stop') return text.split(/\r?\n/).filter((line) => line !== '');
  if (text.trim() === '') return null;
  return numeric(text);
}

/** The server's message under the field it names first, or above the form. */
function showSettingsError(err, controls, error) {
  const message = errorText(err);
  let best = null;
  for (const name of SETTING_NAMES) {
    const at = message.search(new RegExp(`\\b${name}\\b`));
    if (at >= 0 && (best === null || at < best.at)) best = { name, at };
  }
  if (err.status === 400 && best) {
    fieldError(controls[best.name], message);
    controls[best.name].focus();
  } else {
    error.textContent = message;
  }
}

function clearSettingsErrors(controls, error) {
  error.textContent = '';
  for (const control of Object.values(controls)) fieldError(control, null);
}
