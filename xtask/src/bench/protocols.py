"""`cargo xtask bench http`, protocol part: the same OpenAI-API requests, sent with the official
`openai` SDK, to ragd and to a peer server (llama.cpp's `llama-server` on the same GGUF).

Measures, per server, alternating servers every round so drift hits both alike:
- chat: time to first token of a streamed `/v1/chat/completions` (temperature 0, fixed seed,
  `max_tokens` small), and the whole streamed request;
- embeddings: `/v1/embeddings` throughput, texts per second, in batches.

Prints one JSON object on stdout; xtask writes the table. Usage:
  python protocols.py chat URL KEY MODEL URL KEY MODEL --rounds R
  python protocols.py embed URL KEY MODEL URL KEY MODEL --rounds R --batch B
"""

import json
import statistics
import sys
import time

from openai import OpenAI

QUESTION = (
    "Summarise in one sentence what a vacation policy in an employee handbook usually says "
    "about carrying unused days over to the next year."
)

TEXTS = [
    f"Document {i}: the employee handbook describes the vacation policy, the approval steps, "
    f"how unused days carry over, and whom to ask when the calendar shows a conflict ({i})."
    for i in range(64)
]


def ttft(client, model, max_tokens, round_):
    # A new question every round, the same for both servers, differing in its last words:
    # both keep their prompt caches as they ship (llama-server's `cache_prompt`, ragd's
    # sequences), so each reads those words and the template's end, never a whole answer.
    question = f"{QUESTION} (Question {round_}.)"
    start = time.perf_counter()
    first = None
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": question}],
        temperature=0,
        seed=7,
        max_tokens=max_tokens,
        stream=True,
    )
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - start
    total = time.perf_counter() - start
    if first is None:
        raise SystemExit(f"{model}: the stream had no content")
    return first * 1000.0, total * 1000.0


def embed_rate(client, model, batch, requests):
    start = time.perf_counter()
    texts = 0
    for i in range(requests):
        chunk = [TEXTS[(i * batch + j) % len(TEXTS)] for j in range(batch)]
        answer = client.embeddings.create(model=model, input=chunk)
        if len(answer.data) != batch:
            raise SystemExit(f"{model}: {len(answer.data)} embeddings for {batch} inputs")
        texts += batch
    return texts / (time.perf_counter() - start)


def summary(values):
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"median": statistics.median(ordered), "p90": p90, "n": len(ordered)}


def main():
    args = sys.argv[1:]
    kind, servers, rest = args[0], args[1:7], args[7:]
    options = dict(zip(rest[::2], rest[1::2]))
    rounds = int(options.get("--rounds", "10"))
    batch = int(options.get("--batch", "16"))
    clients = [
        ("ragd", OpenAI(base_url=servers[0], api_key=servers[1], max_retries=0), servers[2]),
        ("peer", OpenAI(base_url=servers[3], api_key=servers[4], max_retries=0), servers[5]),
    ]
    results = {name: {"first": [], "total": [], "rate": []} for name, _, _ in clients}
    # One warm-up each (model pages, caches), not measured.
    for name, client, model in clients:
        if kind == "chat":
            ttft(client, model, 4, -1)
        else:
            embed_rate(client, model, batch, 1)
    for round_ in range(rounds):
        order = clients if round_ % 2 == 0 else list(reversed(clients))
        for name, client, model in order:
            if kind == "chat":
                first, total = ttft(client, model, 16, round_)
                results[name]["first"].append(first)
                results[name]["total"].append(total)
            else:
                results[name]["rate"].append(embed_rate(client, model, batch, 4))
    out = {}
    for name, values in results.items():
        out[name] = {key: summary(v) for key, v in values.items() if v}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
