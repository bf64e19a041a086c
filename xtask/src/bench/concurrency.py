"""`cargo xtask bench llm --concurrency N,...`, client part: N streamed chat completions sent at
once with the official `openai` SDK to ragd and to a peer (llama.cpp's `llama-server --parallel
N`), rounds alternating servers so drift hits both alike.

Every request asks for a very long essay (the bundled model writes more than 300 tokens, so each
generates exactly `--tokens`), greedy, with a question that differs per request and round. Both
servers keep their prompt caches as they ship (llama-server's `cache_prompt` is on by default,
ragd's is always on), so each may skip the shared beginning of the prompts (the system message)
and neither skips a question. Per
request: time to first token, generated tokens (the usage chunk) and the decode rate after the
first token; per round: aggregate tokens/s, all tokens over the wall time of the round. A system
message is always sent: the model's Jinja template (which llama-server runs) adds a default one
when there is none, llama.cpp's built-in ChatML rendering (ragd's) does not, and the prompts must
be the same; the prompt tokens each server counted are reported to show it.

Prints one JSON object on stdout; xtask writes the table. Usage:
  python concurrency.py URL KEY MODEL URL KEY MODEL --n N --rounds R --tokens T
"""

import asyncio
import json
import statistics
import sys
import time

from openai import AsyncOpenAI


async def one(client, model, tokens, round_, index):
    question = (
        f"Write a very long essay about the history of Rome. (Request {index} of round {round_}.)"
    )
    start = time.perf_counter()
    first = None
    generated = None
    prompt = None
    stream = await client.chat.completions.create(
        model=model,
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": question},
        ],
        temperature=0,
        max_tokens=tokens,
        stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
        if chunk.usage is not None:
            generated = chunk.usage.completion_tokens
            prompt = chunk.usage.prompt_tokens
    end = time.perf_counter()
    if first is None or generated is None:
        raise SystemExit(f"{model}: no content or no usage chunk")
    if generated != tokens and round_ >= 0:
        raise SystemExit(f"{model}: {generated} tokens, not {tokens}: not the same work")
    decode_rate = (generated - 1) / (end - first) if end > first and generated > 1 else 0.0
    return {
        "ttft_ms": (first - start) * 1000.0,
        "tokens": generated,
        "rate": decode_rate,
        "prompt_tokens": prompt,
    }


async def round_of(client, model, n, tokens, round_):
    start = time.perf_counter()
    answers = await asyncio.gather(
        *(one(client, model, tokens, round_, i) for i in range(n))
    )
    wall = time.perf_counter() - start
    return answers, sum(a["tokens"] for a in answers) / wall


def summary(values):
    ordered = sorted(values)
    p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
    return {"median": statistics.median(ordered), "p90": p90, "n": len(ordered)}


async def main():
    args = sys.argv[1:]
    servers, rest = args[0:6], args[6:]
    options = dict(zip(rest[::2], rest[1::2]))
    n = int(options["--n"])
    rounds = int(options.get("--rounds", "3"))
    tokens = int(options.get("--tokens", "128"))
    clients = [
        ("ragd", AsyncOpenAI(base_url=servers[0], api_key=servers[1], max_retries=0,
                             timeout=600), servers[2]),
        ("peer", AsyncOpenAI(base_url=servers[3], api_key=servers[4], max_retries=0,
                             timeout=600), servers[5]),
    ]
    results = {name: {"ttft_ms": [], "rate": [], "aggregate": [], "tokens": [], "prompt_tokens": []}
               for name, _, _ in clients}
    # One warm-up round each (model pages, caches), not measured.
    for _, client, model in clients:
        await round_of(client, model, n, 8, -1)
    for round_ in range(rounds):
        order = clients if round_ % 2 == 0 else list(reversed(clients))
        for name, client, model in order:
            answers, aggregate = await round_of(client, model, n, tokens, round_)
            results[name]["aggregate"].append(aggregate)
            for answer in answers:
                results[name]["ttft_ms"].append(answer["ttft_ms"])
                results[name]["rate"].append(answer["rate"])
                results[name]["tokens"].append(answer["tokens"])
                results[name]["prompt_tokens"].append(answer["prompt_tokens"])
    out = {name: {key: summary(v) for key, v in values.items()} for name, values in results.items()}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    asyncio.run(main())
