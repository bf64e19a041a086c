// The documents panel: upload files and watch them through the pipeline; list, filter,
// reindex and delete documents; read one document's extracted text and chunks.
//
// `#/documents?filename=&status=&mime=&offset=` is the list: the filters and the page live
// in the hash (kept with `history.replaceState`, so typing in a filter does not re-render
// the panel) and a reload keeps them. An upload is one multipart request; each file's row
// then polls its document every 500 ms until it is `ready` or `failed`.
//
// `#/documents/<id>?chunk=<chunk id>` is one document: its metadata, its extracted text
// (the first 200 000 chars of a big one) and its chunks, 100 at a time. The chunk named in
// the query is marked in the text: chunk offsets count Unicode scalar values (Rust chars),
// so they are mapped through `Array.from(text)`, never used as UTF-16 indexes.
//
// File names and document text are untrusted: they reach the DOM as text only (dom.js).

import { ApiError, get, post, del, upload, notify, showError, errorText, isAbort } from './api.js';
import { h, replace, bytes, time, field, documentHref, keepingFocus, whileBusy, Lifetime } from './dom.js';

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

export function render(main, { path, query }) {
  return path.length > 0 ? renderDocument(main, path[0], query) : renderList(main, query);
}

// ---------------------------------------------------------------------------------------
// Shared helpers

const isDone = (status) => status === 'ready' || status === 'failed';
const documentUrl = (id) => `${API}/${encodeURIComponent(id)}`;
const aborted = (err, life) => isAbort(err) || !life.alive;

/** "embedding 40 %" while embedding, the bare state otherwise. */
function statusText(status, progress) {
  return status === 'embedding' ? `embedding ${progress ?? 0} %` : status;
}

/** A `.badge.<status>` for a document; a failed one carries its error as tooltip. */
function statusBadge(doc) {
  return h('span', {
    class: `badge ${doc.status}`,
    title: doc.status === 'failed' && doc.error ? doc.error : null,
    text: statusText(doc.status, doc.progress),
  });
}

/** A <select> of `[value, label]` pairs with `selected` chosen (`field()` labels it). */
function select(id, options, selected) {
  return h('select', { id },
    options.map(([value, label]) => h('option', { value, selected: value === selected, text: label })));
}

// ---------------------------------------------------------------------------------------
// The list: upload area, filters, table, pager

function renderList(main, query) {
  const life = new Lifetime();
  const list = new DocumentList(life, readFilters(query));
  main.append(
    h('h1', { text: 'Documents' }),
    uploadArea(life, () => list.load()),
    list.element);
  list.load();
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
    offset: Math.max(0, Number.parseInt(query.get('offset') ?? '0', 10) || 0),
  };
}

/** The table of documents with its filters and pager. */
class DocumentList {
  constructor(life, filters) {
    this.life = life;
    this.filters = filters;
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
    return h('div', { class: 'row filters', role: 'search', 'aria-label': 'Filter documents' },
      h('div', { class: 'grow' }, field('File name', name)),
      field('Status', status),
      field('Type', type));
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
    if (f.offset) params.set('offset', String(f.offset));
    const search = params.toString();
    const hash = `#/documents${search ? `?${search}` : ''}`;
    if (location.hash !== hash) history.replaceState(null, '', hash);
  }

  query() {
    const f = this.filters;
    const params = new URLSearchParams({ limit: String(PAGE_SIZE), offset: String(f.offset) });
    if (f.filename) params.set('filename', f.filename);
    if (f.status) params.set('status', f.status);
    if (f.mime) params.set('mime', f.mime);
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
    let page;
    try {
      page = await get(this.query(), { signal: this.life.signal });
    } catch (err) {
      if (aborted(err, this.life) || mine !== this.generation) return;
      this.showLoadError(err);
      this.refreshTimer = this.life.after(LIST_REFRESH_MS * 2, () => this.load());
      return;
    }
    if (mine !== this.generation || !this.life.alive) return;
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

  showLoadError(err) {
    replace(this.tbody, h('tr', {}, h('td', { colspan: 6, class: 'load-error', role: 'alert',
      text: `The documents could not be loaded: ${errorText(err)}` })));
  }

  /** Rebuilds the rows, keeping keyboard focus on the same control of the same row. */
  showRows(items) {
    keepingFocus(this.tbody, 'documentId', () => {
      if (items.length === 0) {
        const filtered = this.filters.filename || this.filters.status || this.filters.mime;
        replace(this.tbody, h('tr', {}, h('td', { colspan: 6, class: 'muted empty',
          text: filtered ? 'No documents match these filters.' : 'No documents yet: add files above.' })));
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
        h('button', { type: 'button', dataset: { action: 'reindex' }, 'aria-label': `Reindex ${name}`,
          text: 'Reindex', onclick: () => this.reindex(doc) }),
        h('button', { type: 'button', class: 'danger', dataset: { action: 'delete' },
          'aria-label': `Delete ${name}`, text: 'Delete', onclick: () => this.remove(doc) })));
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

// ---------------------------------------------------------------------------------------
// Uploads

/** The file input, the drop zone and the list of this visit's uploads. */
function uploadArea(life, refresh) {
  const uploads = h('ul', { id: 'uploads', class: 'uploads', 'aria-live': 'polite' });
  const start = (files) => { if (files.length > 0) startUpload(files, uploads, life, refresh); };
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
  return h('section', { class: 'card upload', 'aria-labelledby': 'upload-title' },
    h('h2', { id: 'upload-title', text: 'Upload' }), zone, uploads);
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
  constructor(file) {
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
      h('div', { class: 'upload-head' }, this.name, this.badge, this.note), this.bar, this.reason);
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

/** Uploads `files` in one request, then follows each document until it is done. */
async function startUpload(files, list, life, refresh) {
  const rows = files.map((file) => new UploadRow(file));
  list.append(...rows.map((row) => row.element));
  let answer;
  try {
    answer = await upload(files);
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
    this.element = h('div', { class: 'document-view' },
      h('p', { class: 'back' }, h('a', { href: '#/documents', id: 'back-to-documents', text: '← Back to documents' })),
      this.title,
      h('section', { class: 'card', 'aria-label': 'Metadata' }, this.meta),
      h('div', { class: 'document-layout' },
        h('section', { class: 'card document-text-card', 'aria-labelledby': 'document-text-title' },
          h('h2', { id: 'document-text-title', text: 'Extracted text' }), this.textNote, this.pre),
        h('section', { class: 'card chunks-card', 'aria-labelledby': 'chunks-title' },
          h('h2', { id: 'chunks-title', text: 'Chunks' }), this.chunkNote, this.list, this.more)));
  }

  async start() {
    try {
      this.showDocument(await get(documentUrl(this.id), { signal: this.life.signal }));
    } catch (err) {
      if (aborted(err, this.life)) return;
      this.showMissing(err);
      return;
    }
    await this.loadContent();
    if (!isDone(this.doc.status)) this.life.after(DOCUMENT_POLL_MS, () => this.poll());
  }

  showMissing(err) {
    const message = err instanceof ApiError && err.status === 404 ? 'There is no such document.' : errorText(err);
    this.title.textContent = 'Document not found';
    replace(this.element.querySelector('.document-layout'));
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
