// The chat panel: `#/chat` (the sessions) and `#/chat/<session id>` (one conversation).
//
// The sidebar lists sessions (filtered by free text and tag), creates them (a dialog with
// pickers of ready documents and of collections), renames and deletes them. The header of a
// conversation names the documents and collections its retrieval is restricted to. The conversation shows the stored
// history, oldest first, paged in 100 messages at a time, and sends new messages as
// server-sent events: `start` (the stored user message and the citations), `token` (text
// appended as it arrives), then `done` (the stored reply) or `error`. Stop aborts the
// request; ragd then stops generating and stores the partial reply marked cancelled.
//
// Message text, file names and session names are untrusted: they reach the DOM as text
// nodes only. The `[n]` markers in a reply become links to the cited chunk by splitting
// text, never by parsing HTML.

import { get, post, patch, del, events, notify, showError, errorText, isAbort } from './api.js';
import {
  h, append, replace, field, fieldError, time, facts, documentHref, keepingFocus, whileBusy, Lifetime,
} from './dom.js';

const PAGE = 100;
const SESSION_LIMIT = 100;
const FILTER_DELAY_MS = 250;
/** How long after Stop the page looks for the partial reply the server stored. */
const STOPPED_LOOKUP_MS = 700;

/** The sidebar's filters, kept while the reader moves between sessions. */
const filters = { q: '', tag: '' };

/**
 * Fills `main` with the chat panel and starts its loads; the returned function stops
 * streams, loads and timers. It returns at once, so that the router can stop the panel
 * even while the session is still loading.
 */
export function render(main, { path }) {
  const panel = createPanel(main, path[0] ?? null);
  append(main, [h('div', { class: 'split chat' }, sidebar(panel), panel.els.conversation),
    newSessionDialog(panel), renameDialog(panel), deleteDialog(panel)]);
  loadSessions(panel);
  if (panel.sessionId) loadConversation(panel);
  else showHint(panel);
  return () => close(panel);
}

/** The panel's state: its elements, the running reply, and its lifetime (loads, timers). */
function createPanel(main, sessionId) {
  return {
    main,
    sessionId,
    session: null,
    life: new Lifetime(),
    sessionLoads: 0,
    stream: null,
    oldest: 0,
    els: { conversation: h('section', { class: 'chat-main', 'aria-label': 'Conversation' }) },
  };
}

/** Leaving the panel: abort the reply being streamed, pending loads and timers. */
function close(panel) {
  panel.life.stop();
  panel.stream?.controller.abort();
  for (const dialog of panel.main.querySelectorAll('dialog[open]')) dialog.close();
}

const sessionPath = (id) => `/api/v1/sessions/${encodeURIComponent(id)}`;
const chunkHref = (c) => documentHref(c.document_id, c.chunk_id);

/** "a, b , ,c" → ["a", "b", "c"]. */
function splitTags(text) {
  return text.split(',').map((t) => t.trim()).filter(Boolean);
}

function tagList(tags) {
  return (tags ?? []).map((tag) => h('span', { class: 'tag', text: tag }));
}

// ---------------------------------------------------------------------------------------
// Sidebar: the sessions

function sidebar(panel) {
  const search = h('input', { id: 'session-search', type: 'text', value: filters.q,
    autocomplete: 'off', placeholder: 'Names, tags, messages' });
  const tag = h('input', { id: 'session-tag', type: 'text', value: filters.tag,
    autocomplete: 'off', placeholder: 'Exact tag' });
  const onFilter = () => {
    filters.q = search.value.trim();
    filters.tag = tag.value.trim();
    panel.life.cancel(panel.filterTimer);
    panel.filterTimer = panel.life.after(FILTER_DELAY_MS, () => loadSessions(panel));
  };
  search.addEventListener('input', onFilter);
  tag.addEventListener('input', onFilter);
  panel.els.search = search;
  panel.els.sessions = h('ul', { id: 'sessions', class: 'session-list', 'aria-label': 'Sessions' });
  panel.els.sessionCount = h('p', { class: 'muted session-count', 'aria-live': 'polite' });
  return h('aside', { class: 'card chat-sidebar', 'aria-labelledby': 'sessions-title' },
    h('div', { class: 'sidebar-head' },
      h('h2', { id: 'sessions-title', text: 'Sessions' }),
      h('button', { id: 'new-session', type: 'button', class: 'primary', text: 'New session',
        onclick: () => openNewSession(panel) })),
    h('div', { class: 'session-filters', role: 'search', 'aria-label': 'Filter sessions' },
      field('Search', search), field('Tag', tag)),
    panel.els.sessionCount,
    panel.els.sessions);
}

/**
 * Fetches the sessions matching the filters and lists them. Only the newest of overlapping
 * loads (typing in a filter, a reply's refresh) is shown; the keyboard focus stays on the
 * same control of the same session (on the search field when that session is gone).
 */
async function loadSessions(panel) {
  const mine = ++panel.sessionLoads;
  const query = new URLSearchParams({ limit: String(SESSION_LIMIT) });
  if (filters.q) query.set('q', filters.q);
  if (filters.tag) query.set('tag', filters.tag);
  try {
    const page = await get(`/api/v1/sessions?${query}`, { signal: panel.life.signal });
    if (!panel.life.alive || mine !== panel.sessionLoads) return;
    keepingFocus(panel.els.sessions, 'sessionId',
      () => replace(panel.els.sessions, page.items.map((s) => sessionItem(panel, s))), panel.els.search);
    panel.els.sessionCount.textContent = sessionCount(page);
  } catch (err) {
    if (!panel.life.alive || mine !== panel.sessionLoads || isAbort(err)) return;
    panel.els.sessionCount.textContent = `The sessions could not be listed: ${errorText(err)}`;
    showError(err, 'Sessions');
  }
}

function sessionCount(page) {
  const filtered = filters.q || filters.tag;
  if (page.total === 0) return filtered ? 'No session matches.' : 'No sessions yet.';
  if (page.total > page.items.length) {
    return `${page.items.length} of ${page.total} sessions, most recent first; refine the search for others.`;
  }
  return page.total === 1 ? '1 session' : `${page.total} sessions`;
}

function sessionItem(panel, session) {
  const current = session.id === panel.sessionId;
  return h('li', { dataset: { sessionId: session.id }, class: current ? 'current' : null,
    'aria-current': current ? 'true' : null },
  h('a', { class: 'session-name', href: `#/chat/${encodeURIComponent(session.id)}`, dataset: { action: 'open' },
    'aria-current': current ? 'page' : null, text: session.name }),
  h('div', { class: 'session-tags' }, tagList(session.tags)),
  h('div', { class: 'session-foot' },
    h('time', { class: 'muted', datetime: session.last_activity_at, text: time(session.last_activity_at) }),
    h('span', { class: 'session-actions' },
      h('button', { type: 'button', class: 'link rename-session', dataset: { action: 'rename' }, text: 'Rename',
        'aria-label': `Rename ${session.name}`, onclick: () => openRename(panel, session) }),
      h('button', { type: 'button', class: 'link delete-session', dataset: { action: 'delete' }, text: 'Delete',
        'aria-label': `Delete ${session.name}`, onclick: () => openDelete(panel, session) }))));
}

// ---------------------------------------------------------------------------------------
// Dialogs: new session, rename, delete

function newSessionDialog(panel) {
  const name = h('input', { id: 'new-session-name', name: 'name', type: 'text', maxlength: 200,
    autocomplete: 'off', placeholder: 'New session' });
  const tags = h('input', { id: 'new-session-tags', name: 'tags', type: 'text', autocomplete: 'off' });
  const picker = h('div', { class: 'doc-picker', id: 'new-session-documents' });
  const collectionPicker = h('div', { class: 'doc-picker', id: 'new-session-collections' });
  const error = h('p', { class: 'field-error', id: 'new-session-error', role: 'alert' });
  const dialog = h('dialog', { id: 'new-session-dialog', 'aria-labelledby': 'new-session-title' },
    h('form', { id: 'new-session-form', onsubmit: (e) => { e.preventDefault(); createSession(panel); } },
      h('h2', { id: 'new-session-title', text: 'New session' }),
      field('Name (optional)', name),
      h('p', { class: 'hint muted', id: 'new-session-scope-hint',
        text: 'Retrieval uses the checked documents and the documents of the checked collections; none checked: all documents.' }),
      h('fieldset', { class: 'doc-fieldset' },
        h('legend', { text: 'Documents' }),
        picker),
      h('fieldset', { class: 'doc-fieldset' },
        h('legend', { text: 'Collections' }),
        collectionPicker),
      field('Tags (optional)', tags, 'Separated by commas'),
      error,
      h('div', { class: 'actions' },
        h('button', { type: 'button', text: 'Cancel', onclick: () => dialog.close() }),
        h('button', { id: 'create-session', type: 'submit', class: 'primary', text: 'Create' }))));
  panel.els.newDialog = { dialog, name, tags, picker, collectionPicker, error };
  return dialog;
}

/** Opens the new-session dialog and loads the ready documents and the collections into it. */
async function openNewSession(panel) {
  const { dialog, name, tags, picker, collectionPicker, error } = panel.els.newDialog;
  name.value = '';
  tags.value = '';
  error.textContent = '';
  replace(picker, h('p', { class: 'muted', text: 'Loading documents…' }));
  replace(collectionPicker, h('p', { class: 'muted', text: 'Loading collections…' }));
  dialog.showModal();
  name.focus();
  loadCollectionChoices(panel, collectionPicker);
  try {
    const page = await get('/api/v1/documents?status=ready&limit=500', { signal: panel.life.signal });
    if (panel.life.alive) replace(picker, documentChoices(page.items));
  } catch (err) {
    if (panel.life.alive && !isAbort(err)) {
      replace(picker, h('p', { class: 'field-error', text: `Documents could not be listed: ${errorText(err)}` }));
    }
  }
}

function documentChoices(documents) {
  if (documents.length === 0) {
    return h('p', { class: 'muted', text: 'No ready documents yet; the session will use all documents.' });
  }
  const list = h('ul', { class: 'doc-choices' }, documents.map((d) => {
    const id = `doc-${d.id}`;
    return h('li', {},
      h('input', { type: 'checkbox', name: 'document', value: d.id, id }),
      h('label', { for: id, text: d.filename }));
  }));
  if (documents.length <= 8) return list;
  const filter = h('input', { id: 'new-session-doc-filter', type: 'search', autocomplete: 'off' });
  filter.addEventListener('input', () => {
    const needle = filter.value.trim().toLowerCase();
    for (const item of list.children) {
      item.hidden = Boolean(needle) && !item.textContent.toLowerCase().includes(needle);
    }
  });
  return [field('Filter documents', filter), list];
}

/** The collections as checkboxes, each labelled with its name and size. */
async function loadCollectionChoices(panel, picker) {
  let items;
  try {
    items = (await get('/api/v1/collections?limit=500', { signal: panel.life.signal })).items;
  } catch (err) {
    if (panel.life.alive && !isAbort(err)) {
      replace(picker, h('p', { class: 'field-error', text: `Collections could not be listed: ${errorText(err)}` }));
    }
    return;
  }
  if (!panel.life.alive) return;
  if (items.length === 0) {
    replace(picker, h('p', { class: 'muted', text: 'No collections yet; they are made in the Documents panel.' }));
    return;
  }
  replace(picker, h('ul', { class: 'doc-choices collection-choices' }, items.map((c) => {
    const id = `collection-${c.id}`;
    const count = `${c.document_count} ${c.document_count === 1 ? 'document' : 'documents'}`;
    return h('li', {},
      h('input', { type: 'checkbox', name: 'collection', value: c.id, id }),
      h('label', { for: id }, h('span', { class: 'collection-choice-name', text: c.name }),
        ' ', h('span', { class: 'muted', text: `(${count})` })));
  })));
}

async function createSession(panel) {
  const { dialog, name, tags, picker, collectionPicker, error } = panel.els.newDialog;
  const button = dialog.querySelector('#create-session');
  const body = {
    document_ids: [...picker.querySelectorAll('input[name=document]:checked')].map((c) => c.value),
    collection_ids: [...collectionPicker.querySelectorAll('input[name=collection]:checked')].map((c) => c.value),
    tags: splitTags(tags.value),
  };
  if (name.value.trim()) body.name = name.value.trim();
  if (button.disabled) return;
  error.textContent = '';
  await whileBusy(button, async () => {
    try {
      const session = await post('/api/v1/sessions', body);
      dialog.close();
      location.hash = `#/chat/${encodeURIComponent(session.id)}`;
    } catch (err) {
      error.textContent = errorText(err);
      showError(err, 'New session');
    }
  });
}

function renameDialog(panel) {
  const name = h('input', { id: 'rename-session-name', type: 'text', required: true, maxlength: 200,
    autocomplete: 'off' });
  const dialog = h('dialog', { id: 'rename-session-dialog', 'aria-labelledby': 'rename-session-title' },
    h('form', { onsubmit: (e) => { e.preventDefault(); renameSession(panel); } },
      h('h2', { id: 'rename-session-title', text: 'Rename session' }),
      field('Name', name),
      h('div', { class: 'actions' },
        h('button', { type: 'button', text: 'Cancel', onclick: () => dialog.close() }),
        h('button', { id: 'rename-session-save', type: 'submit', class: 'primary', text: 'Rename' }))));
  panel.els.renameDialog = { dialog, name, save: dialog.querySelector('#rename-session-save') };
  return dialog;
}

function openRename(panel, session) {
  const { dialog, name } = panel.els.renameDialog;
  panel.renaming = session;
  name.value = session.name;
  fieldError(name, null);
  dialog.showModal();
  name.select();
}

async function renameSession(panel) {
  const { dialog, name, save } = panel.els.renameDialog;
  const value = name.value.trim();
  if (!value) { fieldError(name, 'A name is needed.'); return; }
  if (save.disabled) return;
  await whileBusy(save, async () => {
    try {
      const session = await patch(sessionPath(panel.renaming.id), { name: value });
      dialog.close();
      if (!panel.life.alive) return;
      if (session.id === panel.sessionId && panel.els.header) showHeader(panel, session);
      await loadSessions(panel);
    } catch (err) {
      fieldError(name, errorText(err));
      showError(err, 'Rename');
    }
  });
}

function deleteDialog(panel) {
  const text = h('p', { id: 'delete-session-text' });
  const dialog = h('dialog', { id: 'delete-session-dialog', 'aria-labelledby': 'delete-session-title',
    'aria-describedby': 'delete-session-text' },
  h('form', { onsubmit: (e) => { e.preventDefault(); deleteSession(panel); } },
    h('h2', { id: 'delete-session-title', text: 'Delete session' }),
    text,
    h('div', { class: 'actions' },
      h('button', { id: 'delete-session-cancel', type: 'button', text: 'Cancel', onclick: () => dialog.close() }),
      h('button', { id: 'delete-session-confirm', type: 'submit', class: 'danger', text: 'Delete' }))));
  panel.els.deleteDialog = { dialog, text, confirm: dialog.querySelector('#delete-session-confirm') };
  return dialog;
}

function openDelete(panel, session) {
  const { dialog, text } = panel.els.deleteDialog;
  panel.deleting = session;
  text.textContent = `Delete “${session.name}” with its messages and memory? This cannot be undone.`;
  dialog.showModal();
  dialog.querySelector('#delete-session-cancel').focus();
}

async function deleteSession(panel) {
  const { dialog, confirm } = panel.els.deleteDialog;
  const session = panel.deleting;
  if (confirm.disabled) return;
  await whileBusy(confirm, async () => {
    try {
      await del(sessionPath(session.id));
      dialog.close();
      notify(`Deleted “${session.name}”.`, 'info');
      if (!panel.life.alive) return;
      if (session.id === panel.sessionId) location.hash = '#/chat';
      else await loadSessions(panel);
    } catch (err) {
      dialog.close();
      showError(err, 'Delete');
    }
  });
}

// ---------------------------------------------------------------------------------------
// The conversation

function showHint(panel) {
  replace(panel.els.conversation, h('div', { class: 'card chat-hint' },
    h('h1', { text: 'Chat' }),
    h('p', { text: 'Pick a session on the left, or create one with “New session”.' }),
    h('p', { class: 'muted', text: 'Answers are grounded in your documents and cite them; numbered sources link to the passages.' })));
}

/** Loads the session, the names of its documents and its history, then shows the composer. */
async function loadConversation(panel) {
  const signal = panel.life.signal;
  const box = panel.els.conversation;
  replace(box, h('p', { class: 'muted', text: 'Loading the session…' }));
  let session;
  try {
    [session, panel.documentNames, panel.collectionNames] = await Promise.all([
      get(sessionPath(panel.sessionId), { signal }),
      documentNames(signal),
      collectionNames(signal),
    ]);
  } catch (err) {
    if (panel.life.alive) showMissing(panel, err);
    return;
  }
  if (!panel.life.alive) return;
  panel.els.header = h('header', { class: 'card chat-header' });
  panel.els.messages = h('div', { id: 'messages', role: 'log', 'aria-label': 'Messages', tabindex: 0 });
  panel.els.earlier = h('button', { type: 'button', id: 'chat-earlier', class: 'link', hidden: true,
    text: 'Show earlier messages', onclick: () => loadEarlier(panel) });
  replace(box, panel.els.header, panel.els.earlier, panel.els.messages, composer(panel));
  showHeader(panel, session);
  await loadHistory(panel);
  // Stacked on phones: bring the conversation, below the sessions, into view.
  if (panel.life.alive && matchMedia('(max-width: 720px)').matches) box.scrollIntoView();
}

function showMissing(panel, err) {
  if (isAbort(err)) return;
  const text = err.status === 404 ? 'This session does not exist (any more).' : `The session could not be loaded: ${errorText(err)}`;
  replace(panel.els.conversation, h('div', { class: 'card chat-hint', role: 'alert' },
    h('p', { text }), h('p', {}, h('a', { href: '#/chat', text: 'Back to the sessions' }))));
}

/** Document id → file name, for the header (all documents, whatever their state). */
async function documentNames(signal) {
  try {
    const page = await get('/api/v1/documents?limit=500', { signal });
    return new Map(page.items.map((d) => [d.id, d.filename]));
  } catch (err) {
    if (isAbort(err)) throw err;
    return new Map();
  }
}

/** Collection id → name, for the header. */
async function collectionNames(signal) {
  try {
    const page = await get('/api/v1/collections?limit=500', { signal });
    return new Map(page.items.map((c) => [c.id, c.name]));
  } catch (err) {
    if (isAbort(err)) throw err;
    return new Map();
  }
}

function showHeader(panel, session) {
  panel.session = session;
  document.title = `${session.name} · Chat · ragd`;
  const names = panel.documentNames ?? new Map();
  const collectionIds = session.collection_ids ?? [];
  const everything = session.document_ids.length === 0 && collectionIds.length === 0;
  // With collections only, the documents line is left out: they are the collections'.
  const docs = everything
    ? h('span', { class: 'muted', text: 'all documents' })
    : session.document_ids.map((id) => h('a', { class: 'doc-name', href: `#/documents/${encodeURIComponent(id)}`,
      text: names.get(id) ?? `unknown document ${id.slice(0, 8)}` }));
  const collections = panel.collectionNames ?? new Map();
  const collectionLinks = collectionIds.map((id) => h('a', { class: 'doc-name collection-link',
    href: `#/documents?collection=${encodeURIComponent(id)}`, dataset: { collectionId: id },
    text: collections.get(id) ?? `unknown collection ${id.slice(0, 8)}` }));
  replace(panel.els.header,
    h('h1', { id: 'session-title', text: session.name }),
    everything || session.document_ids.length
      ? h('p', { class: 'session-docs' }, h('span', { class: 'muted', text: 'Documents: ' }), docs) : null,
    collectionIds.length
      ? h('p', { class: 'session-collections' }, h('span', { class: 'muted', text: 'Collections: ' }), collectionLinks) : null,
    session.tags.length ? h('p', { class: 'session-header-tags' }, h('span', { class: 'muted', text: 'Tags: ' }), tagList(session.tags)) : null,
    h('p', { class: 'muted session-model', text: `${session.model ?? 'default model'} · created ${time(session.created_at)}` }));
}

/** Re-reads the session (its tags and activity move after a reply) and the list. */
async function refreshSession(panel) {
  try {
    const session = await get(sessionPath(panel.sessionId), { signal: panel.life.signal });
    if (panel.life.alive) showHeader(panel, session);
  } catch (err) {
    if (panel.life.alive) console.warn(err);
  }
  if (panel.life.alive) await loadSessions(panel);
}

// ---------------------------------------------------------------------------------------
// History

const messagesPath = (panel, limit, offset) =>
  `${sessionPath(panel.sessionId)}/messages?limit=${limit}&offset=${offset}`;

/** The newest page of messages (at most 100), oldest first. */
async function loadHistory(panel) {
  const signal = panel.life.signal;
  try {
    let page = await get(messagesPath(panel, PAGE, 0), { signal });
    if (page.total > PAGE) page = await get(messagesPath(panel, PAGE, page.total - PAGE), { signal });
    if (!panel.life.alive) return;
    panel.oldest = page.offset;
    replace(panel.els.messages, page.items.map(messageElement));
    if (page.items.length === 0) panel.els.messages.append(emptyNote());
    panel.els.earlier.hidden = panel.oldest === 0;
    scrollToEnd(panel);
  } catch (err) {
    if (!panel.life.alive || isAbort(err)) return;
    // Said where the messages would be, not only in a notice that may be dismissed.
    replace(panel.els.messages, h('p', { class: 'load-error', role: 'alert',
      text: `The messages could not be loaded: ${errorText(err)}` }));
    showError(err, 'Messages');
  }
}

function emptyNote() {
  return h('p', { class: 'muted chat-empty', text: 'No messages yet. Ask something about your documents.' });
}

/**
 * Prepends the page before the oldest shown message, keeping the view where it was. The
 * button is disabled meanwhile (a second click would prepend the same page twice); when
 * it hides, at the first message, the focus goes to the messages.
 */
function loadEarlier(panel) {
  const button = panel.els.earlier;
  if (button.disabled) return null;
  return whileBusy(button, () => prependEarlier(panel), () => panel.els.messages);
}

async function prependEarlier(panel) {
  const offset = Math.max(0, panel.oldest - PAGE);
  const limit = panel.oldest - offset;
  if (limit <= 0) return;
  try {
    const page = await get(messagesPath(panel, limit, offset), { signal: panel.life.signal });
    if (!panel.life.alive) return;
    const box = panel.els.messages;
    const before = box.scrollHeight;
    box.prepend(...page.items.map(messageElement));
    box.scrollTop += box.scrollHeight - before;
    panel.oldest = offset;
    panel.els.earlier.hidden = offset === 0;
  } catch (err) {
    if (panel.life.alive) showError(err, 'Earlier messages');
  }
}

/** A stored message: text, citations (assistant), and its details on demand. */
function messageElement(message) {
  const assistant = message.role === 'assistant';
  const metadata = message.metadata ?? {};
  const citations = assistant ? metadata.citations ?? [] : [];
  const el = h('div', { class: `message ${assistant ? 'assistant' : 'user'}`,
    dataset: { messageId: message.id } },
  messageMeta(message),
  h('div', { class: 'content' }, assistant ? linkedText(message.content, citations) : message.content));
  if (assistant) append(el, [citationList(citations), replyDetails(message)]);
  if (metadata.cancelled) markStopped(el);
  return el;
}

function messageMeta(message) {
  return h('div', { class: 'message-meta muted' },
    h('span', { class: 'role', text: message.role === 'assistant' ? 'Assistant' : 'You' }),
    message.created_at ? h('time', { datetime: message.created_at, text: time(message.created_at) }) : null,
    message.metadata?.finish_reason === 'length' ? h('span', { class: 'badge', text: 'cut at the token limit' }) : null);
}

/** "[1] handbook.pdf, p. 3". */
function citationLabel(citation) {
  const page = citation.page === null || citation.page === undefined ? '' : `, p. ${citation.page}`;
  return `[${citation.number}] ${citation.filename}${page}`;
}

function citationList(citations) {
  if (!citations?.length) return null;
  return h('ol', { class: 'citations', 'aria-label': 'Sources' }, citations.map((c) =>
    h('li', { value: c.number },
      h('a', { class: 'citation', href: chunkHref(c), dataset: { chunkId: c.chunk_id }, text: citationLabel(c) }))));
}

/** Text with each `[n]` that names a citation made a link to its chunk: text nodes and <a>. */
function linkedText(text, citations) {
  const byNumber = new Map((citations ?? []).map((c) => [String(c.number), c]));
  const fragment = document.createDocumentFragment();
  const parts = String(text).split(/\[(\d+)\]/);
  parts.forEach((part, i) => {
    if (i % 2 === 0) {
      if (part) fragment.append(document.createTextNode(part));
      return;
    }
    const citation = byNumber.get(part);
    fragment.append(citation
      ? h('a', { class: 'citation-ref', href: chunkHref(citation), dataset: { chunkId: citation.chunk_id },
        title: citationLabel(citation), text: `[${part}]` })
      : document.createTextNode(`[${part}]`));
  });
  return fragment;
}

/** Milliseconds as "850 ms" or "1.23 s". */
function ms(value) {
  if (value === null || value === undefined) return null;
  return value < 1000 ? `${value} ms` : `${(value / 1000).toFixed(2)} s`;
}

function finishText(metadata) {
  if (metadata.cancelled) return 'stopped by the reader';
  return { stop: 'end of answer', length: 'token limit reached', stop_sequence: 'stop sequence' }[metadata.finish_reason] ?? null;
}

/** The label/value pairs of a reply's stored metadata; absent values are left out. */
function replyFacts(message) {
  const m = message.metadata ?? {};
  const usage = m.usage ?? {};
  const t = m.timings ?? {};
  const prompt = m.prompt ?? null;
  const settings = m.settings ?? {};
  const facts = [
    ['Model', message.model],
    ['Backend', m.backend],
    ['Finished', finishText(m)],
    ['Prompt tokens', usage.prompt_tokens],
    ['Completion tokens', usage.completion_tokens],
    ['Retrieval', ms(t.retrieval_ms)],
    ['Time to first token', ms(t.first_token_ms)],
    ['Generation', ms(t.generation_ms)],
    ['Total', ms(t.total_ms)],
    ['Tokens per second', typeof t.tokens_per_second === 'number' ? t.tokens_per_second.toFixed(1) : null],
    ['Recalled memories', Array.isArray(m.recalled) ? m.recalled.length : prompt?.memories],
    ['Document chunks in prompt', prompt?.documents],
    ['History messages in prompt', prompt?.history_messages],
    ['Session summary in prompt', prompt ? (prompt.summary ? 'yes' : 'no') : null],
    ['Prompt budget', prompt?.budget_tokens ? `${prompt.budget_tokens} tokens` : null],
    ['Temperature', typeof settings.temperature === 'number' ? settings.temperature.toFixed(2) : null],
    ['Max new tokens', settings.max_new_tokens],
    ['Seed', settings.seed],
  ];
  return facts.filter(([, value]) => value !== null && value !== undefined && value !== '');
}

function replyDetails(message) {
  const known = replyFacts(message);
  return h('details', { class: 'reply-details' },
    h('summary', { text: 'Details' }),
    known.length ? facts(known) : h('p', { class: 'muted', text: 'No details were stored with this reply.' }));
}

function markStopped(el, note = 'stopped') {
  el.classList.add('stopped');
  el.querySelector('.message-meta')?.append(h('span', { class: 'badge stopped-badge', text: note }));
}

// ---------------------------------------------------------------------------------------
// Scrolling: `#messages` scrolls on its own, between the header and the composer.

function nearEnd(panel) {
  const box = panel.els.messages;
  return box.scrollTop + box.clientHeight >= box.scrollHeight - 80;
}

function scrollToEnd(panel) {
  if (panel.life.alive) panel.els.messages.scrollTop = panel.els.messages.scrollHeight;
}

/** Runs `fn` (which adds text) and follows the end if the reader was there. */
function following(panel, fn) {
  const follow = nearEnd(panel);
  fn();
  if (follow) scrollToEnd(panel);
}

// ---------------------------------------------------------------------------------------
// Composer and streaming

function composer(panel) {
  const input = h('textarea', { id: 'chat-input', name: 'content', rows: 3, required: true,
    placeholder: 'Ask about your documents…' });
  input.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      panel.els.form.requestSubmit();
    }
  });
  input.addEventListener('input', () => fieldError(input, null));
  const send = h('button', { id: 'chat-send', type: 'submit', class: 'primary', text: 'Send' });
  const stop = h('button', { id: 'chat-stop', type: 'button', disabled: true, text: 'Stop',
    onclick: () => stopReply(panel) });
  const status = h('span', { id: 'chat-status', class: 'muted', 'aria-live': 'polite' });
  const form = h('form', { id: 'chat-form', class: 'card', onsubmit: (e) => { e.preventDefault(); submit(panel); } },
    field('Message', input, 'Enter sends; Shift+Enter adds a line.'),
    h('div', { class: 'composer-actions' }, status, stop, send));
  Object.assign(panel.els, { form, input, send, stop, status });
  queueMicrotask(() => { if (panel.life.alive && matchMedia('(min-width: 721px)').matches) input.focus(); });
  return form;
}

function setStreaming(panel, streaming) {
  const { send, stop, status, input } = panel.els;
  const focused = document.activeElement;
  send.disabled = streaming;
  stop.disabled = !streaming;
  // A button disabled while it has the focus drops it (to the page's body): Send (when the
  // reply starts) and Stop (when it ends) hand it to the message field instead.
  if ((focused === send || focused === stop) && focused.disabled) input.focus();
  if (streaming) status.textContent = 'Waiting for the model…';
}

function submit(panel) {
  const text = panel.els.input.value;
  if (panel.stream) return;
  if (!text.trim()) {
    fieldError(panel.els.input, 'Type a message first.');
    return;
  }
  send(panel, text);
}

/** Sends `text` and streams the reply into the conversation. */
async function send(panel, text) {
  const stream = { controller: new AbortController(), reply: null, user: null, text, ended: false };
  panel.stream = stream;
  setStreaming(panel, true);
  try {
    const path = `${sessionPath(panel.sessionId)}/messages`;
    for await (const { event, data } of events(path, { content: text, stream: true }, { signal: stream.controller.signal })) {
      if (!panel.life.alive) return;
      if (event === 'start') onStart(panel, stream, data);
      else if (event === 'token') onToken(panel, stream, data);
      else if (event === 'done') onDone(panel, stream, data);
      else if (event === 'error') onFailed(panel, stream, data?.error?.message ?? 'The reply failed.');
    }
    if (!stream.ended && panel.life.alive) onFailed(panel, stream, 'The connection closed before the reply was complete.');
  } catch (err) {
    if (!panel.life.alive) return;
    if (isAbort(err)) onStopped(panel, stream);
    else if (!stream.reply) refused(panel, err);
    else onFailed(panel, stream, errorText(err) || 'The connection was lost.');
  } finally {
    if (panel.stream === stream) panel.stream = null;
    if (panel.life.alive) setStreaming(panel, false);
  }
}

/** The server refused the message (429 busy, 503 no model, 400 too long…): the text stays. */
function refused(panel, err) {
  panel.els.status.textContent = '';
  fieldError(panel.els.input, errorText(err));
  showError(err, 'Not sent');
  panel.els.input.focus();
}

/** The message was accepted: show it and an empty reply that tokens fill. */
function onStart(panel, stream, data) {
  // Only the sent text goes: what the reader typed while waiting stays.
  if (panel.els.input.value === stream.text) panel.els.input.value = '';
  panel.els.status.textContent = 'Generating…';
  stream.citations = data?.citations ?? [];
  stream.user = data?.user_message ?? { id: '', role: 'user', content: stream.text };
  stream.reply = h('div', { class: 'message assistant streaming', 'aria-busy': 'true' },
    messageMeta({ role: 'assistant' }),
    h('div', { class: 'content' }),
    citationList(stream.citations));
  following(panel, () => {
    panel.els.messages.querySelector('.chat-empty')?.remove();
    panel.els.messages.append(messageElement(stream.user), stream.reply);
  });
}

function onToken(panel, stream, data) {
  if (!stream.reply || typeof data?.text !== 'string') return;
  const content = stream.reply.querySelector('.content');
  following(panel, () => content.append(document.createTextNode(data.text)));
}

/** The stored reply replaces the streamed one. */
function onDone(panel, stream, reply) {
  const message = reply?.assistant_message;
  if (!message) { onFailed(panel, stream, 'The server sent an unreadable reply.'); return; }
  stream.ended = true;
  panel.els.status.textContent = '';
  if (!message.metadata?.citations && reply.citations) {
    message.metadata = { ...message.metadata, citations: reply.citations };
  }
  const final = messageElement(message);
  if (stream.reply) stream.reply.replaceWith(final);
  else panel.els.messages.append(final);
  stream.reply = final;
  refreshSession(panel);
}

/** Generation failed after the message was accepted: say so in the reply. */
function onFailed(panel, stream, message) {
  stream.ended = true;
  panel.els.status.textContent = 'The reply failed.';
  notify(`The reply failed: ${message}`);
  if (!stream.reply) return;
  stream.reply.classList.remove('streaming');
  stream.reply.classList.add('failed');
  stream.reply.removeAttribute('aria-busy');
  stream.reply.append(h('p', { class: 'reply-error', role: 'alert', text: message }));
  if (!panel.els.input.value) panel.els.input.value = stream.text;
}

function stopReply(panel) {
  panel.stream?.controller.abort();
}

/** The reader stopped the reply: mark it, then fetch what the server stored of it. */
function onStopped(panel, stream) {
  panel.els.status.textContent = 'Stopped.';
  if (!stream.reply) return;
  const reply = stream.reply;
  reply.classList.remove('streaming');
  reply.removeAttribute('aria-busy');
  const empty = !reply.querySelector('.content').textContent;
  markStopped(reply, empty ? 'stopped before any text' : 'stopped');
  if (!empty && stream.user?.id) panel.life.after(STOPPED_LOOKUP_MS, () => showStoredPartial(panel, reply, stream.user.id));
}

/**
 * Replaces a stopped reply with the partial reply the server stored (its id and details);
 * looks once more a little later when the server has not stored it yet.
 */
async function showStoredPartial(panel, reply, userMessageId, retry = true) {
  try {
    const head = await get(messagesPath(panel, 1, 0), { signal: panel.life.signal });
    const page = await get(messagesPath(panel, 4, Math.max(0, head.total - 4)), { signal: panel.life.signal });
    const stored = page.items.find((m) => m.role === 'assistant' && m.metadata?.reply_to === userMessageId);
    if (!panel.life.alive || !reply.isConnected) return;
    if (stored) {
      reply.replaceWith(messageElement(stored));
      refreshSession(panel);
    } else if (retry) {
      panel.life.after(3 * STOPPED_LOOKUP_MS, () => showStoredPartial(panel, reply, userMessageId, false));
    }
  } catch (err) {
    if (panel.life.alive) console.warn(err);
  }
}
