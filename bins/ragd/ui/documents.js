// The documents panel: upload files and watch them through the pipeline; list, filter,
// reindex and delete documents; group them in collections; read one document's extracted
// text and chunks.
//
// `#/documents?filename=&status=&mime=&collection=&filter=&offset=` is the list: the filters
// (`filter`: a metadata filter as the JSON the API takes, as typed) and the page live in the hash (kept with `history.replaceState`, so typing in a filter does not
// re-render the panel) and a reload keeps them. An upload is one multipart request (into
// the collection chosen by the upload area, if any); each file's row then polls its
// document every 500 ms until it is `ready` or `failed`.
//
// Collections: the card above the list shows them (name, document count, description),
// creates, renames and deletes them; choosing one (there or in the list's "Collection"
// filter) lists only its documents, and each row can then be taken out of it. Every row can
// be added to a collection. The API does not say which collections hold a document, so the
// document view shows none.
//
// `#/documents/<id>?chunk=<chunk id>` is one document: its details, its metadata (key → text,
// number or yes/no; added, changed and removed with PATCH), a new version of its file (PUT
// …/content: it keeps its id, and the answer says how many chunks were kept), its extracted
// text (the first 200 000 chars of a big one) and its chunks, 100 at a time. The chunk named in
// the query is marked in the text: chunk offsets count Unicode scalar values (Rust chars),
// so they are mapped through `Array.from(text)`, never used as UTF-16 indexes.
//
// File names and document text are untrusted: they reach the DOM as text only (dom.js).

import {
  ApiError, api, request, get, post, patch, del, upload, notify, showError, errorText, isAbort,
} from './api.js';
import {
  h, append, replace, bytes, time, field, fieldError, documentHref, keepingFocus, whileBusy, Lifetime,
} from './dom.js';

const API = '/api/v1/documents';
const STATES = ['queued', 'extracting', 'chunking', 'embedding', 'ready', 'failed'];
/** The media types ragd stores (ragd_ingest::detect), with a short name. */
const TYPES = [
  ['application/pdf', 'PDF'],
  ['application/vnd.openxmlformats-officedocument.wordprocessingml.document', 'Word (DOCX)'],
  ['text/html', 'HTML'],
  ['text/markdown', 'Markdown'],
  ['text/plain', 'Plain text'],
];
const PAGE_SIZE = 20;
const UPLOAD_POLL_MS = 500;
const LIST_REFRESH_MS = 3000;
const DOCUMENT_POLL_MS = 1000;
const TEXT_LIMIT = 200_000;
const CHUNK_PAGE = 100;
const COLLECTIONS_API = '/api/v1/collections';
/** The most collections the panel lists (the API's largest page). */
const COLLECTION_LIMIT = 500;

/** The example a metadata filter field shows (the list's and the search's). */
export const FILTER_EXAMPLE = '{"lang": "en", "year": {"gte": 2020}}';
const FILTER_TYPING_MS = 400;

/**
 * A metadata filter field's text → `{filter}` (null when empty) or `{error}` when it is not
 * JSON. Whether it is a valid filter is the server's to say (a 400 naming the problem).
 */
export function parseFilter(text) {
  const trimmed = String(text ?? '').trim();
  if (!trimmed) return { filter: null };
  try {
    return { filter: JSON.parse(trimmed) };
  } catch (err) {
    return { error: `This is not valid JSON (${err.message}). A filter is an object, e.g. ${FILTER_EXAMPLE}.` };
  }
}

/** The text input of a metadata filter (`field()` labels it). */
export function filterInput(id, value) {
  return h('input', { id, type: 'text', class: 'json-input', value, autocomplete: 'off', spellcheck: 'false',
    autocapitalize: 'off', placeholder: '{"lang": "en"}' });
}

/** The collection uploads go into, kept while the page is open (the reader's last choice). */
let uploadTarget = '';

export function render(main, { path, query }) {
  return path.length > 0 ? renderDocument(main, path[0], query) : renderList(main, query);
}

// ---------------------------------------------------------------------------------------
// Shared helpers

const isDone = (status) => status === 'ready' || status === 'failed';
const documentUrl = (id) => `${API}/${encodeURIComponent(id)}`;
const aborted = (err, life) => isAbort(err) || !life.alive;

/** "embedding 40 %" while embedding (and "extracting 40 %" while a PDF's pages are read),
 * the bare state otherwise. */
function statusText(status, progress) {
  if (status === 'embedding') return `embedding ${progress ?? 0} %`;
  if (status === 'extracting' && progress) return `extracting ${progress} %`;
  return status;
}

/** A `.badge.<status>` for a document; a failed one carries its error as tooltip, another
 * what its extraction left out (`warnings`), marked with a "!". */
function statusBadge(doc) {
  const warnings = doc.warnings ?? [];
  const failed = doc.status === 'failed' && doc.error;
  return h('span', {
    class: `badge ${doc.status}`,
    title: failed ? doc.error : (warnings.length ? warnings.join('\n') : null),
    text: statusText(doc.status, doc.progress) + (!failed && warnings.length ? ' !' : ''),
  });
}

/** A <select> of `[value, label]` pairs with `selected` chosen (`field()` labels it). */
function select(id, options, selected) {
  return h('select', { id },
    options.map(([value, label]) => h('option', { value, selected: value === selected, text: label })));
}

// ---------------------------------------------------------------------------------------
// Collections: one list shared by the panel's controls

const collectionUrl = (key) => `${COLLECTIONS_API}/${encodeURIComponent(key)}`;
const documentCount = (n) => `${n} ${n === 1 ? 'document' : 'documents'}`;

/**
 * The collections, by name: loaded when the panel opens and again after every change the
 * page makes (create, rename, delete, adding or removing documents, uploads into one, a
 * document deleted), then every control that shows them is told (`onChange`).
 */
class Collections {
  constructor(life) {
    this.life = life;
    this.items = [];
    this.total = 0;
    this.loaded = false;
    this.error = null;
    this.loads = 0;
    this.listeners = [];
  }

  onChange(fn) { this.listeners.push(fn); }

  byId(id) { return this.items.find((c) => c.id === id) ?? null; }

  /** The collection an id or a name (any ASCII case, as the API matches it) stands for. */
  find(key) {
    if (!key) return null;
    const lower = key.toLowerCase();
    return this.byId(key) ?? this.items.find((c) => c.name.toLowerCase() === lower) ?? null;
  }

  /** A collection's name for messages; its id when it is not (or no longer) listed. */
  nameOf(id) { return this.byId(id)?.name ?? `collection ${id}`; }

  async load() {
    const mine = ++this.loads;
    try {
      const page = await get(`${COLLECTIONS_API}?limit=${COLLECTION_LIMIT}`, { signal: this.life.signal });
      if (!this.life.alive || mine !== this.loads) return;
      this.items = page.items;
      this.total = page.total;
      this.error = null;
    } catch (err) {
      if (aborted(err, this.life) || mine !== this.loads) return;
      this.error = err;
    }
    this.loaded = true;
    for (const fn of this.listeners) fn();
  }
}

/** The options each collection <select> shows now, to rebuild it only when they change. */
const shownOptions = new WeakMap();

/**
 * Fills a <select> with `first` (the "none" choice, value '') and the collections by name,
 * and chooses `chosen`. A chosen collection that is not listed keeps its place, as
 * "Unknown collection" once the list is known. Options that did not change are left alone,
 * so a list opened by the reader stays open when the collections are reloaded.
 */
function fillCollectionSelect(select, collections, first, chosen) {
  const options = [['', first], ...collections.items.map((c) => [c.id, c.name])];
  if (chosen && !collections.byId(chosen)) {
    options.push([chosen, collections.loaded && !collections.error ? 'Unknown collection' : `Collection ${chosen}`]);
  }
  const key = JSON.stringify(options);
  if (shownOptions.get(select) !== key) {
    replace(select, options.map(([value, label]) => h('option', { value, text: label })));
    shownOptions.set(select, key);
  }
  select.value = chosen;
}

/**
 * A modal <dialog> made for one question and removed once answered: `build(dialog, finish)`
 * fills it; `finish(answer)` closes it and resolves the promise (Escape answers null).
 */
function ask(host, attrs, build, focus) {
  return new Promise((resolve) => {
    const dialog = h('dialog', attrs);
    let settled = false;
    const finish = (answer) => {
      if (settled) return;
      settled = true;
      if (dialog.open) dialog.close();
      dialog.remove();
      resolve(answer);
    };
    build(dialog, finish);
    dialog.addEventListener('cancel', (event) => { event.preventDefault(); finish(null); });
    host.append(dialog);
    dialog.showModal();
    (focus ? dialog.querySelector(focus) : null)?.focus();
  });
}

// ---------------------------------------------------------------------------------------
// The list: upload area, filters, table, pager

function renderList(main, query) {
  const life = new Lifetime();
  const collections = new Collections(life);
  const list = new DocumentList(life, readFilters(query), collections);
  const card = new CollectionsCard(life, collections, list);
  const upload = uploadArea(life, collections, () => { list.load(); collections.load(); });
  list.onCollection = () => card.show();
  collections.onChange(() => {
    list.showCollections();
    card.show();
    upload.showCollections();
  });
  main.append(
    h('h1', { text: 'Documents' }),
    h('div', { class: 'documents-top' }, upload.element, card.element),
    list.element);
  list.load();
  collections.load();
  return () => life.stop();
}

/** The filters and page of the list from the hash query. */
function readFilters(query) {
  const status = query.get('status') ?? '';
  const mime = query.get('mime') ?? '';
  return {
    filename: query.get('filename') ?? '',
    status: STATES.includes(status) ? status : '',
    mime: TYPES.some(([type]) => type === mime) ? mime : '',
    // An id, or a name (the API takes either; it becomes the id once the collections load).
    collection: (query.get('collection') ?? '').trim(),
    // A metadata filter, the JSON as typed (checked when the list loads).
    metadata: (query.get('filter') ?? '').trim(),
    offset: Math.max(0, Number.parseInt(query.get('offset') ?? '0', 10) || 0),
  };
}

/** The table of documents with its filters and pager. */
class DocumentList {
  constructor(life, filters, collections) {
    this.life = life;
    this.filters = filters;
    this.collections = collections;
    /** Called when the chosen collection changes (the collections card marks it). */
    this.onCollection = null;
    this.generation = 0;
    this.refreshTimer = null;
    this.tbody = h('tbody');
    this.range = h('span', { id: 'documents-range', class: 'muted', 'aria-live': 'polite' });
    this.prev = h('button', { type: 'button', id: 'documents-prev', text: '‹ Previous', disabled: true,
      onclick: () => this.page(-1) });
    this.next = h('button', { type: 'button', id: 'documents-next', text: 'Next ›', disabled: true,
      onclick: () => this.page(1) });
    this.element = h('section', { class: 'card', 'aria-labelledby': 'documents-title' },
      h('h2', { id: 'documents-title', text: 'Stored documents' }),
      this.filterBar(),
      h('div', { class: 'table-wrap' }, this.table()),
      h('div', { class: 'pager' }, this.prev, this.range, this.next));
  }

  filterBar() {
    const f = this.filters;
    const name = h('input', { id: 'filter-name', type: 'search', value: f.filename,
      placeholder: 'part of a file name', autocomplete: 'off' });
    const status = select('filter-status', [['', 'All'], ...STATES.map((s) => [s, s])], f.status);
    const type = select('filter-type', [['', 'All'], ...TYPES], f.mime);
    let typing = null;
    name.addEventListener('input', () => {
      this.life.cancel(typing);
      typing = this.life.after(300, () => this.filter({ filename: name.value.trim() }));
    });
    status.addEventListener('change', () => this.filter({ status: status.value }));
    type.addEventListener('change', () => this.filter({ mime: type.value }));
    this.metadataInput = filterInput('filter-metadata', f.metadata);
    const metadata = this.metadataInput;
    let typingFilter = null;
    const applyFilter = () => {
      this.life.cancel(typingFilter);
      if (metadata.value.trim() !== this.filters.metadata) this.filter({ metadata: metadata.value.trim() });
    };
    metadata.addEventListener('input', () => {
      this.life.cancel(typingFilter);
      typingFilter = this.life.after(FILTER_TYPING_MS, applyFilter);
    });
    metadata.addEventListener('keydown', (event) => { if (event.key === 'Enter') applyFilter(); });
    this.collectionSelect = h('select', { id: 'filter-collection' },
      h('option', { value: '', text: 'All documents' }));
    this.collectionSelect.addEventListener('change', () => this.setCollection(this.collectionSelect.value));
    this.showCollections();
    return h('div', { class: 'row filters', role: 'search', 'aria-label': 'Filter documents' },
      h('div', { class: 'grow' }, field('File name', name)),
      field('Status', status),
      field('Type', type),
      h('div', { class: 'filter-collection-field' }, field('Collection', this.collectionSelect)),
      h('div', { class: 'filter-metadata-field' },
        field('Metadata filter (JSON)', metadata, `For example ${FILTER_EXAMPLE}`)));
  }

  /** The collection filter's choices, from the collections now known. */
  showCollections() {
    const f = this.filters;
    // A collection named in the hash by its name: from now on by its id.
    const named = this.collections.find(f.collection);
    if (named && named.id !== f.collection) {
      f.collection = named.id;
      this.saveHash();
      this.onCollection?.();
    }
    fillCollectionSelect(this.collectionSelect, this.collections, 'All documents', f.collection);
    // The rows' "Remove from collection" buttons name the collection.
    if (f.collection && this.items) this.showRows(this.items);
  }

  /** Lists the documents of one collection (`''`: of all). */
  setCollection(id) {
    if (this.collectionSelect.value !== id) fillCollectionSelect(this.collectionSelect, this.collections, 'All documents', id);
    if (this.filters.collection === id) return;
    this.filter({ collection: id });
    this.onCollection?.();
  }

  table() {
    const headings = ['File', 'Status', 'Type', 'Size', 'Created', 'Actions'];
    return h('table', { id: 'documents-table' },
      h('caption', { class: 'visually-hidden', text: 'Documents, newest first' }),
      h('thead', {}, h('tr', {}, headings.map((text) => h('th', { scope: 'col', text })))),
      this.tbody);
  }

  filter(change) {
    Object.assign(this.filters, change, { offset: 0 });
    this.load();
  }

  page(direction) {
    this.filters.offset = Math.max(0, this.filters.offset + direction * PAGE_SIZE);
    this.load();
  }

  /** Keeps the filters and page in the hash without re-rendering the panel. */
  saveHash() {
    const f = this.filters;
    const params = new URLSearchParams();
    if (f.filename) params.set('filename', f.filename);
    if (f.status) params.set('status', f.status);
    if (f.mime) params.set('mime', f.mime);
    if (f.collection) params.set('collection', f.collection);
    if (f.metadata) params.set('filter', f.metadata);
    if (f.offset) params.set('offset', String(f.offset));
    const search = params.toString();
    const hash = `#/documents${search ? `?${search}` : ''}`;
    if (location.hash !== hash) history.replaceState(null, '', hash);
  }

  /** The list's URL; `filter` is the parsed metadata filter (null: none). */
  query(filter) {
    const f = this.filters;
    const params = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(f.offset) });
    if (f.filename) params.set('filename', f.filename);
    if (f.status) params.set('status', f.status);
    if (f.mime) params.set('mime', f.mime);
    if (f.collection) params.set('collection', f.collection);
    if (filter !== null) params.set('filter', JSON.stringify(filter));
    return `${API}?${params}`;
  }

  /** Fetches the page; refreshes itself every few seconds while a document is processing. */
  async load() {
    // Called after awaits too (reindex, delete): once the reader has left, saveHash would
    // put this list's URL over the panel now shown.
    if (!this.life.alive) return;
    const mine = ++this.generation;
    this.life.cancel(this.refreshTimer);
    this.saveHash();
    const { filter, error } = parseFilter(this.filters.metadata);
    if (error) {
      this.showFilterError(error);
      return;
    }
    let page;
    try {
      page = await get(this.query(filter), { signal: this.life.signal });
    } catch (err) {
      if (aborted(err, this.life) || mine !== this.generation) return;
      // The server's objection to the metadata filter, under it; waiting will not fix it.
      if (err instanceof ApiError && err.status === 400 && filter !== null) {
        this.showFilterError(errorText(err));
        return;
      }
      this.showLoadError(err);
      // A collection that does not exist will not appear by waiting.
      const gone = err instanceof ApiError && err.status === 404 && this.filters.collection;
      if (!gone) this.refreshTimer = this.life.after(LIST_REFRESH_MS * 2, () => this.load());
      return;
    }
    if (mine !== this.generation || !this.life.alive) return;
    fieldError(this.metadataInput, null);
    if (page.items.length === 0 && this.filters.offset > 0 && page.total > 0) {
      // The page emptied (deletions, or an old link): show the last one.
      this.filters.offset = Math.floor((page.total - 1) / PAGE_SIZE) * PAGE_SIZE;
      this.load();
      return;
    }
    this.showRows(page.items);
    this.showPager(page);
    if (page.items.some((doc) => !isDone(doc.status))) {
      this.refreshTimer = this.life.after(LIST_REFRESH_MS, () => this.load());
    }
  }

  /** The metadata filter is not JSON, or the server refused it: why, under the field. */
  showFilterError(message) {
    fieldError(this.metadataInput, message);
    this.items = null;
    replace(this.tbody, h('tr', {}, h('td', { colspan: 6, class: 'muted empty',
      text: 'The metadata filter is not valid: see the message under it.' })));
    this.range.textContent = '';
    this.prev.disabled = true;
    this.next.disabled = true;
  }

  showLoadError(err) {
    this.items = null;
    const gone = err instanceof ApiError && err.status === 404 && this.filters.collection;
    const all = gone ? h('button', { type: 'button', class: 'link', id: 'show-all-documents',
      text: 'Show all documents', onclick: () => this.setCollection('') }) : null;
    replace(this.tbody, h('tr', {}, h('td', { colspan: 6, class: 'load-error', role: 'alert' },
      gone ? 'This collection does not exist (any more). ' : `The documents could not be loaded: ${errorText(err)}`,
      all)));
    this.range.textContent = '';
    this.prev.disabled = true;
    this.next.disabled = true;
  }

  /** Rebuilds the rows, keeping keyboard focus on the same control of the same row. */
  showRows(items) {
    this.items = items;
    keepingFocus(this.tbody, 'documentId', () => {
      if (items.length === 0) {
        const { filename, status, mime, collection, metadata } = this.filters;
        const filtered = filename || status || mime || metadata;
        let text = 'No documents yet: add files above.';
        if (filtered) text = 'No documents match these filters.';
        else if (collection) text = 'This collection holds no documents yet: upload into it, or add documents to it from the list of all documents.';
        replace(this.tbody, h('tr', {}, h('td', { colspan: 6, class: 'muted empty', text })));
      } else {
        replace(this.tbody, items.map((doc) => this.row(doc)));
      }
    }, document.getElementById('filter-name'));
  }

  row(doc) {
    const name = doc.filename;
    return h('tr', { dataset: { documentId: doc.id } },
      h('td', { class: 'doc-name' },
        h('a', { href: documentHref(doc.id), dataset: { action: 'open' }, text: name })),
      h('td', { class: 'doc-status' }, statusBadge(doc),
        doc.status === 'failed' && doc.error ? h('span', { class: 'reason', text: doc.error }) : null),
      h('td', { class: 'doc-mime', text: doc.mime }),
      h('td', { class: 'num', text: bytes(doc.bytes) }),
      h('td', { class: 'doc-created' }, h('time', { datetime: doc.created_at, text: time(doc.created_at) })),
      h('td', { class: 'doc-actions' },
        h('button', { type: 'button', dataset: { action: 'add-to-collection' },
          'aria-label': `Add to collection: ${name}`, text: 'Add to collection',
          onclick: () => this.addToCollection(doc) }),
        this.filters.collection ? h('button', { type: 'button', dataset: { action: 'remove-from-collection' },
          'aria-label': `Remove from collection ${this.collections.nameOf(this.filters.collection)}: ${name}`,
          text: 'Remove from collection', onclick: () => this.removeFromCollection(doc) }) : null,
        h('button', { type: 'button', dataset: { action: 'reindex' }, 'aria-label': `Reindex ${name}`,
          text: 'Reindex', onclick: () => this.reindex(doc) }),
        h('button', { type: 'button', class: 'danger', dataset: { action: 'delete' },
          'aria-label': `Delete ${name}`, text: 'Delete', onclick: () => this.remove(doc) })));
  }

  /** Asks which collection to add `doc` to, and adds it. */
  async addToCollection(doc) {
    const collection = await chooseCollection(this.element, doc, this.collections, this.filters.collection);
    if (!collection || !this.life.alive) return;
    notify(`${doc.filename} was added to ${collection.name}.`, 'info');
    this.collections.load();
    if (this.filters.collection === collection.id) this.load();
  }

  /** Takes `doc` out of the collection the list shows; the document stays stored. */
  async removeFromCollection(doc) {
    const id = this.filters.collection;
    const name = this.collections.nameOf(id);
    try {
      await del(`${collectionUrl(id)}/documents/${encodeURIComponent(doc.id)}`);
      notify(`${doc.filename} was taken out of ${name}; it stays stored.`, 'info');
    } catch (err) {
      showError(err, `Remove ${doc.filename} from ${name}`);
    }
    if (!this.life.alive) return;
    this.collections.load();
    this.load();
  }

  showPager({ items, total, offset }) {
    this.range.textContent = total === 0 ? '0 of 0' : `${offset + 1}–${offset + items.length} of ${total}`;
    const focused = document.activeElement;
    this.prev.disabled = offset === 0;
    this.next.disabled = offset + items.length >= total;
    // "Next" on the last page (or "Previous" on the first) would drop the focus it has.
    if ((focused === this.prev || focused === this.next) && focused.disabled) {
      const other = focused === this.prev ? this.next : this.prev;
      (other.disabled ? document.getElementById('filter-name') : other)?.focus();
    }
  }

  async reindex(doc) {
    try {
      await post(`${documentUrl(doc.id)}/reindex`);
      notify(`${doc.filename} is being indexed again.`, 'info');
    } catch (err) {
      if (err instanceof ApiError && err.status === 409) notify(`${doc.filename}: ${err.message}`, 'info');
      else showError(err, `Reindex ${doc.filename}`);
    }
    this.load();
  }

  async remove(doc) {
    if (!(await confirmDelete(this.element, doc))) return;
    try {
      await del(documentUrl(doc.id));
      notify(`${doc.filename} was deleted.`, 'info');
    } catch (err) {
      showError(err, `Delete ${doc.filename}`);
    }
    if (!this.life.alive) return;
    // The row and its button are gone: keep the focus in the list's controls.
    document.getElementById('filter-name')?.focus();
    this.load();
    // It left its collections too.
    this.collections.load();
  }
}

/** Asks in a modal <dialog> whether to delete `doc`; resolves to true or false. */
function confirmDelete(host, doc) {
  return new Promise((resolve) => {
    const cancel = h('button', { type: 'button', id: 'cancel-delete', text: 'Cancel' });
    const confirm = h('button', { type: 'button', id: 'confirm-delete', class: 'danger', text: 'Delete' });
    const dialog = h('dialog', { id: 'delete-dialog', 'aria-labelledby': 'delete-title',
      'aria-describedby': 'delete-text' },
      h('h2', { id: 'delete-title', text: 'Delete this document?' }),
      h('p', { id: 'delete-text' }, h('strong', { class: 'filename', text: doc.filename }),
        ' will be removed with its text, chunks and vectors. This cannot be undone.'),
      h('div', { class: 'actions' }, cancel, confirm));
    let settled = false;
    const finish = (answer) => {
      if (settled) return;
      settled = true;
      if (dialog.open) dialog.close();
      dialog.remove();
      resolve(answer);
    };
    cancel.addEventListener('click', () => finish(false));
    confirm.addEventListener('click', () => finish(true));
    dialog.addEventListener('cancel', (event) => { event.preventDefault(); finish(false); });
    host.append(dialog);
    dialog.showModal();
    cancel.focus();
  });
}

/**
 * Asks in a modal <dialog> which collection to add `doc` to, and adds it there; the server's
 * refusal is shown in the dialog, which stays open. Resolves to the collection, or null.
 */
function chooseCollection(host, doc, collections, current) {
  const choice = h('select', { id: 'add-to-collection-select', name: 'collection' });
  const confirm = h('button', { type: 'submit', id: 'add-to-collection-confirm', class: 'primary', text: 'Add' });
  const options = collections.items.map((c) => [c.id, `${c.name} (${documentCount(c.document_count)})`]);
  replace(choice, options.map(([value, label]) => h('option', { value, text: label })));
  // Not the collection the list shows (the document is already in it): the reader's upload
  // target, or the first other one.
  const preferred = collections.items.find((c) => c.id === uploadTarget && c.id !== current)
    ?? collections.items.find((c) => c.id !== current);
  if (preferred) choice.value = preferred.id;
  const none = collections.items.length === 0;
  confirm.disabled = none;
  return ask(host, { id: 'add-to-collection-dialog', 'aria-labelledby': 'add-to-collection-title',
    'aria-describedby': 'add-to-collection-text' }, (dialog, finish) => {
    const submit = async (event) => {
      event.preventDefault();
      if (confirm.disabled || !choice.value) return;
      fieldError(choice, null);
      await whileBusy(confirm, async () => {
        try {
          finish(await post(`${collectionUrl(choice.value)}/documents`, { document_ids: [doc.id] }));
        } catch (err) {
          fieldError(choice, errorText(err));
        }
      });
    };
    append(dialog, h('form', { onsubmit: submit },
      h('h2', { id: 'add-to-collection-title', text: 'Add to a collection' }),
      h('p', { id: 'add-to-collection-text' }, h('strong', { class: 'filename', text: doc.filename }),
        none ? ' cannot be added yet: there are no collections. Create one under “Collections” first.'
          : ' stays where it is and is also listed in the collection.'),
      none ? null : field('Collection', choice),
      h('div', { class: 'actions' },
        h('button', { type: 'button', id: 'add-to-collection-cancel', text: 'Cancel', onclick: () => finish(null) }),
        confirm)));
  }, none ? '#add-to-collection-cancel' : '#add-to-collection-select');
}

// ---------------------------------------------------------------------------------------
// The collections card

/** The collections: choose one to list its documents; create, rename, delete. */
class CollectionsCard {
  constructor(life, collections, list) {
    this.life = life;
    this.collections = collections;
    this.list = list;
    this.items = h('ul', { id: 'collections-list', class: 'collections-list', 'aria-labelledby': 'collections-title' });
    this.note = h('p', { id: 'collections-note', class: 'muted collections-note', 'aria-live': 'polite',
      text: 'Loading the collections…' });
    this.name = h('input', { id: 'new-collection-name', name: 'name', type: 'text', autocomplete: 'off',
      placeholder: 'e.g. Handbooks' });
    this.description = h('input', { id: 'new-collection-description', name: 'description', type: 'text',
      autocomplete: 'off' });
    this.create = h('button', { id: 'create-collection', type: 'submit', class: 'primary', text: 'Create' });
    for (const input of [this.name, this.description]) input.addEventListener('input', () => fieldError(input, null));
    const form = h('form', { id: 'new-collection-form', class: 'row new-collection', novalidate: true,
      'aria-label': 'New collection', onsubmit: (event) => { event.preventDefault(); this.createCollection(); } },
    h('div', { class: 'grow' }, field('New collection', this.name)),
    h('div', { class: 'grow' }, field('Description (optional)', this.description)),
    h('div', { class: 'field create-field' }, this.create));
    this.element = h('section', { id: 'collections', class: 'card collections', 'aria-labelledby': 'collections-title' },
      h('h2', { id: 'collections-title', text: 'Collections' }), this.note, this.items, form);
  }

  /** Lists the collections, marking the one the list shows; the focus stays where it was. */
  show() {
    const { items, total, error, loaded } = this.collections;
    let note = 'Choose a collection to list only its documents.';
    if (!loaded) note = 'Loading the collections…';
    else if (error) note = `The collections could not be listed: ${errorText(error)}`;
    else if (items.length === 0) note = 'No collections yet. A collection groups documents; search and chat can be limited to it.';
    else if (total > items.length) note = `The first ${items.length} of ${total} collections, by name.`;
    this.note.textContent = note;
    this.note.classList.toggle('load-error', Boolean(error));
    keepingFocus(this.items, 'collectionId', () => replace(this.items, items.map((c) => this.item(c))), this.name);
  }

  item(c) {
    const current = this.list.filters.collection === c.id;
    return h('li', { class: current ? 'collection current' : 'collection', dataset: { collectionId: c.id } },
      h('button', { type: 'button', class: 'collection-show', dataset: { action: 'show' },
        'aria-pressed': String(current), title: current ? 'List all documents' : 'List only its documents',
        text: c.name, onclick: () => this.list.setCollection(current ? '' : c.id) }),
      h('span', { class: 'collection-count muted', text: documentCount(c.document_count) }),
      c.description ? h('span', { class: 'collection-description muted', title: c.description, text: c.description }) : null,
      h('span', { class: 'collection-actions' },
        h('button', { type: 'button', class: 'link', dataset: { action: 'rename' }, text: 'Rename',
          'aria-label': `Rename ${c.name}`, onclick: () => this.rename(c) }),
        h('button', { type: 'button', class: 'link danger-link', dataset: { action: 'delete' }, text: 'Delete',
          'aria-label': `Delete ${c.name}`, onclick: () => this.remove(c) })));
  }

  async createCollection() {
    const name = this.name.value.trim();
    if (!name) { fieldError(this.name, 'A name is needed.'); this.name.focus(); return; }
    if (this.create.disabled) return;
    const body = { name };
    const description = this.description.value.trim();
    if (description) body.description = description;
    await whileBusy(this.create, async () => {
      try {
        const collection = await post(COLLECTIONS_API, body);
        if (!this.life.alive) return;
        this.name.value = '';
        this.description.value = '';
        fieldError(this.name, null);
        fieldError(this.description, null);
        notify(`The collection ${collection.name} was created.`, 'info');
        await this.collections.load();
      } catch (err) {
        if (aborted(err, this.life)) return;
        const control = blamed(err, this.name, this.description);
        fieldError(control, errorText(err));
        control.focus();
      }
    });
  }

  /** The rename dialog: name and description, each with the server's objection by it. */
  async rename(c) {
    const name = h('input', { id: 'rename-collection-name', type: 'text', autocomplete: 'off', value: c.name });
    const description = h('textarea', { id: 'rename-collection-description', rows: 2, value: c.description ?? '' });
    const save = h('button', { type: 'submit', id: 'rename-collection-save', class: 'primary', text: 'Save' });
    const renamed = await ask(this.element, { id: 'rename-collection-dialog', 'aria-labelledby': 'rename-collection-title' },
      (dialog, finish) => {
        const submit = async (event) => {
          event.preventDefault();
          const value = name.value.trim();
          fieldError(name, value ? null : 'A name is needed.');
          fieldError(description, null);
          if (!value) { name.focus(); return; }
          if (save.disabled) return;
          await whileBusy(save, async () => {
            try {
              finish(await patch(collectionUrl(c.id), { name: value, description: description.value.trim() || null }));
            } catch (err) {
              const control = blamed(err, name, description);
              fieldError(control, errorText(err));
              control.focus();
            }
          });
        };
        append(dialog, h('form', { onsubmit: submit, novalidate: true },
          h('h2', { id: 'rename-collection-title', text: 'Rename collection' }),
          field('Name', name),
          field('Description (optional)', description),
          h('div', { class: 'actions' },
            h('button', { type: 'button', id: 'rename-collection-cancel', text: 'Cancel', onclick: () => finish(null) }),
            save)));
      }, '#rename-collection-name');
    if (!renamed || !this.life.alive) return;
    if (renamed.name !== c.name) notify(`${c.name} is now called ${renamed.name}.`, 'info');
    await this.collections.load();
  }

  /**
   * Deletes a collection after asking; its documents stay stored. The server refuses (409)
   * while a chat session is restricted to it: the dialog then says which sessions, by name.
   */
  async remove(c) {
    const error = h('div', { id: 'delete-collection-error', class: 'dialog-error', role: 'alert' });
    const confirm = h('button', { type: 'button', id: 'delete-collection-confirm', class: 'danger', text: 'Delete' });
    const deleted = await ask(this.element, { id: 'delete-collection-dialog', 'aria-labelledby': 'delete-collection-title',
      'aria-describedby': 'delete-collection-text' }, (dialog, finish) => {
      confirm.addEventListener('click', () => whileBusy(confirm, async () => {
        replace(error);
        try {
          await del(collectionUrl(c.id));
          finish(true);
        } catch (err) {
          if (aborted(err, this.life)) return;
          if (err instanceof ApiError && err.status === 409) await this.showInUse(error, c, err);
          else replace(error, h('p', { text: `It could not be deleted: ${errorText(err)}` }));
        }
      }));
      append(dialog, [
        h('h2', { id: 'delete-collection-title', text: 'Delete this collection?' }),
        h('p', { id: 'delete-collection-text' }, 'The collection ', h('strong', { class: 'collection-title', text: c.name }),
          ' is removed. ', keptDocuments(c.document_count)),
        error,
        h('div', { class: 'actions' },
          h('button', { type: 'button', id: 'delete-collection-cancel', text: 'Cancel', onclick: () => finish(null) }),
          confirm)]);
    }, '#delete-collection-cancel');
    if (!deleted || !this.life.alive) return;
    notify(`The collection ${c.name} was deleted; its documents stay stored.`, 'info');
    if (this.list.filters.collection === c.id) this.list.setCollection('');
    if (uploadTarget === c.id) uploadTarget = '';
    await this.collections.load();
  }

  /** The 409 of a delete, in words: which chat sessions use the collection, with links. */
  async showInUse(box, c, err) {
    // "collection <id> is in use: 1 chat session(s) restricted to it; take it out of them first"
    const why = err.message.split(' is in use: ')[1];
    const sentence = why
      ? `“${c.name}” cannot be deleted: ${why}.`
      : `“${c.name}” cannot be deleted: ${err.message.replaceAll(c.id, c.name)}`;
    replace(box, h('p', { text: sentence }));
    let sessions = [];
    try {
      const page = await get('/api/v1/sessions?limit=100', { signal: this.life.signal });
      sessions = page.items.filter((s) => (s.collection_ids ?? []).includes(c.id));
    } catch (lookup) {
      if (aborted(lookup, this.life)) return;
    }
    if (sessions.length === 0) return;
    box.append(h('p', {}, sessions.length === 1 ? 'Used by the chat session ' : 'Used by the chat sessions ',
      sessions.map((s, i) => [i > 0 ? ', ' : null,
        h('a', { href: `#/chat/${encodeURIComponent(s.id)}`, class: 'session-link', text: s.name })]),
      ' (without it, a session would search every document).'));
  }
}

/** What becomes of a deleted collection's documents, in words. */
function keptDocuments(n) {
  if (n === 0) return 'It holds no documents.';
  return n === 1 ? 'Its document stays stored.' : `Its ${n} documents stay stored.`;
}

/** The form field a refused collection name or description belongs to. */
function blamed(err, name, description) {
  return /description/i.test(errorText(err)) ? description : name;
}

// ---------------------------------------------------------------------------------------
// Uploads

/**
 * The collection choice, the file input, the drop zone and the list of this visit's
 * uploads: `{element, showCollections}` (the choice follows the collections).
 */
function uploadArea(life, collections, refresh) {
  const uploads = h('ul', { id: 'uploads', class: 'uploads', 'aria-live': 'polite' });
  const target = h('select', { id: 'upload-collection', name: 'collection' },
    h('option', { value: '', text: 'No collection' }));
  target.addEventListener('change', () => { uploadTarget = target.value; });
  const showCollections = () => {
    // The remembered choice was deleted (elsewhere): uploads go into no collection.
    if (uploadTarget && collections.loaded && !collections.error && !collections.byId(uploadTarget)) uploadTarget = '';
    fillCollectionSelect(target, collections, 'No collection', uploadTarget);
  };
  showCollections();
  const start = (files) => {
    if (files.length === 0) return;
    const into = target.value ? { id: target.value, name: collections.nameOf(target.value) } : null;
    startUpload(files, into, uploads, life, refresh);
  };
  const input = h('input', { type: 'file', id: 'file-input', multiple: true, class: 'file-input' });
  input.addEventListener('change', () => {
    const files = [...input.files];
    input.value = '';
    start(files);
  });
  const zone = h('div', { id: 'dropzone', class: 'dropzone' },
    input,
    h('label', { for: 'file-input', class: 'add-files', text: 'Add files' }),
    h('span', { class: 'muted', text: 'or drop files here. PDF, DOCX, HTML, Markdown and plain text.' }));
  watchDrops(zone, life, start);
  const element = h('section', { class: 'card upload', 'aria-labelledby': 'upload-title' },
    h('h2', { id: 'upload-title', text: 'Upload' }),
    h('div', { class: 'upload-target' }, field('Put new files in', target)),
    zone, uploads);
  return { element, showCollections };
}

/** Drag and drop onto `zone`; files dropped elsewhere on the page are ignored, not opened. */
function watchDrops(zone, life, start) {
  const hasFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes('Files');
  const over = (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = 'copy';
    zone.classList.add('dragging');
  };
  zone.addEventListener('dragenter', over);
  zone.addEventListener('dragover', over);
  zone.addEventListener('dragleave', (event) => {
    if (!zone.contains(event.relatedTarget)) zone.classList.remove('dragging');
  });
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('dragging');
    start([...(event.dataTransfer?.files ?? [])]);
  });
  const elsewhere = (event) => { if (hasFiles(event) && !zone.contains(event.target)) event.preventDefault(); };
  window.addEventListener('dragover', elsewhere);
  window.addEventListener('drop', elsewhere);
  life.onStop(() => {
    window.removeEventListener('dragover', elsewhere);
    window.removeEventListener('drop', elsewhere);
  });
}

/** One file's row in `#uploads`. */
class UploadRow {
  constructor(file, into) {
    this.file = file;
    this.id = null;
    this.status = 'uploading';
    this.name = h('span', { class: 'upload-name', text: file.name });
    this.badge = h('span', { class: 'badge uploading', text: 'uploading' });
    this.note = h('span', { class: 'upload-note muted' });
    this.noteText = ''; // what the note says when polling works
    this.bar = h('progress', { max: 100, value: 0, hidden: true, 'aria-label': `Embedding ${file.name}` });
    this.reason = h('p', { class: 'reason', hidden: true });
    this.element = h('li', { class: 'upload-row', dataset: { filename: file.name } },
      h('div', { class: 'upload-head' }, this.name, this.badge,
        into ? h('span', { class: 'tag upload-collection', title: 'Put in this collection', text: into.name }) : null,
        this.note), this.bar, this.reason);
  }

  /** The server's answer for this file: an id to poll, or why it was refused. */
  accept(entry) {
    if (!entry) { this.fail('the server did not answer for this file'); return; }
    if (entry.error || !entry.id) { this.fail(entry.error?.message ?? 'refused by the server'); return; }
    this.id = entry.id;
    this.name.replaceChildren(h('a', { href: documentHref(entry.id), text: this.file.name }));
    if (entry.duplicate) this.setNote('duplicate: already stored');
    this.show({ status: entry.status ?? 'queued', progress: 0 });
  }

  /** Shows a document's state (`{status, progress, error}`). */
  show(doc) {
    this.status = doc.status;
    this.badge.className = `badge ${doc.status}`;
    this.badge.textContent = statusText(doc.status, doc.progress);
    this.bar.hidden = doc.status !== 'embedding';
    this.bar.value = doc.progress ?? 0;
    if (doc.status === 'failed') this.showReason(doc.error ?? 'processing failed');
  }

  fail(message) {
    this.show({ status: 'failed', error: message });
  }

  setNote(text) {
    this.noteText = text;
    this.note.textContent = text;
    this.note.classList.remove('poll-error');
  }

  /** A poll failed: say so in the note until the next one works. */
  pollError(message) {
    this.note.textContent = `status unknown: ${message}`;
    this.note.classList.add('poll-error');
  }

  showReason(message) {
    this.reason.textContent = message;
    this.reason.hidden = false;
  }
}

/** Uploads `files` in one request (into a collection, if given). */
function uploadInto(files, into) {
  if (!into) return upload(files);
  const form = new FormData();
  for (const file of files) form.append('files', file, file.name);
  return api('POST', `${API}?collection=${encodeURIComponent(into.id)}`, form);
}

/** Uploads `files` in one request, then follows each document until it is done. */
async function startUpload(files, into, list, life, refresh) {
  const rows = files.map((file) => new UploadRow(file, into));
  list.append(...rows.map((row) => row.element));
  let answer;
  try {
    answer = await uploadInto(files, into);
  } catch (err) {
    const message = errorText(err);
    for (const row of rows) row.fail(message);
    showError(err, files.length === 1 ? `Upload of ${files[0].name}` : `Upload of ${files.length} files`);
    return;
  }
  if (!life.alive) return;
  const entries = answer?.documents ?? [];
  rows.forEach((row, i) => row.accept(entries[i]));
  refresh();
  // A duplicate of a document that failed: fetch it once for the reason.
  for (const row of rows) if (row.id && row.status === 'failed') pollOne(row, life);
  const pending = rows.filter((row) => row.id && !isDone(row.status));
  if (pending.length > 0) pollUploads(pending, life, refresh);
}

/** Polls the documents of `rows` every 500 ms; refreshes the list once all are done. */
function pollUploads(rows, life, refresh) {
  const tick = async () => {
    const pending = rows.filter((row) => !isDone(row.status));
    await Promise.all(pending.map((row) => pollOne(row, life)));
    if (!life.alive) return;
    if (rows.every((row) => isDone(row.status))) refresh();
    else life.after(UPLOAD_POLL_MS, tick);
  };
  life.after(UPLOAD_POLL_MS, tick);
}

async function pollOne(row, life) {
  try {
    const doc = await get(documentUrl(row.id), { signal: life.signal });
    row.show(doc);
    if (row.note.classList.contains('poll-error')) row.setNote(row.noteText);
  } catch (err) {
    if (aborted(err, life)) return;
    if (err instanceof ApiError && err.status === 404) row.fail('the document was deleted');
    else row.pollError(errorText(err));
  }
}

// ---------------------------------------------------------------------------------------
// One document: metadata, text, chunks

function renderDocument(main, id, query) {
  const life = new Lifetime();
  const view = new DocumentView(life, id, query.get('chunk'));
  main.append(view.element);
  view.start();
  return () => life.stop();
}

class DocumentView {
  constructor(life, id, chunkId) {
    this.life = life;
    this.id = id;
    this.selected = chunkId;
    this.doc = null;
    this.text = null; // the loaded text (possibly cut), a string
    this.chars = null; // Array.from(this.text), made when first needed
    this.textInfo = ''; // the note under the text's heading: its length, whether it is cut
    this.chunks = new Map(); // chunk id → chunk, every chunk shown
    this.loadedChunks = 0;
    this.totalChunks = 0;
    this.title = h('h1', { id: 'document-title', class: 'document-title', text: 'Document' });
    this.meta = h('dl', { class: 'meta' }, h('dt', { text: 'Status' }), h('dd', { class: 'muted', text: 'Loading…' }));
    this.pre = h('pre', { id: 'document-text', class: 'document-text', tabindex: 0,
      'aria-labelledby': 'document-text-title' });
    this.textNote = h('p', { class: 'muted text-note', 'aria-live': 'polite' });
    this.list = h('ol', { id: 'chunks', class: 'chunks', 'aria-labelledby': 'chunks-title' });
    this.chunkNote = h('p', { class: 'muted chunk-note', 'aria-live': 'polite' });
    this.more = h('button', { type: 'button', id: 'chunks-more', hidden: true, text: 'More chunks',
      onclick: () => this.moreChunks() });
    this.metadata = new MetadataCard(this);
    this.replacer = new ReplaceCard(this);
    this.tools = h('div', { class: 'document-tools' }, this.metadata.element, this.replacer.element);
    this.element = h('div', { class: 'document-view' },
      h('p', { class: 'back' }, h('a', { href: '#/documents', id: 'back-to-documents', text: '← Back to documents' })),
      this.title,
      h('section', { class: 'card', 'aria-label': 'Details' }, this.meta),
      this.tools,
      h('div', { class: 'document-layout' },
        h('section', { class: 'card document-text-card', 'aria-labelledby': 'document-text-title' },
          h('h2', { id: 'document-text-title', text: 'Extracted text' }), this.textNote, this.pre),
        h('section', { class: 'card chunks-card', 'aria-labelledby': 'chunks-title' },
          h('h2', { id: 'chunks-title', text: 'Chunks' }), this.chunkNote, this.list, this.more)));
  }

  async start() {
    let doc;
    try {
      doc = await get(documentUrl(this.id), { signal: this.life.signal });
    } catch (err) {
      if (aborted(err, this.life)) return;
      this.showMissing(err);
      return;
    }
    await this.reload(doc);
  }

  /** Shows `doc`, loads its text and chunks, and follows it while it is processing. */
  async reload(doc) {
    this.totalChunks = 0;
    this.showDocument(doc);
    await this.loadContent();
    if (this.life.alive && !isDone(this.doc.status)) this.life.after(DOCUMENT_POLL_MS, () => this.poll());
  }

  showMissing(err) {
    const message = err instanceof ApiError && err.status === 404 ? 'There is no such document.' : errorText(err);
    this.title.textContent = 'Document not found';
    replace(this.element.querySelector('.document-layout'));
    replace(this.tools);
    replace(this.meta, h('p', { class: 'load-error', role: 'alert', text: message }));
  }

  /** While the document is processing: follow it, and load its text and chunks when done. */
  async poll() {
    try {
      this.showDocument(await get(documentUrl(this.id), { signal: this.life.signal }));
    } catch (err) {
      if (aborted(err, this.life)) return;
      // Deleted meanwhile: say so and stop following it.
      if (err instanceof ApiError && err.status === 404) { this.showMissing(err); return; }
      this.textNote.textContent = `The document's state is unknown: ${errorText(err)}`;
    }
    if (isDone(this.doc.status)) await this.loadContent();
    else this.life.after(DOCUMENT_POLL_MS, () => this.poll());
  }

  showDocument(doc) {
    this.doc = doc;
    this.title.textContent = doc.filename;
    document.title = `${doc.filename} · ragd`;
    const rows = [
      ['Status', h('span', {}, statusBadge(doc),
        doc.status === 'embedding' ? h('progress', { max: 100, value: doc.progress, 'aria-label': 'Embedding progress' }) : null)],
      ['Type', doc.mime],
      ['Size', `${bytes(doc.bytes)} (${doc.bytes} bytes)`],
      ['Chunks', this.totalChunks ? String(this.totalChunks) : '–'],
      ['SHA-256', h('code', { class: 'hash', text: doc.sha256 })],
      ['Created', h('time', { datetime: doc.created_at, text: time(doc.created_at) })],
      ['Updated', h('time', { datetime: doc.updated_at, text: time(doc.updated_at) })],
      ['Id', h('code', { text: doc.id })],
      doc.error ? ['Error', h('span', { class: 'reason', text: doc.error })] : null,
    ];
    replace(this.meta, rows.filter(Boolean).map(([term, value]) =>
      h('div', { class: 'meta-item' }, h('dt', { text: term }), h('dd', {}, value))));
    this.metadata.show(doc.metadata ?? {});
    this.replacer.show(doc);
  }

  /** (Re)loads the text and the first chunk page, then marks the selected chunk. */
  async loadContent() {
    this.chunks.clear();
    this.loadedChunks = 0;
    replace(this.list);
    await Promise.all([this.loadText(), this.loadChunks()]);
    if (this.life.alive) await this.select(this.selected, { scroll: true });
  }

  async loadText() {
    replace(this.pre);
    this.text = null;
    this.chars = null;
    try {
      const text = await this.fetchText();
      if (!this.life.alive) return;
      const chars = Array.from(text);
      const cut = chars.length > TEXT_LIMIT;
      if (cut) chars.length = TEXT_LIMIT;
      this.chars = chars;
      this.text = cut ? chars.join('') : text;
      replace(this.pre, this.text);
      this.textInfo = cut
        ? `Only the first ${TEXT_LIMIT.toLocaleString()} characters are shown; the text goes on.`
        : `${chars.length.toLocaleString()} characters.`;
      this.textNote.textContent = this.textInfo;
    } catch (err) {
      if (aborted(err, this.life)) return;
      this.textNote.textContent = err instanceof ApiError && err.status === 404
        ? (this.doc?.status === 'failed' ? 'No text was extracted.' : 'No text yet: it appears once extraction is done.')
        : `The text could not be loaded: ${errorText(err)}`;
    }
  }

  /**
   * The text's first TEXT_LIMIT + 1 chars (one more tells that it was cut); the API stops a
   * range at the end of the text, so a shorter text comes whole.
   */
  async fetchText() {
    const url = `${documentUrl(this.id)}/text?end=${TEXT_LIMIT + 1}`;
    return (await get(url, { signal: this.life.signal })).text;
  }

  /** "More chunks": the next page; the focus goes to its first chunk once the button hides. */
  moreChunks() {
    const last = this.list.lastElementChild;
    return whileBusy(this.more, () => this.loadChunks(),
      () => (last ? last.nextElementSibling : this.list.firstElementChild)?.querySelector('a'));
  }

  /** Appends the next page of chunks. */
  async loadChunks() {
    this.more.disabled = true;
    try {
      const url = `${documentUrl(this.id)}/chunks?limit=${CHUNK_PAGE}&offset=${this.loadedChunks}`;
      const page = await get(url, { signal: this.life.signal });
      if (!this.life.alive) return;
      this.totalChunks = page.total;
      this.loadedChunks += page.items.length;
      for (const chunk of page.items) this.addChunk(chunk);
      this.showChunkCount();
    } catch (err) {
      if (aborted(err, this.life)) return;
      this.chunkNote.textContent = `The chunks could not be loaded: ${errorText(err)}`;
    } finally {
      this.more.disabled = false;
    }
  }

  showChunkCount() {
    const { loadedChunks: shown, totalChunks: total } = this;
    this.chunkNote.textContent = total === 0
      ? (isDone(this.doc?.status) ? 'This document has no chunks.' : 'No chunks yet.')
      : `${shown} of ${total} shown. Select a chunk to mark it in the text.`;
    this.more.hidden = shown >= total;
    this.more.textContent = `More chunks (${Math.min(CHUNK_PAGE, total - shown)} more)`;
    if (this.doc) this.showDocument(this.doc);
  }

  /** Adds a chunk in order; one shown at the top as "beyond the loaded pages" moves here. */
  addChunk(chunk) {
    const early = this.list.querySelector(`li.outside[data-chunk-id="${CSS.escape(chunk.id)}"]`);
    const item = this.chunkItem(chunk);
    if (early) {
      early.remove();
      if (this.selected === chunk.id) this.markItem(item);
    }
    this.chunks.set(chunk.id, chunk);
    this.list.append(item);
  }

  chunkItem(chunk) {
    // A chunk of another document (an old or hand-made link) links to its own document.
    const here = chunk.document_id === this.id;
    const href = documentHref(chunk.document_id, chunk.id);
    const link = h('a', { href, class: 'chunk-link', text: `#${chunk.ordinal}`,
      'aria-label': `Chunk ${chunk.ordinal}${chunk.heading ? `, ${chunk.heading}` : ''}` });
    const item = h('li', { class: 'chunk', dataset: { chunkId: chunk.id } },
      h('div', { class: 'chunk-head' },
        link,
        chunk.page !== null && chunk.page !== undefined ? h('span', { class: 'tag', text: `page ${chunk.page}` }) : null,
        chunk.heading ? h('span', { class: 'chunk-heading', text: chunk.heading }) : null,
        h('span', { class: 'muted chunk-tokens', text: `${chunk.token_count} tokens` })),
      h('div', { class: 'chunk-text', text: chunk.text }));
    const choose = (event) => {
      if (!here) return;
      if (event.button !== 0 || event.ctrlKey || event.metaKey || event.shiftKey || event.altKey) return;
      if (event.target.closest('a') !== link && String(window.getSelection?.() ?? '')) return; // selecting text
      event.preventDefault();
      this.choose(chunk.id, href);
    };
    link.addEventListener('click', choose);
    item.addEventListener('click', choose);
    return item;
  }

  /** A click on a chunk: a new history entry (back returns to the previous chunk), no re-render. */
  choose(chunkId, href) {
    if (this.selected === chunkId) return;
    history.pushState(null, '', href);
    this.select(chunkId, { scroll: false });
  }

  /** Marks `chunkId` in the list and in the text; fetches it when it is not loaded. */
  async select(chunkId, { scroll }) {
    this.selected = chunkId;
    for (const item of this.list.querySelectorAll('li.current')) {
      item.classList.remove('current');
      item.removeAttribute('aria-current');
    }
    if (!chunkId) { this.markText(null); return; }
    let item = this.list.querySelector(`li[data-chunk-id="${CSS.escape(chunkId)}"]`);
    if (!item) item = await this.fetchOutside(chunkId);
    if (!item || !this.life.alive || this.selected !== chunkId) return;
    this.markItem(item);
    const mark = this.markText(this.chunks.get(chunkId));
    if (mark) scrollWithin(this.pre, mark);
    if (scroll) item.scrollIntoView({ block: 'center' });
  }

  markItem(item) {
    item.classList.add('current');
    item.setAttribute('aria-current', 'true');
  }

  /** A chunk past the loaded pages: fetched by id and shown at the top of the list. */
  async fetchOutside(chunkId) {
    let chunk;
    try {
      chunk = await get(`${API}/chunks/${encodeURIComponent(chunkId)}`, { signal: this.life.signal });
    } catch (err) {
      if (!aborted(err, this.life)) showError(err, 'The selected chunk');
      return null;
    }
    if (!this.life.alive) return null;
    this.chunks.set(chunk.id, chunk);
    const item = this.chunkItem(chunk);
    item.classList.add('outside');
    const elsewhere = chunk.document_id !== this.id;
    item.append(h('p', { class: 'chunk-outside muted', text: elsewhere
      ? 'This chunk belongs to another document.'
      : 'Shown here because it lies beyond the chunks loaded below.' }));
    this.list.prepend(item);
    return item;
  }

  /**
   * Wraps the chunk's span of the text in <mark class="current-chunk"> by splitting the
   * text node; `char_start`/`char_end` count chars, so they are turned into UTF-16 offsets.
   */
  markText(chunk) {
    if (this.text === null) return null;
    const node = document.createTextNode(this.text);
    replace(this.pre, node);
    this.textNote.textContent = this.textInfo;
    if (!chunk || chunk.document_id !== this.id) return null;
    const chars = this.chars ?? (this.chars = Array.from(this.text));
    const start = Math.min(Number(chunk.char_start), chars.length);
    const end = Math.min(Math.max(Number(chunk.char_end), start), chars.length);
    if (start >= end) {
      this.textNote.textContent = `Chunk #${chunk.ordinal} lies beyond the part of the text shown.`;
      return null;
    }
    const from = utf16Length(chars, 0, start);
    const middle = node.splitText(from);
    middle.splitText(utf16Length(chars, start, end));
    const mark = h('mark', { class: 'current-chunk' });
    middle.replaceWith(mark);
    mark.append(middle);
    return mark;
  }
}

// ---------------------------------------------------------------------------------------
// One document's metadata, and a new version of its file

/** The value types of metadata: [JSON type, what the page calls it]. */
const METADATA_TYPES = [['string', 'text'], ['number', 'number'], ['boolean', 'yes/no']];
const TYPE_NAMES = Object.fromEntries(METADATA_TYPES);

function metadataType(value) {
  if (typeof value === 'number') return 'number';
  if (typeof value === 'boolean') return 'boolean';
  return 'string';
}

/** A metadata value as the page shows it: booleans as yes/no. */
function metadataText(value) {
  if (typeof value === 'boolean') return value ? 'yes' : 'no';
  return String(value);
}

/**
 * The document's metadata as `li[data-metadata-key]` rows (key, value, its type), each with
 * Edit (fills the form) and Remove, and a form that sets one key: a number is sent as a JSON
 * number, yes/no as true/false. The server's objection shows by the field it is about.
 */
class MetadataCard {
  constructor(view) {
    this.view = view;
    this.shown = null; // the metadata the list shows, as JSON
    this.list = h('ul', { id: 'metadata-list', class: 'metadata-list', 'aria-labelledby': 'metadata-title' });
    this.note = h('p', { id: 'metadata-note', class: 'muted metadata-note', text: 'Loading…' });
    this.status = h('p', { id: 'metadata-status', class: 'muted metadata-status', role: 'status' });
    this.key = h('input', { id: 'metadata-key', name: 'key', type: 'text', autocomplete: 'off',
      spellcheck: 'false', autocapitalize: 'off', placeholder: 'e.g. lang' });
    this.type = select('metadata-type', METADATA_TYPES, 'string');
    this.text = h('input', { id: 'metadata-value', name: 'value', type: 'text', autocomplete: 'off',
      placeholder: 'e.g. en' });
    // For yes/no the value is chosen: this <select> takes the text input's place (and its id).
    this.yesNo = h('select', { name: 'value' },
      h('option', { value: 'true', text: 'yes' }), h('option', { value: 'false', text: 'no' }));
    this.value = this.text;
    this.save = h('button', { type: 'submit', id: 'metadata-save', class: 'primary', text: 'Save' });
    this.key.addEventListener('input', () => fieldError(this.key, null));
    this.text.addEventListener('input', () => fieldError(this.text, null));
    this.type.addEventListener('change', () => this.setType(this.type.value));
    const form = h('form', { id: 'metadata-form', class: 'row metadata-form', novalidate: true,
      'aria-label': 'Set a metadata key', onsubmit: (event) => { event.preventDefault(); this.submit(); } },
    h('div', { class: 'metadata-key-field' }, field('Key', this.key)),
    h('div', { class: 'metadata-type-field' }, field('Type', this.type)),
    h('div', { class: 'metadata-value-field' }, field('Value', this.text)),
    h('div', { class: 'field metadata-save-field' }, this.save));
    this.element = h('section', { id: 'metadata', class: 'card metadata-card', 'aria-labelledby': 'metadata-title' },
      h('h2', { id: 'metadata-title', text: 'Metadata' }),
      this.note, this.list, form, this.status);
  }

  /** Lists `metadata` by key (rebuilt only when it changed; the focus stays where it was). */
  show(metadata) {
    const entries = Object.entries(metadata).sort(([a], [b]) => a.localeCompare(b));
    const key = JSON.stringify(entries);
    if (key === this.shown) return;
    this.shown = key;
    this.note.textContent = entries.length === 0
      ? 'No metadata yet. Keys with values (text, numbers, yes/no) let search and the list filter documents.'
      : 'Search and the document list can filter on these.';
    keepingFocus(this.list, 'metadataKey', () => replace(this.list, entries.map(([k, v]) => this.item(k, v))), this.key);
  }

  item(key, value) {
    const type = metadataType(value);
    return h('li', { class: 'metadata-item', dataset: { metadataKey: key } },
      h('span', { class: 'metadata-key', text: key }),
      h('span', { class: 'metadata-value', text: metadataText(value) }),
      h('span', { class: 'metadata-type muted', title: 'Type of the value', text: TYPE_NAMES[type] }),
      h('span', { class: 'metadata-actions' },
        h('button', { type: 'button', class: 'link', dataset: { action: 'edit' }, text: 'Edit',
          'aria-label': `Edit ${key}`, onclick: () => this.edit(key, value) }),
        h('button', { type: 'button', class: 'link danger-link', dataset: { action: 'remove' }, text: 'Remove',
          'aria-label': `Remove ${key}`, onclick: (event) => this.remove(key, event.currentTarget) })));
  }

  /** Shows the text input or the yes/no choice as the value control. */
  setType(type) {
    this.type.value = type;
    const wanted = type === 'boolean' ? this.yesNo : this.text;
    this.text.placeholder = type === 'number' ? 'e.g. 2021' : 'e.g. en';
    this.text.inputMode = type === 'number' ? 'decimal' : 'text';
    if (wanted === this.value) return;
    const old = this.value;
    fieldError(old, null);
    const describedBy = old.getAttribute('aria-describedby');
    old.removeAttribute('id');
    old.replaceWith(wanted);
    wanted.id = 'metadata-value';
    wanted.setAttribute('aria-describedby', describedBy);
    this.value = wanted;
  }

  /** Edit: the key's type and value in the form, ready to change. */
  edit(key, value) {
    this.key.value = key;
    fieldError(this.key, null);
    this.setType(metadataType(value));
    if (typeof value === 'boolean') this.yesNo.value = String(value);
    else this.text.value = String(value);
    this.value.focus();
    if (this.value === this.text) this.text.select();
  }

  /** The form's value as JSON (a number, a bool or a string), or `{error}`. */
  read() {
    const type = this.type.value;
    if (type === 'boolean') return { value: this.yesNo.value === 'true' };
    const text = this.text.value.trim();
    if (!text) return { error: 'A value is needed (Remove takes a key away).' };
    if (type === 'number') {
      const number = Number(text);
      if (!Number.isFinite(number)) return { error: `“${text}” is not a number: write it with digits, e.g. 2021 or 3.5.` };
      return { value: number };
    }
    return { value: text };
  }

  async submit() {
    const key = this.key.value.trim();
    fieldError(this.key, key ? null : 'A key is needed.');
    if (!key) { this.key.focus(); return; }
    const { value, error } = this.read();
    fieldError(this.value, error ?? null);
    if (error) { this.value.focus(); return; }
    if (this.save.disabled) return;
    await whileBusy(this.save, async () => {
      const done = await this.change({ [key]: value }, (err) => {
        // "metadata key … must be 1 to 64 chars", "at most 64 keys": the key; the rest: the value.
        const control = /metadata key|keys/i.test(errorText(err)) ? this.key : this.value;
        fieldError(control, errorText(err));
        control.focus();
      });
      if (!done) return;
      this.status.textContent = `${key} is set to ${metadataText(value)}.`;
      this.key.value = '';
      this.text.value = '';
      this.key.focus();
    });
  }

  async remove(key, button) {
    await whileBusy(button, async () => {
      const done = await this.change({ [key]: null }, (err) => showError(err, `Remove ${key}`));
      if (done) this.status.textContent = `${key} was removed.`;
    }, () => this.key);
  }

  /** PATCHes the metadata and shows the document the server answers; false when refused. */
  async change(metadata, refused) {
    const { view } = this;
    try {
      const doc = await patch(documentUrl(view.id), { metadata }, { signal: view.life.signal });
      if (!view.life.alive) return false;
      view.showDocument(doc);
      return true;
    } catch (err) {
      if (aborted(err, view.life)) return false;
      refused(err);
      return false;
    }
  }
}

/** "1 chunk", "12 chunks". */
const chunkCount = (n) => `${n} ${n === 1 ? 'chunk' : 'chunks'}`;

/**
 * A new version of the document's file (PUT …/content): the document keeps its id,
 * collections and metadata; the server's answer (chunks kept, added, removed; unchanged;
 * still processing) is shown and the view reloads. Only a finished document can be replaced.
 */
class ReplaceCard {
  constructor(view) {
    this.view = view;
    this.busy = false;
    this.input = h('input', { type: 'file', id: 'replace-file', name: 'file' });
    this.input.addEventListener('change', () => {
      const file = this.input.files?.[0];
      this.input.value = '';
      if (file) this.replace(file);
    });
    this.note = h('p', { id: 'replace-note', class: 'muted replace-note',
      text: 'A new version of this file. The document keeps its id, collections and metadata; '
        + 'chunks whose text did not change keep their embeddings.' });
    this.result = h('p', { id: 'replace-result', class: 'replace-result', role: 'status' });
    this.element = h('section', { id: 'replace', class: 'card replace-card', 'aria-labelledby': 'replace-title' },
      h('h2', { id: 'replace-title', text: 'Replace file' }),
      this.note,
      field('New version of the file', this.input),
      this.result);
  }

  show(doc) {
    const done = isDone(doc.status);
    this.input.disabled = this.busy || !done;
    this.input.title = !done && !this.busy ? 'It can be replaced once it is ready or failed.' : '';
  }

  say(text, kind = '') {
    this.result.className = `replace-result ${kind}`.trim();
    this.result.textContent = text;
  }

  async replace(file) {
    const { view } = this;
    this.busy = true;
    this.input.disabled = true;
    this.showRefusal(null);
    this.say(`Sending ${file.name} and processing it…`, 'muted');
    try {
      const form = new FormData();
      form.append('file', file, file.name);
      const response = await request('PUT', `${documentUrl(view.id)}/content`, form, { signal: view.life.signal });
      const answer = await response.json();
      if (!view.life.alive) return;
      this.say(replaceSummary(response.status, answer, file.name));
      if (answer.changed !== false) {
        // The marked chunk may be gone with the old text.
        view.selected = null;
        const href = documentHref(view.id);
        if (location.hash !== href) history.replaceState(null, '', href);
      }
      this.busy = false;
      await view.reload(answer.document);
    } catch (err) {
      if (aborted(err, view.life)) return;
      this.say('');
      this.showRefusal(err);
    } finally {
      this.busy = false;
      if (view.life.alive && view.doc) this.show(view.doc);
    }
  }

  /** The server's refusal under the file field, a 409 in words (`null` clears it). */
  showRefusal(err) {
    const error = document.getElementById(`${this.input.id}-error`) ?? this.result;
    this.input.toggleAttribute('aria-invalid', Boolean(err));
    if (!err) { replace(error); return; }
    const message = errorText(err);
    const duplicate = /document (\S+) \((.*)\) holds the same bytes/.exec(message);
    if (err instanceof ApiError && err.status === 409 && duplicate) {
      replace(error, 'Not replaced: another document, ',
        h('a', { href: documentHref(duplicate[1]), class: 'duplicate-link', text: duplicate[2] }),
        ', already holds exactly this file.');
    } else if (err instanceof ApiError && err.status === 409 && /still being processed/.test(message)) {
      replace(error, 'Not replaced: this document is still being processed. Try again once it is ready or failed.');
    } else {
      replace(error, `Not replaced: ${message}`);
    }
  }
}

/** The answer of a replacement in words. */
function replaceSummary(status, answer, filename) {
  if (status === 202) return `Replaced by ${filename}; still processing: the text and chunks appear when it is done.`;
  if (answer.changed === false) return `Unchanged: ${filename} holds the same content as the stored file.`;
  const doc = answer.document ?? {};
  if (doc.status === 'failed') return `Replaced by ${filename}, but processing failed: ${doc.error ?? 'no reason given'}.`;
  const chunks = answer.chunks;
  if (!chunks) return `Replaced by ${filename} and processed again.`;
  return `Replaced by ${filename}: ${chunkCount(chunks.kept)} kept, ${chunks.added} added, ${chunks.removed} removed.`;
}

/** UTF-16 code units of `chars[from..to]`. */
function utf16Length(chars, from, to) {
  let length = 0;
  for (let i = from; i < to; i += 1) length += chars[i].length;
  return length;
}

/** Scrolls the scroll box `box` (positioned) so that `target` inside it is near its top. */
function scrollWithin(box, target) {
  box.scrollTop = Math.max(0, target.offsetTop - box.clientHeight / 4);
}
