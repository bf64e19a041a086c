#!/usr/bin/env python3
"""Peer of `cargo xtask bench http`: ragd's search API on the stack ragd replaces.

FastAPI under uvicorn (uvloop, httptools, keep-alive, one process), sentence-transformers
for the query embedding and ChromaDB for the vectors: the Python RAG service ragd takes
the place of, serving ragd's three searches over the same data as a ragd data directory,
so that wrk measures both servers doing the same work:

    python http_peer.py --data-dir RAGD_DATA_DIR --model-dir ST_MODEL_DIR --port P [--threads 2]

`--model-dir` is the sentence-transformers folder of all-MiniLM-L6-v2 (`embed.py st-model`).
The server listens on 127.0.0.1 once everything is loaded, so a client can wait for the port.

- `GET /health`: `{"status": "ok"}`.
- `POST /api/v1/search/keyword`: SQLite FTS5 BM25 on ragd's own catalog
  (`DATA/ragd.sqlite3`, opened read-only) with ragd's FTS5 query built from the user text
  (`fts_query` in `crates/catalog/src/search.rs`: distinct lowercased words, English
  function words dropped unless nothing else is left, at most 32, each quoted, joined with
  OR, so user text is never FTS5 syntax) and ragd's SQL (BM25 order, `<mark>` snippets).
- `POST /api/v1/search/semantic`: the query embedded by sentence-transformers (CPU,
  `--threads` torch threads, normalised) and searched in an in-memory ChromaDB collection
  (HNSW, cosine) loaded at start-up with ragd's chunk vectors (its LanceDB table
  `DATA/lance/chunks.lance`, read with pylance) and each chunk's text and metadata from the
  catalog: semantic hits come from ChromaDB alone.
- `POST /api/v1/search/hybrid`: both lists searched `4 * top_k` deep and fused by weighted
  reciprocal rank fusion (k 60, weights 1 unless the request says otherwise), cut to
  `top_k`, as `Searcher::hybrid` and `fuse` in `crates/search/src` do.

Request bodies take ragd's `query`, `top_k` (1 to 100, default 10) and `document_ids`, and
for hybrid also `rrf_k` and `weights`; responses have ragd's shape (`mode`, and `hits` with
every field of ragd's `SearchHit`).

Keyword search is an `async def` endpoint: one FTS5 query of well under a millisecond
costs less than FastAPI's hand-off of a plain `def` endpoint to its thread pool and back
(twice: the endpoint, then the response's validation), so it runs on the event loop (under
wrk it answered 1.3 to 1.9 times the requests per second of a `def` endpoint). Semantic and
hybrid search are plain `def` endpoints: a query embedding takes milliseconds of PyTorch
work, which on the event loop would stall every other connection; in the thread pool the
loop keeps serving, and PyTorch, SQLite and ChromaDB release the GIL, so two searches use
both cores.
"""

import argparse
import json
import sqlite3
import sys
import threading
import time
from pathlib import Path

import chromadb
import lance
import regex
import torch
import transformers
import uvicorn
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel, ConfigDict, Field
from sentence_transformers import SentenceTransformer

# A word as ragd splits text: a run of chars for which Rust's `char::is_alphanumeric` holds
# (Unicode Alphabetic, or a numeric general category).
WORD = regex.compile(r"[\p{Alphabetic}\p{Nd}\p{Nl}\p{No}]+")
MAX_QUERY_TERMS = 32
# ragd's STOPWORDS: left out of a query that has other words.
STOPWORDS = frozenset(
    {
        "a", "about", "after", "all", "am", "an", "and", "any", "are", "as", "at", "be", "been",
        "being", "but", "by", "can", "could", "did", "do", "does", "for", "from", "had", "has", "have",
        "he", "her", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "me", "my", "no",
        "not", "of", "on", "or", "our", "she", "should", "so", "than", "that", "the", "their", "them",
        "then", "there", "these", "they", "this", "those", "to", "up", "us", "was", "we", "were",
        "what", "when", "where", "which", "while", "who", "why", "will", "with", "would", "you",
        "your",
    }
)  # fmt: skip
MAX_TOP_K = 100
# Hybrid search reads each list this many times `top_k` deep before fusing.
CANDIDATES_FACTOR = 4

# Named as the fields of `Hit`.
CHUNK_COLUMNS = "c.id AS chunk_id, c.document_id, d.filename, c.text, c.char_start, c.char_end, c.page, c.heading"
CHUNKS_SQL = f"SELECT {CHUNK_COLUMNS} FROM chunks c JOIN documents d ON d.id = c.document_id"
KEYWORD_SQL = f"""
    SELECT {CHUNK_COLUMNS}, -bm25(chunks_fts) AS score,
           snippet(chunks_fts, 0, '<mark>', '</mark>', '…', 32) AS snippet
    FROM chunks_fts
    JOIN chunks c ON c.seq = chunks_fts.rowid
    JOIN documents d ON d.id = c.document_id
    WHERE chunks_fts MATCH ?1
      AND (?2 IS NULL OR c.document_id IN (SELECT value FROM json_each(?2)))
    ORDER BY bm25(chunks_fts)
    LIMIT ?3
"""


def log(message):
    print(f"http peer: {message}", file=sys.stderr, flush=True)


def fts_query(text):
    """ragd's FTS5 query for `text`, or None when it has no word."""
    words = list(dict.fromkeys(word.lower() for word in WORD.findall(text)))
    chosen = [word for word in words if word not in STOPWORDS] or words
    return " OR ".join(f'"{word}"' for word in chosen[:MAX_QUERY_TERMS]) or None


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str
    top_k: int = Field(10, ge=1, le=MAX_TOP_K)
    document_ids: list[str] = []


class Weights(BaseModel):
    model_config = ConfigDict(extra="forbid")

    keyword: float = Field(1.0, ge=0)
    semantic: float = Field(1.0, ge=0)


class HybridRequest(SearchRequest):
    rrf_k: float = Field(60.0, ge=0)
    weights: Weights = Weights()


class Hit(BaseModel):
    chunk_id: str
    document_id: str
    filename: str
    score: float
    text: str
    snippet: str | None = None
    char_start: int
    char_end: int
    page: int | None = None
    heading: str | None = None
    keyword_rank: int | None = None
    semantic_rank: int | None = None
    fused_score: float | None = None
    rerank_score: float | None = None


class SearchResponse(BaseModel):
    mode: str
    hits: list[Hit]


class Searcher:
    """The catalog, the model and the ChromaDB collection, loaded once at start-up."""

    def __init__(self, data_dir, model_dir, threads):
        self._catalog_uri = f"{(data_dir / 'ragd.sqlite3').as_uri()}?mode=ro"
        self._connections = threading.local()

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
        transformers.logging.disable_progress_bar()
        self._model = SentenceTransformer(str(model_dir), device="cpu", local_files_only=True)

        table = lance.dataset(str(data_dir / "lance" / "chunks.lance")).to_table(columns=["id", "vector"])
        ids = table.column("id").to_pylist()
        vectors = table.column("vector").combine_chunks().flatten().to_numpy().reshape(len(ids), -1)
        chunks = {row["chunk_id"]: dict(row) for row in self._catalog().execute(CHUNKS_SQL)}
        # Vectors whose chunk is not in the catalog are left out, as ragd skips them.
        rows = [(at, chunks[chunk_id]) for at, chunk_id in enumerate(ids) if chunk_id in chunks]

        client = chromadb.EphemeralClient(settings=chromadb.Settings(anonymized_telemetry=False))
        self._collection = client.create_collection(
            "chunks", configuration={"hnsw": {"space": "cosine"}}, embedding_function=None
        )
        step = client.get_max_batch_size()
        for start in range(0, len(rows), step):
            batch = rows[start : start + step]
            self._collection.add(
                ids=[chunk["chunk_id"] for _, chunk in batch],
                embeddings=vectors[[at for at, _ in batch]],
                documents=[chunk["text"] for _, chunk in batch],
                metadatas=[chunk_metadata(chunk) for _, chunk in batch],
            )
        self.size = len(rows)

    def _catalog(self):
        """This thread's read-only connection to the catalog."""
        connection = getattr(self._connections, "connection", None)
        if connection is None:
            connection = sqlite3.connect(self._catalog_uri, uri=True)
            connection.row_factory = sqlite3.Row
            self._connections.connection = connection
        return connection

    def keyword(self, text, depth, document_ids):
        """BM25 hits, best first. ValueError when `text` has no word."""
        query = fts_query(text)
        if query is None:
            raise ValueError(f"search text {text!r} contains no searchable word")
        documents = json.dumps(document_ids) if document_ids else None
        rows = self._catalog().execute(KEYWORD_SQL, (query, documents, depth))
        return [Hit(**row, keyword_rank=rank) for rank, row in enumerate(rows, 1)]

    def semantic(self, text, depth, document_ids):
        """Hits by cosine similarity, best first."""
        vector = self._model.encode(text, normalize_embeddings=True, convert_to_numpy=True)
        result = self._collection.query(
            query_embeddings=[vector],
            n_results=min(depth, self.size),
            where={"document_id": {"$in": document_ids}} if document_ids else None,
            include=["documents", "metadatas", "distances"],
        )
        columns = ("ids", "documents", "metadatas", "distances")
        found = zip(*(result[column][0] for column in columns), strict=True)
        return [
            Hit(chunk_id=chunk_id, text=text, score=1.0 - distance, semantic_rank=rank, **metadata)
            for rank, (chunk_id, text, metadata, distance) in enumerate(found, 1)
        ]

    def hybrid(self, request):
        """Both lists fused by weighted reciprocal rank fusion, best first."""
        depth = request.top_k * CANDIDATES_FACTOR
        try:
            keyword = self.keyword(request.query, depth, request.document_ids)
        except ValueError:
            # A query with no searchable word can still match by meaning.
            keyword = []
        semantic = self.semantic(request.query, depth, request.document_ids)
        # Dicts keep first-seen order and the sort is stable, so ties keep it, as in ragd.
        fused = {}
        for hits, weight in ((keyword, request.weights.keyword), (semantic, request.weights.semantic)):
            for rank, hit in enumerate(hits, 1):
                fused[hit.chunk_id] = fused.get(hit.chunk_id, 0.0) + weight / (request.rrf_k + rank)
        semantic_ranks = {hit.chunk_id: hit.semantic_rank for hit in semantic}
        # A chunk found by both lists is the keyword hit (it has the snippet).
        hits = {hit.chunk_id: hit for hit in semantic} | {hit.chunk_id: hit for hit in keyword}
        best = sorted(fused.items(), key=lambda item: item[1], reverse=True)[: request.top_k]
        return [
            hits[chunk_id].model_copy(
                update={"score": score, "fused_score": score, "semantic_rank": semantic_ranks.get(chunk_id)}
            )
            for chunk_id, score in best
        ]


def chunk_metadata(chunk):
    """The ChromaDB metadata of a catalog chunk: its other `Hit` fields, less the None ones."""
    return {key: value for key, value in chunk.items() if key not in ("chunk_id", "text") and value is not None}


def checked_query(text):
    """`text`, unless it is blank: ragd answers 400 to a blank query in every mode."""
    if not text.strip():
        raise HTTPException(status_code=400, detail="the query is empty")
    return text


def create_app(searcher):
    app = FastAPI(title="ragd http peer", openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/api/v1/search/keyword")
    async def keyword(request: SearchRequest) -> SearchResponse:
        try:
            hits = searcher.keyword(checked_query(request.query), request.top_k, request.document_ids)
        except ValueError as err:
            raise HTTPException(status_code=400, detail=str(err)) from err
        return SearchResponse(mode="keyword", hits=hits)

    @app.post("/api/v1/search/semantic")
    def semantic(request: SearchRequest) -> SearchResponse:
        hits = searcher.semantic(checked_query(request.query), request.top_k, request.document_ids)
        return SearchResponse(mode="semantic", hits=hits)

    @app.post("/api/v1/search/hybrid")
    def hybrid(request: HybridRequest) -> SearchResponse:
        checked_query(request.query)
        return SearchResponse(mode="hybrid", hits=searcher.hybrid(request))

    return app


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, required=True, help="a ragd data directory")
    parser.add_argument("--model-dir", type=Path, required=True, help="all-MiniLM-L6-v2, sentence-transformers")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--threads", type=int, default=2, help="PyTorch threads")
    args = parser.parse_args()

    start = time.perf_counter()
    searcher = Searcher(args.data_dir.resolve(), args.model_dir, args.threads)
    log(f"loaded {searcher.size} chunks in {time.perf_counter() - start:.1f} s")
    uvicorn.run(
        create_app(searcher),
        host="127.0.0.1",
        port=args.port,
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
