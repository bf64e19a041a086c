#!/usr/bin/env python3
"""Semantic search end to end, ragd over HTTP against chromadb's `query_texts`.

Part of `cargo xtask bench http`, run in the bench virtual environment while ragd serves a
data directory:

    python query_e2e.py --ragd http://127.0.0.1:PORT --data-dir DATA --model-dir MINILM \
        --queries 60

The comparison a user of the system ragd replaces would make: a query text in, the ten
nearest chunks with their text out.

- ragd: `POST /api/v1/search/semantic` (`top_k` 10) on one keep-alive connection
  (`http.client`), the response read and parsed: the query embedded by ragd's ONNX MiniLM,
  LanceDB, the catalog's chunk rows, JSON.
- chromadb: `collection.query(query_texts=[q], n_results=10, include=documents, metadatas,
  distances)` in this process on an in-memory collection (HNSW, cosine) holding ragd's
  chunks (read from `DATA/ragd.sqlite3`) with chromadb's default embedding function,
  `ONNXMiniLM_L6_V2`: all-MiniLM-L6-v2 in ONNX Runtime, fp32, its own tokenizer and
  pooling. That function downloads its model on first use; this machine has no internet,
  so its folder is made from `--model-dir` instead (ragd's fp32 export of the same
  weights, `tokenizer.json` and configs, and `vocab.txt` written from the tokenizer's
  vocabulary), in a temporary directory, so the user's `~/.cache/chroma` is not touched.

Every query text is used once per contender (ragd has no query cache to hit, but neither
side gets to repeat a text), the order of the two alternates from one query to the next,
and both get the same `WARM_UP` queries first (`bench search`'s, as are the percentiles).
Prints one JSON line: p50 and p99 in ms and the number of queries for each, and
chromadb's version.
"""

import argparse
import http.client
import json
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import chromadb
from chromadb.utils.embedding_functions.onnx_mini_lm_l6_v2 import ONNXMiniLM_L6_V2
from search import WARM_UP, percentile

TOP_K = 10

SUBJECTS = [
    "vacation days", "the laptop setup", "holiday leave", "the service desk", "the menu",
    "the quarterly report", "revenue growth", "the installation guide", "first day tools",
    "the team handbook", "prices of the dishes", "the second page",
]  # fmt: skip
FORMS = [
    "How many {} do employees get?", "Where can I read about {}?", "Tell me about {}",
    "what does the document say on {}", "{} summary", "Is there anything about {} here?",
]  # fmt: skip


def query_texts(n):
    """`n` distinct query texts, deterministic."""
    texts = [form.format(subject) for form in FORMS for subject in SUBJECTS]
    if n > len(texts):
        sys.exit(f"at most {len(texts)} distinct queries")
    return texts[:n]


def chroma_model_dir(model_dir, into):
    """The folder `ONNXMiniLM_L6_V2` expects, made from ragd's MiniLM files."""
    folder = into / ONNXMiniLM_L6_V2.EXTRACTED_FOLDER_NAME
    folder.mkdir(parents=True)
    shutil.copy(model_dir / "model-fp32.onnx", folder / "model.onnx")
    for name in ["config.json", "special_tokens_map.json", "tokenizer_config.json",
                 "tokenizer.json"]:  # fmt: skip
        shutil.copy(model_dir / name, folder / name)
    vocab = json.loads((model_dir / "tokenizer.json").read_text())["model"]["vocab"]
    ordered = sorted(vocab.items(), key=lambda item: item[1])
    (folder / "vocab.txt").write_text("".join(f"{token}\n" for token, _ in ordered))


def ragd_chunks(data_dir):
    """Every chunk's id, text and document id, from ragd's catalog."""
    conn = sqlite3.connect(f"file:{data_dir / 'ragd.sqlite3'}?mode=ro", uri=True)
    rows = conn.execute("SELECT id, text, document_id FROM chunks ORDER BY seq").fetchall()
    conn.close()
    if not rows:
        sys.exit("ragd's catalog holds no chunks")
    return rows


class Ragd:
    """ragd's semantic search on one keep-alive connection."""

    def __init__(self, base):
        url = urlparse(base)
        self.conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)

    def query(self, text):
        body = json.dumps({"query": text, "top_k": TOP_K})
        self.conn.request(
            "POST", "/api/v1/search/semantic", body, {"Content-Type": "application/json"}
        )
        response = self.conn.getresponse()
        payload = response.read()
        if response.status != 200:
            sys.exit(f"ragd answered {response.status}: {payload[:200]!r}")
        hits = json.loads(payload)["hits"]
        if not hits or not hits[0]["text"]:
            sys.exit(f"ragd found nothing for {text!r}")


class Chroma:
    """chromadb's `query_texts` on ragd's chunks."""

    def __init__(self, chunks):
        client = chromadb.EphemeralClient()
        self.collection = client.create_collection(
            "chunks", embedding_function=ONNXMiniLM_L6_V2(), metadata={"hnsw:space": "cosine"}
        )
        for start in range(0, len(chunks), 256):
            batch = chunks[start : start + 256]
            self.collection.add(
                ids=[row[0] for row in batch],
                documents=[row[1] for row in batch],
                metadatas=[{"document_id": row[2]} for row in batch],
            )

    def query(self, text):
        found = self.collection.query(
            query_texts=[text], n_results=TOP_K, include=["documents", "metadatas", "distances"]
        )
        if not found["documents"][0]:
            sys.exit(f"chromadb found nothing for {text!r}")


def summary(samples):
    return {
        "p50_ms": percentile(samples, 50),
        "p99_ms": percentile(samples, 99),
        "queries": len(samples),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ragd", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=60)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as home:
        ONNXMiniLM_L6_V2.DOWNLOAD_PATH = Path(home) / "all-MiniLM-L6-v2"
        chroma_model_dir(args.model_dir, ONNXMiniLM_L6_V2.DOWNLOAD_PATH)
        chunks = ragd_chunks(args.data_dir)
        chroma = Chroma(chunks)
        ragd = Ragd(args.ragd)
        texts = query_texts(args.queries + WARM_UP)
        for text in texts[:WARM_UP]:
            ragd.query(text)
            chroma.query(text)
        times = {"ragd": [], "chroma": []}
        contenders = {"ragd": ragd, "chroma": chroma}
        for position, text in enumerate(texts[WARM_UP:]):
            order = ["ragd", "chroma"] if position % 2 == 0 else ["chroma", "ragd"]
            for name in order:
                started = time.perf_counter()
                contenders[name].query(text)
                times[name].append((time.perf_counter() - started) * 1000)
    print(
        json.dumps(
            {
                "ragd": summary(times["ragd"]),
                "chroma": summary(times["chroma"]),
                "chunks": len(chunks),
                "chromadb_version": chromadb.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
