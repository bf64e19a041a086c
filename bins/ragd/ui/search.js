// The search panel: one query, three rankings side by side (keyword, semantic, hybrid).
//
// `#/search?q=<query>&doc=<document id>&collection=<collection id>&top_k=<n>&filter=<JSON>&rerank=1`
// is a search: submitting the form sets the hash, so back, forward and reload run it again. A
// document and a collection together search their union (the API's `document_ids` and
// `collection_ids`); neither searches every document. `filter` is a metadata filter, sent as
// the API's `filter` (it narrows the documents searched); text that is not JSON is refused
// here, and the server's objection to a filter (a 400) is shown under its field. `rerank=1`
// asks the hybrid search to rerank its candidates (`rerank: true`; without a reranker the
// server's 503 shows in that column), and each reranked hit shows its fused and rerank
// scores beside its ranks. The three POSTs to /api/v1/search/* run in
// parallel and each column shows its own answer or its own error. Every hit links to its
// chunk in its document (`#/documents/<id>?chunk=<chunk id>`). Keyword snippets go through
// dom.js `snippet()`, so only their `<mark>` markers become elements; all other text is text.

import { get, post, errorText, isAbort } from './api.js';
import { h, replace, snippet, field, fieldError, documentHref } from './dom.js';
import { FILTER_EXAMPLE, parseFilter, filterInput } from './documents.js';

const DEFAULT_TOP_K = 10;
const MAX_TOP_K = 100;
const TEXT_CHARS = 300;
const MODES = [
  { mode: 'keyword', title: 'Keyword', hint: 'Words of the query, ranked by BM25' },
  { mode: 'semantic', title: 'Semantic', hint: 'Meaning, by embedding similarity' },
  { mode: 'hybrid', title: 'Hybrid', hint: 'Both lists fused by rank (RRF)' },
];

export function render(main, { query }) {
  const life = new AbortController();
  const request = readRequest(query);
  const columns = MODES.map(resultColumn);
  // The running search: a new one (the same query submitted again) or leaving aborts it.
  let run = new AbortController();
  const search = (next) => {
    run.abort();
    run = new AbortController();
    runSearch(next, columns, run.signal);
  };
  const form = searchForm(request, life.signal, (next) => submit(next, search));
  main.append(
    h('h1', { text: 'Search' }),
    form,
    h('div', { class: 'search-results' }, columns.map((column) => column.element)));
  if (request.q) search(request);
  else for (const column of columns) column.idle();
  document.getElementById('search-query')?.focus({ preventScroll: true });
  return () => { life.abort(); run.abort(); };
}

/** `{q, doc, collection, topK, filter}` from the hash query (`filter`: the JSON as typed). */
function readRequest(query) {
  return {
    q: (query.get('q') ?? '').trim(),
    doc: query.get('doc') ?? '',
    collection: (query.get('collection') ?? '').trim(),
    topK: topK(query.get('top_k')),
    filter: (query.get('filter') ?? '').trim(),
    rerank: query.get('rerank') === '1',
  };
}

function topK(value) {
  const n = Number.parseInt(value ?? '', 10);
  return Number.isFinite(n) ? Math.min(MAX_TOP_K, Math.max(1, n)) : DEFAULT_TOP_K;
}

function hashOf({ q, doc, collection, topK: k, filter, rerank }) {
  const params = new URLSearchParams({ q });
  if (doc) params.set('doc', doc);
  if (collection) params.set('collection', collection);
  if (k !== DEFAULT_TOP_K) params.set('top_k', String(k));
  if (filter) params.set('filter', filter);
  if (rerank) params.set('rerank', '1');
  return `#/search?${params}`;
}

/** A new search sets the hash (the router renders it); the same search again runs at once. */
function submit(request, search) {
  const hash = hashOf(request);
  if (location.hash === hash) search(request);
  else location.hash = hash;
}

// ---------------------------------------------------------------------------------------
// The form

function searchForm(request, signal, onSearch) {
  const query = h('input', { id: 'search-query', name: 'q', type: 'search', required: true,
    value: request.q, autocomplete: 'off', placeholder: 'What are you looking for?' });
  const documents = h('select', { id: 'search-document', name: 'doc' },
    h('option', { value: '', text: 'All documents' }),
    request.doc ? h('option', { value: request.doc, selected: true, text: 'Loading…' }) : null);
  const collections = h('select', { id: 'search-collection', name: 'collection' },
    h('option', { value: '', text: 'All documents' }),
    request.collection ? h('option', { value: request.collection, selected: true, text: 'Loading…' }) : null);
  const count = h('input', { id: 'search-top-k', name: 'top_k', type: 'number', min: 1, max: MAX_TOP_K,
    step: 1, value: String(request.topK), inputmode: 'numeric' });
  const filter = filterInput('search-filter', request.filter);
  filter.addEventListener('input', () => fieldError(filter, null));
  const rerank = h('input', { id: 'search-rerank', name: 'rerank', type: 'checkbox', checked: request.rerank });
  const form = h('form', { id: 'search-form', class: 'card search-form', role: 'search', novalidate: true },
    h('div', { class: 'row' },
      h('div', { class: 'grow search-query-field' }, field('Query', query)),
      h('div', { class: 'search-document-field' }, field('Document', documents)),
      h('div', { class: 'search-collection-field' }, field('Collection', collections)),
      h('div', { class: 'search-top-k-field' }, field('Results per list', count)),
      h('div', { class: 'field search-submit' }, h('button', { type: 'submit', class: 'primary', text: 'Search' }))),
    h('div', { class: 'row' },
      h('div', { class: 'search-filter-field' },
        field('Metadata filter (JSON, optional)', filter, `Only documents whose metadata matches, e.g. ${FILTER_EXAMPLE}`)),
      h('div', { class: 'field search-rerank-field' },
        h('span', { class: 'check' }, rerank,
          h('label', { for: 'search-rerank', text: 'Rerank the hybrid hits' })),
        h('p', { class: 'hint muted', text: 'A language model reads query and passage together (slower)' }))));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const next = readForm(query, documents, collections, count, filter, rerank);
    if (next) onSearch(next);
  });
  loadDocuments(documents, request.doc, signal);
  loadCollections(collections, request.collection, signal);
  return form;
}

/** The form's request, or null (with the problem shown at its field) when it is not valid. */
function readForm(query, documents, collections, count, filterField, rerank) {
  const q = query.value.trim();
  const k = Number(count.value);
  const filter = filterField.value.trim();
  fieldError(query, q ? null : 'Type something to search for.');
  const kValid = Number.isInteger(k) && k >= 1 && k <= MAX_TOP_K;
  fieldError(count, kValid ? null : `A whole number from 1 to ${MAX_TOP_K}.`);
  const filterProblem = parseFilter(filter).error ?? null;
  fieldError(filterField, filterProblem);
  if (!q) { query.focus(); return null; }
  if (!kValid) { count.focus(); return null; }
  if (filterProblem) { filterField.focus(); return null; }
  return { q, doc: documents.value, collection: collections.value, topK: k, filter, rerank: rerank.checked };
}

/** Fills the document choice with the ready documents, by name. */
async function loadDocuments(select, chosen, signal) {
  let items;
  try {
    items = (await get('/api/v1/documents?status=ready&limit=500', { signal })).items;
  } catch (err) {
    if (isAbort(err)) return;
    fieldError(select, `The documents could not be listed: ${errorText(err)}`);
    // The chosen document keeps its place, under its id ("All documents" stays as it is).
    const stale = chosen ? select.querySelector(`option[value="${CSS.escape(chosen)}"]`) : null;
    if (stale) stale.textContent = `Document ${chosen}`;
    return;
  }
  items.sort((a, b) => a.filename.localeCompare(b.filename));
  const options = items.map((doc) => h('option', { value: doc.id, text: doc.filename }));
  if (chosen && !items.some((doc) => doc.id === chosen)) {
    options.unshift(h('option', { value: chosen, text: `Document ${chosen.slice(0, 8)}… (not ready)` }));
  }
  replace(select, h('option', { value: '', text: 'All documents' }), options);
  select.value = chosen;
}

/** Fills the collection choice with the collections, by name (with their sizes). */
async function loadCollections(select, chosen, signal) {
  let items;
  try {
    items = (await get('/api/v1/collections?limit=500', { signal })).items;
  } catch (err) {
    if (isAbort(err)) return;
    fieldError(select, `The collections could not be listed: ${errorText(err)}`);
    const stale = chosen ? select.querySelector(`option[value="${CSS.escape(chosen)}"]`) : null;
    if (stale) stale.textContent = `Collection ${chosen}`;
    return;
  }
  const lower = chosen.toLowerCase();
  // A collection named in the hash by its name is chosen by its id.
  const match = items.find((c) => c.id === chosen) ?? items.find((c) => c.name.toLowerCase() === lower);
  const options = items.map((c) => h('option', { value: c.id,
    text: `${c.name} (${c.document_count} ${c.document_count === 1 ? 'document' : 'documents'})` }));
  if (chosen && !match) options.push(h('option', { value: chosen, text: 'Unknown collection' }));
  replace(select, h('option', { value: '', text: 'All documents' }), options);
  select.value = match ? match.id : chosen;
}

// ---------------------------------------------------------------------------------------
// The results

/** One column: heading, a status line and the ranked hits. */
function resultColumn({ mode, title, hint }) {
  const status = h('p', { class: 'results-status muted', 'aria-live': 'polite' });
  const list = h('ol', { class: 'hits', 'aria-labelledby': `results-${mode}-title` });
  const element = h('section', { id: `results-${mode}`, class: `card results results-${mode}`,
    'aria-labelledby': `results-${mode}-title` },
    h('h2', { id: `results-${mode}-title`, text: title }),
    h('p', { class: 'hint muted', text: hint }),
    status, list);
  const say = (text, kind = 'muted') => {
    status.className = `results-status ${kind}`;
    status.textContent = text;
    if (kind === 'error') status.setAttribute('role', 'alert');
    else status.removeAttribute('role');
  };
  return {
    mode,
    element,
    idle() { replace(list); say('Enter a query to search.'); },
    busy() { element.setAttribute('aria-busy', 'true'); say('Searching…'); },
    show(hits) {
      element.removeAttribute('aria-busy');
      replace(list, hits.map((hit, i) => hitItem(hit, i + 1, mode)));
      say(hits.length === 0 ? 'No matches' : `${hits.length} ${hits.length === 1 ? 'hit' : 'hits'}`);
    },
    fail(err) {
      element.removeAttribute('aria-busy');
      replace(list);
      say(`${title} search failed: ${errorText(err)}`, 'error');
    },
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The id of the collection a hash names: itself when it is an id, else the collection of
 * that name (the API's search takes ids only); rejects with the API's 404 when none.
 */
async function collectionId(key, signal) {
  if (UUID.test(key)) return key;
  return (await get(`/api/v1/collections/${encodeURIComponent(key)}`, { signal })).id;
}

/** The three searches in parallel; each column fills when its answer comes. */
async function runSearch({ q, doc, collection, topK: k, filter: filterText, rerank }, columns, signal) {
  const filterField = document.getElementById('search-filter');
  const { filter, error } = parseFilter(filterText);
  if (error) {
    // Only a hand-made link gets here: the form checks the JSON before it searches.
    if (filterField) fieldError(filterField, error);
    for (const column of columns) column.fail(new Error('the metadata filter is not valid JSON'));
    return;
  }
  for (const column of columns) column.busy();
  let collectionIds = [];
  try {
    if (collection) collectionIds = [await collectionId(collection, signal)];
  } catch (err) {
    if (!isAbort(err)) for (const column of columns) column.fail(err);
    return;
  }
  const body = { query: q, top_k: k, document_ids: doc ? [doc] : [], collection_ids: collectionIds };
  if (filter !== null) body.filter = filter;
  const refused = (err) => {
    // The server's objection to the filter (every column gets it): under the field too.
    if (filter !== null && err?.status === 400 && /filter/i.test(errorText(err)) && filterField) {
      fieldError(filterField, errorText(err));
    }
  };
  for (const column of columns) {
    const asked = column.mode === 'hybrid' && rerank ? { ...body, rerank: true } : body;
    post(`/api/v1/search/${column.mode}`, asked, { signal })
      .then((answer) => column.show(answer?.hits ?? []))
      .catch((err) => { if (!isAbort(err)) { refused(err); column.fail(err); } });
  }
}

function hitItem(hit, rank, mode) {
  const href = documentHref(hit.document_id, hit.chunk_id);
  const where = [hit.page !== null && hit.page !== undefined ? `page ${hit.page}` : null, hit.heading]
    .filter(Boolean).join(' · ');
  // BM25 scores of a small corpus are tiny: keep three significant digits there.
  const score = !Number.isFinite(hit.score) ? '–'
    : Math.abs(hit.score) >= 0.01 || hit.score === 0 ? hit.score.toFixed(3) : hit.score.toPrecision(3);
  const text = mode === 'keyword' && hit.snippet ? snippet(hit.snippet) : truncate(hit.text, TEXT_CHARS);
  return h('li', { class: 'hit', dataset: { chunkId: hit.chunk_id } },
    h('div', { class: 'hit-head' },
      h('span', { class: 'rank', title: 'Rank', text: rank }),
      h('a', { href, class: 'hit-file', text: hit.filename }),
      h('span', { class: 'hit-score' }, h('span', { class: 'muted', text: 'score ' }),
        h('span', { class: 'score', text: score }))),
    where ? h('div', { class: 'hit-where muted', text: where }) : null,
    mode === 'hybrid' ? hybridRanks(hit) : null,
    h('p', { class: 'hit-text' }, text));
}

/** Where a fused hit stood in each list, and its fused and rerank scores when reranked. */
function hybridRanks(hit) {
  const place = (n) => (n === null || n === undefined ? '–' : `#${n}`);
  const reranked = Number.isFinite(hit.rerank_score) && Number.isFinite(hit.fused_score);
  return h('div', { class: 'hit-ranks muted' },
    'keyword ', h('span', { class: 'keyword-rank', text: place(hit.keyword_rank) }),
    ' · semantic ', h('span', { class: 'semantic-rank', text: place(hit.semantic_rank) }),
    reranked ? [' · fused ', h('span', { class: 'fused-score', text: hit.fused_score.toFixed(4) }),
      ' · rerank ', h('span', { class: 'rerank-score', text: hit.rerank_score.toFixed(3) })] : null);
}

/** The first `limit` chars (Unicode scalar values) of `text`, with "…" when cut. */
function truncate(text, limit) {
  const chars = Array.from(String(text ?? ''));
  return chars.length <= limit ? chars.join('') : `${chars.slice(0, limit).join('').trimEnd()}…`;
}
