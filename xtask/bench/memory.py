#!/usr/bin/env python3
"""Python side of `cargo xtask bench memory`: ragd's resident memory, idle and ingesting.

    python memory.py --ragd http://127.0.0.1:PORT --pid PID --work DIR \
        [--text-mb 100] [--embed-seconds 120]

ragd (started by the caller with the bundled chat model and embedding model) is measured
from outside, from `/proc`: the resident set (`VmRSS`) of its process plus every process
below it (the extraction workers), sampled twice a second.

1. Idle: once `/api/v1/models/status` says `loaded`, ten samples over five seconds; the
   median is reported.
2. Ingesting: a text file of `--text-mb` million bytes (deterministic: paragraphs of words
   drawn with a fixed seed, written to `--work`) is uploaded to `/api/v1/documents`, and
   the document is followed through its states (`extracting`, `chunking`, `embedding`)
   with the peak resident set of each. Embedding 100 MB at this machine's rate takes more
   than an hour, so the run stops after `--embed-seconds` of embedding (or when the
   document is ready) and deletes the document; the embedding rate is the progress made
   in that window.

Prints one JSON line: `idle_rss_mb`, `text_mb`, `phases` (state → `peak_rss_mb`,
`seconds`), `peak_rss_mb` (over the whole ingest), `embed_progress` (percent at the stop)
and `embed_seconds`.
"""

import argparse
import json
import random
import statistics
import sys
import time
import urllib.request
from pathlib import Path

SAMPLE_SECONDS = 0.5
WORDS = (
    "the of and to in is that for it as was with be by on not he this are or his from at "
    "which but have an they you were her she there been one all we their has would when "
    "if so no what up out who them some more then its into time only could new these two "
    "may first any like now my such make over our even most me state after also made many "
    "did must before back see through way where get much go well your know should down "
    "work year because come people just say each those take day good how long very "
    "library system memory document index search vector answer question engine retrieval"
).split()


def rss_kb(pid):
    """The resident set of `pid` and all its descendants, in KiB (0 for a gone process)."""
    total = 0
    stack = [pid]
    while stack:
        current = stack.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            stack.extend(int(child) for child in children)
    return total


def get(url):
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def wait_for_model(base, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = get(f"{base}/api/v1/models/status")
        if status.get("state") == "loaded":
            return
        if status.get("state") == "failed":
            sys.exit(f"the chat model failed to load: {status}")
        time.sleep(0.5)
    sys.exit("the chat model did not load in time")


def write_text(path, megabytes):
    """`megabytes` million bytes of deterministic prose-like text."""
    rng = random.Random(20261203)
    target = megabytes * 1_000_000
    written = 0
    with path.open("w", encoding="ascii") as out:
        while written < target:
            sentences = []
            for _ in range(rng.randint(3, 9)):
                words = rng.choices(WORDS, k=rng.randint(6, 22))
                sentences.append(" ".join(words).capitalize() + ".")
            paragraph = " ".join(sentences) + "\n\n"
            paragraph = paragraph[: target - written]
            out.write(paragraph)
            written += len(paragraph)


def upload(base, path):
    boundary = "ragd-bench-memory-boundary"
    head = (
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
        f"filename=\"{path.name}\"\r\nContent-Type: text/plain\r\n\r\n"
    ).encode()
    body = head + path.read_bytes() + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(
        f"{base}/api/v1/documents",
        data=body,
        headers={"Content-Type": f"multipart/form-data; boundary={boundary}"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=600) as response:
        return json.loads(response.read())["documents"][0]["id"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ragd", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--text-mb", type=int, default=100)
    parser.add_argument("--embed-seconds", type=float, default=120)
    args = parser.parse_args()
    base = args.ragd.rstrip("/")

    wait_for_model(base)
    time.sleep(5)
    idle = []
    for _ in range(10):
        idle.append(rss_kb(args.pid))
        time.sleep(SAMPLE_SECONDS)
    if min(idle) == 0:
        sys.exit(f"no resident set read for pid {args.pid}")

    args.work.mkdir(parents=True, exist_ok=True)
    text = args.work / f"text-{args.text_mb}mb.txt"
    write_text(text, args.text_mb)
    print(f"memory.py: uploading {text}", file=sys.stderr)
    document = upload(base, text)
    phases = {}
    peak = 0
    embedding_since = None
    progress = 0
    started = time.monotonic()
    while True:
        doc = get(f"{base}/api/v1/documents/{document}")
        state, progress = doc["status"], doc.get("progress", 0)
        rss = rss_kb(args.pid)
        peak = max(peak, rss)
        phase = phases.setdefault(state, {"peak_kb": 0, "first": time.monotonic()})
        phase["peak_kb"] = max(phase["peak_kb"], rss)
        phase["last"] = time.monotonic()
        if state == "failed":
            sys.exit(f"the document failed: {doc.get('error')}")
        if state == "embedding" and embedding_since is None:
            embedding_since = time.monotonic()
        if state == "ready":
            break
        if embedding_since is not None and time.monotonic() - embedding_since > args.embed_seconds:
            break
        if time.monotonic() - started > args.embed_seconds + 1800:
            sys.exit(f"no end in sight: {doc}")
        time.sleep(SAMPLE_SECONDS)
    embed_seconds = time.monotonic() - embedding_since if embedding_since else 0.0
    request = urllib.request.Request(f"{base}/api/v1/documents/{document}", method="DELETE")
    with urllib.request.urlopen(request, timeout=60):
        pass
    text.unlink()
    print(
        json.dumps(
            {
                "idle_rss_mb": statistics.median(idle) / 1024,
                "text_mb": args.text_mb,
                "phases": {
                    state: {
                        "peak_rss_mb": phase["peak_kb"] / 1024,
                        "seconds": phase["last"] - phase["first"],
                    }
                    for state, phase in phases.items()
                },
                "peak_rss_mb": peak / 1024,
                "embed_progress": progress,
                "embed_seconds": embed_seconds,
            }
        )
    )


if __name__ == "__main__":
    main()
