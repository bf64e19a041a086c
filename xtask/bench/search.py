#!/usr/bin/env python3
"""Python side of `cargo xtask bench search`: the vectors, the exact answers, chromadb.

`cargo xtask bench search` runs this in its own virtual environment (pinned packages, see
`xtask/src/bench/mod.rs`):

    python search.py data --sizes 10000,100000 --queries 200 --dim 384 --out DIR
    python search.py chroma --dir DIR --n 10000 --queries 200 --k 10 --db TMPDIR
    python search.py lance --dir DIR --n 10000 --queries 200 --k 10 --ef 64 --table DB/chunks.lance

`data` writes, deterministically (fixed seed):
- `base.f32`: max(sizes) x dim little-endian f32 unit vectors, clustered: each is a random
  centre plus Gaussian noise, normalised, so that near neighbours exist and ANN recall
  means something (uniform random vectors in 384 dimensions are all about equally far);
  a table of size n is the first n rows;
- `queries.f32`: fresh vectors from the same clusters (none of them is in the table);
- `truth-N.u32`: for each table size N, the exact top-k row numbers of every query by
  cosine similarity (numpy, brute force) — the reference both stores' recall is taken
  against.

`chroma` loads the first n rows into a persistent chromadb collection (HNSW, cosine) and
prints one JSON line: load seconds, per-query latency p50/p99 in ms, recall@k vs exact.

`lance` queries the very table and IVF_HNSW_SQ index ragd built (left in place by
`bench_search --keep-db`) through Lance's own release build, the `pylance` wheel of the
Lance version ragd links, with ragd's query: cosine, the same `ef`, refine factor 1, the
same columns (three named, `_distance` added by Lance to every vector query). The difference to ragd's latency is then ragd's own overhead (its Rust
build, LanceDB's query layer, its code), not the index or the data.

Every contender gets the same warm-up: `WARM_UP` queries before timing starts (as ragd's
`bench_search` does).
"""

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

SEED = 20240611
# Queries run before timing starts, for every contender (ragd's bench_search uses 5 too).
WARM_UP = 5


def log(message):
    print(f"bench search: {message}", file=sys.stderr, flush=True)


def unit(x):
    import numpy as np

    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_data(args):
    import numpy as np

    sizes = sorted({int(s) for s in args.sizes.split(",")})
    total = sizes[-1]
    rng = np.random.default_rng(SEED)
    # About 100 rows per cluster; the noise norm (~0.06 * sqrt(384) = 1.2) is a little above
    # the centre's norm, so rows of one cluster have cosine ~0.4 with each other and ~0 with
    # other clusters: close neighbours are within a cluster but not trivially so.
    clusters = max(total // 100, 1)
    centres = unit(rng.standard_normal((clusters, args.dim)))
    noise = 0.06

    def sample(count):
        # Scattered cluster choice, so every prefix of the table spans many clusters.
        labels = rng.integers(0, clusters, size=count)
        points = centres[labels] + noise * rng.standard_normal((count, args.dim)).astype(np.float32)
        return unit(points)

    base = sample(total)
    queries = sample(args.queries)
    args.out.mkdir(parents=True, exist_ok=True)
    base.astype("<f4").tofile(args.out / "base.f32")
    queries.astype("<f4").tofile(args.out / "queries.f32")
    for n in sizes:
        scores = queries @ base[:n].T
        top = np.argsort(-scores, axis=1, kind="stable")[:, : args.k]
        top.astype("<u4").tofile(args.out / f"truth-{n}.u32")
    meta = {"dim": args.dim, "sizes": sizes, "queries": args.queries, "k": args.k, "clusters": clusters, "seed": SEED}
    (args.out / "meta.json").write_text(json.dumps(meta) + "\n")
    log(f"wrote {total} vectors, {args.queries} queries and exact top-{args.k} for {sizes} to {args.out}")


def percentile(values, q):
    import numpy as np

    return float(np.percentile(np.array(values), q))


def run_chroma(args):
    import chromadb
    import numpy as np

    meta = json.loads((args.dir / "meta.json").read_text())
    dim = meta["dim"]
    base = np.fromfile(args.dir / "base.f32", dtype="<f4").reshape(-1, dim)[: args.n]
    queries = np.fromfile(args.dir / "queries.f32", dtype="<f4").reshape(-1, dim)[: args.queries]
    truth = np.fromfile(args.dir / f"truth-{args.n}.u32", dtype="<u4").reshape(-1, meta["k"])

    shutil.rmtree(args.db, ignore_errors=True)
    client = chromadb.PersistentClient(path=str(args.db), settings=chromadb.Settings(anonymized_telemetry=False))
    collection = client.create_collection(name="bench", metadata={"hnsw:space": "cosine"}, embedding_function=None)
    start = time.perf_counter()
    step = min(client.get_max_batch_size(), 5000)
    for at in range(0, args.n, step):
        rows = base[at : at + step]
        collection.add(ids=[str(i) for i in range(at, at + len(rows))], embeddings=rows)
    load_seconds = time.perf_counter() - start

    def query(vector):
        result = collection.query(query_embeddings=[vector], n_results=args.k, include=[])
        return [int(i) for i in result["ids"][0]]

    latencies, recall = timed_queries(query, queries, truth, args.k)
    print(
        json.dumps(
            {
                "contender": "chromadb",
                "version": chromadb.__version__,
                "n": args.n,
                "queries": len(queries),
                "load_s": load_seconds,
                "p50_ms": percentile(latencies, 50),
                "p99_ms": percentile(latencies, 99),
                "recall": recall,
            }
        ),
        flush=True,
    )
    del collection, client
    shutil.rmtree(args.db, ignore_errors=True)


def timed_queries(query, queries, truth, k):
    """Runs `query` (vector -> row numbers) over every query after the warm-up; returns the
    per-query latencies in ms and recall@k against the exact answers."""
    for vector in queries[: min(WARM_UP, len(queries))]:
        query(vector)
    latencies = []
    hits = 0
    for row, vector in enumerate(queries):
        start = time.perf_counter()
        found = query(vector)
        latencies.append((time.perf_counter() - start) * 1000.0)
        hits += len(set(found) & set(truth[row, :k].tolist()))
    return latencies, hits / (len(queries) * k)


def run_lance(args):
    import lance
    import numpy as np

    meta = json.loads((args.dir / "meta.json").read_text())
    dim = meta["dim"]
    queries = np.fromfile(args.dir / "queries.f32", dtype="<f4").reshape(-1, dim)[: args.queries]
    truth = np.fromfile(args.dir / f"truth-{args.n}.u32", dtype="<u4").reshape(-1, meta["k"])
    dataset = lance.dataset(str(args.table))
    if not dataset.list_indices():
        sys.exit(f"{args.table} has no index: run bench_search with --keep-db and without --skip-ann")

    def query(vector):
        table = dataset.to_table(
            columns=["id", "document_id", "session_id"],
            nearest={
                "column": "vector",
                "q": vector,
                "k": args.k,
                "metric": "cosine",
                "ef": args.ef,
                "refine_factor": 1,
            },
        )
        # ragd's row ids carry the row number in their low 32 bits (see bench_search.rs).
        return [int(i.replace("-", ""), 16) & 0xFFFFFFFF for i in table.column("id").to_pylist()]

    latencies, recall = timed_queries(query, queries, truth, args.k)
    print(
        json.dumps(
            {
                "contender": "pylance",
                "version": lance.__version__,
                "n": args.n,
                "queries": len(queries),
                "ef": args.ef,
                "p50_ms": percentile(latencies, 50),
                "p99_ms": percentile(latencies, 99),
                "recall": recall,
            }
        ),
        flush=True,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)

    data = commands.add_parser("data")
    data.add_argument("--sizes", required=True)
    data.add_argument("--queries", type=int, required=True)
    data.add_argument("--dim", type=int, default=384)
    data.add_argument("--k", type=int, default=10)
    data.add_argument("--out", type=Path, required=True)
    data.set_defaults(run=make_data)

    chroma = commands.add_parser("chroma")
    chroma.add_argument("--dir", type=Path, required=True)
    chroma.add_argument("--n", type=int, required=True)
    chroma.add_argument("--queries", type=int, required=True)
    chroma.add_argument("--k", type=int, default=10)
    chroma.add_argument("--db", type=Path, required=True)
    chroma.set_defaults(run=run_chroma)

    lance_query = commands.add_parser("lance")
    lance_query.add_argument("--dir", type=Path, required=True)
    lance_query.add_argument("--n", type=int, required=True)
    lance_query.add_argument("--queries", type=int, required=True)
    lance_query.add_argument("--k", type=int, default=10)
    lance_query.add_argument("--ef", type=int, required=True)
    lance_query.add_argument("--table", type=Path, required=True)
    lance_query.set_defaults(run=run_lance)

    args = parser.parse_args()
    args.run(args)


if __name__ == "__main__":
    main()
