#!/usr/bin/env python3
"""Python side of `cargo xtask bench ingest`: the Python ingest pipeline ragd replaces.

`cargo xtask bench ingest` runs this in its own virtual environment (pinned packages, see
`xtask/src/bench/mod.rs`), with HF_HUB_OFFLINE=1 and TRANSFORMERS_OFFLINE=1 set; it is not
meant to be called by hand, though it can be:

    python ingest.py run --docs DIR --model-dir SENTENCE_TRANSFORMERS_DIR --db DIR \
        --threads 2 [--batch 32]

The pipeline is the one such systems are built from, file after file, as they do it:
- extract: pypdf (the text of every page) for PDF, python-docx (the paragraphs; tables are
  not read) for DOCX, BeautifulSoup's html.parser (`get_text("\\n")`) for HTML, a plain
  UTF-8 read (errors="replace") for .txt and .md; other files under DIR (MANIFEST.json) are
  skipped;
- split: langchain's RecursiveCharacterTextSplitter, 1000 characters, 150 overlap;
- embed: sentence-transformers on PyTorch, fp32 on the CPU, batches of `--batch` chunks,
  normalised;
- store: a persistent chromadb collection (cosine), `add` batch by batch, with the chunk
  text and {"source": file, "chunk": i} as metadata. `--db` is emptied first.

A file that fails (at any stage) is counted and reported, and the run goes on. It prints one
JSON line on stdout: files, failed, chunks, seconds, files_per_s, chunks_per_s, peak RSS and
the seconds spent in each stage. `seconds` is the loop over the files: loading the model,
one warm-up batch and opening the store are left out (and reported as `load_s`), as in
`embed.py`. Progress goes to stderr.
"""

import argparse
import json
import logging
import resource
import shutil
import sys
import time
from importlib.metadata import version
from pathlib import Path

EXTENSIONS = {".pdf", ".docx", ".html", ".htm", ".txt", ".md"}
# Reported with the result, so that a figure says what it was measured with.
PACKAGES = (
    "pypdf",
    "python-docx",
    "beautifulsoup4",
    "langchain-text-splitters",
    "sentence-transformers",
    "torch",
    "chromadb",
)


def log(message):
    print(f"bench ingest: {message}", file=sys.stderr, flush=True)


def extract(path):
    """The text of one document, the way the replaced pipeline read it."""
    suffix = path.suffix.lower()
    if suffix == ".pdf":
        from pypdf import PdfReader

        return "\n".join(page.extract_text() or "" for page in PdfReader(path).pages)
    if suffix == ".docx":
        import docx

        return "\n".join(paragraph.text for paragraph in docx.Document(path).paragraphs)
    if suffix in (".html", ".htm"):
        from bs4 import BeautifulSoup

        html = path.read_text(encoding="utf-8", errors="replace")
        return BeautifulSoup(html, "html.parser").get_text("\n")
    return path.read_text(encoding="utf-8", errors="replace")


class Stages:
    """Seconds spent in each stage, added up over the files."""

    def __init__(self):
        self.seconds = {"extract_s": 0.0, "split_s": 0.0, "embed_s": 0.0, "store_s": 0.0}

    def run(self, stage, work, *args, **kwargs):
        start = time.perf_counter()
        try:
            return work(*args, **kwargs)
        finally:
            self.seconds[stage] += time.perf_counter() - start


def run(args):
    import chromadb
    import torch
    from langchain_text_splitters import RecursiveCharacterTextSplitter
    from sentence_transformers import SentenceTransformer

    # pypdf logs a warning for every font it cannot fully decode, page after page.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    every = sorted(p for p in args.docs.rglob("*") if p.is_file())
    files = [p for p in every if p.suffix.lower() in EXTENSIONS]
    skipped = len(every) - len(files)
    if not files:
        raise SystemExit(f"bench ingest: no documents under {args.docs}")

    load_start = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    model = SentenceTransformer(str(args.model_dir), device="cpu", local_files_only=True)
    splitter = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=150)
    shutil.rmtree(args.db, ignore_errors=True)
    client = chromadb.PersistentClient(path=str(args.db), settings=chromadb.Settings(anonymized_telemetry=False))
    collection = client.create_collection(name="ingest", metadata={"hnsw:space": "cosine"}, embedding_function=None)

    def embed(texts):
        with torch.inference_mode():
            return model.encode(
                texts,
                batch_size=args.batch,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )

    embed(["warm-up"] * args.batch)
    load_seconds = time.perf_counter() - load_start
    log(f"{len(files)} documents under {args.docs} ({skipped} other files skipped); set up in {load_seconds:.1f} s")

    stages = Stages()
    chunks = 0
    errors = []
    start = time.perf_counter()
    for number, path in enumerate(files, 1):
        source = str(path.relative_to(args.docs))
        file_start = time.perf_counter()
        stored = 0
        try:
            text = stages.run("extract_s", extract, path)
            pieces = stages.run("split_s", splitter.split_text, text)
            for at in range(0, len(pieces), args.batch):
                batch = pieces[at : at + args.batch]
                vectors = stages.run("embed_s", embed, batch)
                stages.run(
                    "store_s",
                    collection.add,
                    ids=[f"{source}#{at + i}" for i in range(len(batch))],
                    documents=batch,
                    embeddings=vectors,
                    metadatas=[{"source": source, "chunk": at + i} for i in range(len(batch))],
                )
                stored += len(batch)
        except Exception as err:  # one bad file must not stop the run, as in the replaced system
            errors.append({"file": source, "error": f"{type(err).__name__}: {err}"[:300]})
            log(f"[{number}/{len(files)}] {source}: failed: {errors[-1]['error']}")
        else:
            log(f"[{number}/{len(files)}] {source}: {stored} chunks in {time.perf_counter() - file_start:.1f} s")
        chunks += stored
    seconds = time.perf_counter() - start

    result = {
        "contender": "python-pipeline",
        "files": len(files),
        "failed": len(errors),
        "chunks": chunks,
        "seconds": seconds,
        "files_per_s": len(files) / seconds,
        "chunks_per_s": chunks / seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        **stages.seconds,
        "load_s": load_seconds,
        "stored": collection.count(),
        "threads": args.threads,
        "batch": args.batch,
        "skipped": skipped,
        "errors": errors,
        "versions": {name: version(name) for name in PACKAGES},
    }
    print(json.dumps(result), flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    pipeline = commands.add_parser("run")
    pipeline.add_argument("--docs", type=Path, required=True)
    pipeline.add_argument("--model-dir", type=Path, required=True)
    pipeline.add_argument("--db", type=Path, required=True)
    pipeline.add_argument("--threads", type=int, required=True)
    pipeline.add_argument("--batch", type=int, default=32)
    pipeline.set_defaults(run=run)
    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
