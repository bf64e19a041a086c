"""ragd's OpenAI-compatible API (`/v1`), driven by the official `openai` SDK.

Run by `bins/ragd/tests/it/protocols.rs` against a real `ragd serve` with the bundled chat
model loaded and two documents ingested; it reads (all required):

- CLIENT_TEST_BASE_URL: `http://HOST:PORT` of the server;
- CLIENT_TEST_API_KEY: a key the server accepts;
- CLIENT_TEST_DOCUMENT_ID: the document the questions are about (lighthouse.md);
- CLIENT_TEST_OTHER_DOCUMENT_ID: an unrelated document (bread.md).

Each check runs in order; the first failure prints its traceback and exits 1. The chat
model is SmolLM2-135M: answers are checked for structure and equality, never quality.
"""

from __future__ import annotations

import base64
import json
import math
import os
import struct
import sys
import traceback
import urllib.error
import urllib.request
from typing import Any, Callable

import openai
from openai import OpenAI

MAX_TOKENS = 24
SEED = 7
MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Name three colours of the rainbow."},
]
QUESTION = "Which day does the Varnholm lighthouse keeper polish the brass lens?"
TEXTS = ["The lighthouse keeper polishes the brass lens.", "Sourdough needs a starter."]


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"test_openai.py: environment variable {name} is not set")
    return value


BASE = env("CLIENT_TEST_BASE_URL").rstrip("/")
KEY = env("CLIENT_TEST_API_KEY")
DOC = env("CLIENT_TEST_DOCUMENT_ID")
OTHER_DOC = env("CLIENT_TEST_OTHER_DOCUMENT_ID")

# No retries: a 5xx or a timeout must fail the check, not be papered over.
client = OpenAI(base_url=f"{BASE}/v1", api_key=KEY, max_retries=0, timeout=180)

# Filled by `models_are_listed`, read by the later checks.
models: dict[str, str] = {}


def rest(method: str, path: str, body: Any = None) -> Any:
    """ragd's own REST API (`/api/v1/...`), for the values the SDK's answers are compared with."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"{BASE}{path}", data=data, method=method)
    request.add_header("Authorization", f"Bearer {KEY}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        raise AssertionError(f"{method} {path}: {err.code} {err.read()!r}") from err


def extension(obj: Any) -> dict:
    """The `ragd` extension object of an SDK model (kept by the SDK in `model_extra`)."""
    extra = obj.model_extra or {}
    assert "ragd" in extra, f"no `ragd` extension in {obj.to_dict()}"
    value = extra["ragd"]
    assert isinstance(value, dict), f"`ragd` is not an object: {value!r}"
    return value


def cosine(a: list[float], b: list[float]) -> float:
    assert len(a) == len(b), f"dimensions differ: {len(a)} vs {len(b)}"
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def assert_same_vectors(got: list[list[float]], expected: list[list[float]], what: str) -> None:
    assert len(got) == len(expected), f"{what}: {len(got)} vectors, expected {len(expected)}"
    for i, (a, b) in enumerate(zip(got, expected)):
        similarity = cosine(a, b)
        assert abs(similarity - 1.0) <= 1e-6, f"{what}[{i}]: cosine {similarity} with REST"
        worst = max(abs(x - y) for x, y in zip(a, b))
        assert worst <= 1e-6, f"{what}[{i}]: an element differs from REST by {worst}"


def chat(**kwargs: Any) -> Any:
    args = {"max_tokens": MAX_TOKENS, "temperature": 0, "seed": SEED}
    args.update(kwargs)
    return client.chat.completions.create(**args)


def joined(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def check_citations(citations: Any, *, only: str | None) -> None:
    """Citations are well formed and each one's chunk, read through REST, is in its document
    (and in `only` when given)."""
    assert isinstance(citations, list) and citations, f"no citations: {citations!r}"
    numbers = [c.get("number") for c in citations]
    assert all(isinstance(n, int) and n >= 1 for n in numbers), f"bad numbers: {citations}"
    assert len(set(numbers)) == len(numbers), f"repeated numbers: {citations}"
    for citation in citations:
        for field in ("number", "chunk_id", "document_id", "filename", "page"):
            assert field in citation, f"citation without {field!r}: {citation}"
        chunk = rest("GET", f"/api/v1/documents/chunks/{citation['chunk_id']}")
        assert chunk["id"] == citation["chunk_id"], f"{chunk} for {citation}"
        assert chunk["document_id"] == citation["document_id"], (
            f"the cited chunk belongs to {chunk['document_id']}, the citation says "
            f"{citation['document_id']}: {citation}"
        )
        assert citation["document_id"] in (DOC, OTHER_DOC), f"unknown document: {citation}"
        expected_name = "lighthouse.md" if citation["document_id"] == DOC else "bread.md"
        assert citation["filename"] == expected_name, citation
        if only is not None:
            assert citation["document_id"] == only, f"cited outside {only}: {citation}"


# --- checks, in order ---------------------------------------------------------------


def models_are_listed() -> None:
    listed = list(client.models.list())
    assert listed, "GET /v1/models listed nothing"
    by_kind: dict[str, list[str]] = {}
    for model in listed:
        assert model.object == "model", model.to_dict()
        assert model.owned_by == "ragd", model.to_dict()
        assert isinstance(model.created, int), model.to_dict()
        kind = extension(model).get("kind")
        by_kind.setdefault(kind, []).append(model.id)
    assert set(by_kind) == {"chat", "embedding", "rag"}, f"kinds: {by_kind}"
    assert by_kind["rag"] == ["ragd"], f"the rag model: {by_kind}"
    assert len(by_kind["chat"]) == 1, f"one chat model is loaded: {by_kind}"
    assert len(by_kind["embedding"]) == 1, f"one embedding model: {by_kind}"
    ids = [m.id for m in listed]
    assert len(set(ids)) == len(ids), f"repeated ids: {ids}"
    models["chat"] = by_kind["chat"][0]
    models["embedding"] = by_kind["embedding"][0]


def a_bad_key_is_an_authentication_error() -> None:
    bad = OpenAI(base_url=f"{BASE}/v1", api_key="not-the-key", max_retries=0, timeout=60)
    for call in (
        lambda: bad.models.list(),
        lambda: bad.chat.completions.create(
            model=models["chat"], messages=MESSAGES, max_tokens=MAX_TOKENS
        ),
    ):
        try:
            call()
        except openai.AuthenticationError as err:
            assert err.status_code == 401, err
        else:
            raise AssertionError("a bad key was accepted")


def a_chat_completion_is_well_formed() -> None:
    completion = chat(model=models["chat"], messages=MESSAGES)
    assert completion.object == "chat.completion", completion.to_dict()
    assert completion.id, completion.to_dict()
    assert isinstance(completion.model, str) and completion.model, completion.to_dict()
    assert len(completion.choices) == 1, completion.to_dict()
    choice = completion.choices[0]
    assert choice.index == 0, completion.to_dict()
    assert choice.message.role == "assistant", completion.to_dict()
    assert isinstance(choice.message.content, str) and choice.message.content.strip(), (
        f"empty answer: {completion.to_dict()}"
    )
    assert choice.finish_reason in ("stop", "length"), completion.to_dict()
    usage = completion.usage
    assert usage is not None, completion.to_dict()
    assert usage.prompt_tokens > 0, usage
    assert 0 < usage.completion_tokens <= MAX_TOKENS, usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens, usage
    models["answer"] = choice.message.content


def a_streamed_completion_joins_to_the_same_text() -> None:
    chunks = list(chat(model=models["chat"], messages=MESSAGES, stream=True))
    assert chunks, "the stream was empty"
    ids = {c.id for c in chunks}
    assert len(ids) == 1, f"chunk ids differ: {ids}"
    for chunk in chunks:
        assert chunk.object == "chat.completion.chunk", chunk.to_dict()
        assert chunk.usage is None, f"usage without include_usage: {chunk.to_dict()}"
    finished = [c.choices[0].finish_reason for c in chunks if c.choices]
    finished = [reason for reason in finished if reason]
    assert finished in (["stop"], ["length"]), f"finish reasons: {finished}"
    assert chunks[-1].choices and chunks[-1].choices[0].finish_reason, "the last chunk ends it"
    text = joined(chunks)
    assert text == models["answer"], (
        f"streamed {text!r} != non-streamed {models['answer']!r} at temperature 0, seed {SEED}"
    )


def include_usage_adds_a_usage_chunk() -> None:
    chunks = list(
        chat(
            model=models["chat"],
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    last = chunks[-1]
    assert last.choices == [], f"the usage chunk has no choices: {last.to_dict()}"
    assert last.usage is not None, f"no usage in the last chunk: {last.to_dict()}"
    assert last.usage.prompt_tokens > 0, last.usage
    assert 0 < last.usage.completion_tokens <= MAX_TOKENS, last.usage
    assert last.usage.total_tokens == last.usage.prompt_tokens + last.usage.completion_tokens
    # The same messages were asked just before: the model still holds the prompt and reads
    # only its last token again (OpenAI's prompt-cache field).
    details = last.usage.prompt_tokens_details
    assert details is not None, last.usage
    assert details.cached_tokens == last.usage.prompt_tokens - 1, last.usage
    assert all(c.usage is None for c in chunks[:-1]), "usage before the last chunk"
    assert joined(chunks) == models["answer"], "the text differs with include_usage"


def a_rag_completion_cites_chunks_of_the_documents() -> None:
    question = [{"role": "user", "content": QUESTION}]
    completion = chat(model="ragd", messages=question)
    assert completion.choices[0].message.content is not None, completion.to_dict()
    citations = extension(completion).get("citations")
    check_citations(citations, only=None)
    assert any(c["document_id"] == DOC for c in citations), (
        f"the document the question is about is not cited: {citations}"
    )

    restricted = chat(
        model="ragd",
        messages=question,
        extra_body={"ragd": {"document_ids": [DOC], "top_k": 2}},
    )
    citations = extension(restricted).get("citations")
    check_citations(citations, only=DOC)
    assert len(citations) <= 2, f"top_k 2 gave {len(citations)} citations"
    models["rag_answer"] = restricted.choices[0].message.content
    models["rag_citations"] = json.dumps(citations, sort_keys=True)


def a_streamed_rag_completion_carries_citations_first() -> None:
    chunks = list(
        chat(
            model="ragd",
            messages=[{"role": "user", "content": QUESTION}],
            stream=True,
            extra_body={"ragd": {"document_ids": [DOC], "top_k": 2}},
        )
    )
    assert chunks, "the stream was empty"
    citations = extension(chunks[0]).get("citations")
    check_citations(citations, only=DOC)
    assert json.dumps(citations, sort_keys=True) == models["rag_citations"], (
        "streamed citations differ from the non-streamed ones"
    )
    assert joined(chunks) == models["rag_answer"], "the streamed RAG answer differs"


def bad_requests_are_refused() -> None:
    cases: list[tuple[str, type[openai.APIStatusError], int, Callable[[], Any]]] = [
        (
            "an unknown model",
            openai.NotFoundError,
            404,
            lambda: chat(model="no-such-model", messages=MESSAGES),
        ),
        (
            "n = 2",
            openai.BadRequestError,
            400,
            lambda: chat(model=models["chat"], messages=MESSAGES, n=2),
        ),
        (
            "response_format",
            openai.BadRequestError,
            400,
            lambda: chat(
                model=models["chat"], messages=MESSAGES, response_format={"type": "json_object"}
            ),
        ),
        (
            "tools",
            openai.BadRequestError,
            400,
            lambda: chat(
                model=models["chat"],
                messages=MESSAGES,
                tools=[
                    {
                        "type": "function",
                        "function": {
                            "name": "weather",
                            "parameters": {"type": "object", "properties": {}},
                        },
                    }
                ],
            ),
        ),
    ]
    for what, error, status, call in cases:
        try:
            call()
        except error as err:
            assert err.status_code == status, f"{what}: {err.status_code} {err}"
        except openai.APIStatusError as err:
            raise AssertionError(
                f"{what}: expected {error.__name__} ({status}), got {type(err).__name__} "
                f"({err.status_code}): {err}"
            ) from err
        else:
            raise AssertionError(f"{what} was accepted")


def embeddings_equal_the_rest_ones() -> None:
    reference = rest("POST", "/api/v1/embeddings", {"input": TEXTS})
    expected = reference["embeddings"]
    dimension = reference["dimension"]
    assert len(expected) == len(TEXTS) and all(len(v) == dimension for v in expected), reference

    floats = client.embeddings.create(
        model=models["embedding"], input=TEXTS, encoding_format="float"
    )
    assert floats.object == "list", floats.to_dict()
    assert floats.model == models["embedding"], floats.to_dict()
    assert [d.index for d in floats.data] == [0, 1], floats.to_dict()
    assert all(d.object == "embedding" for d in floats.data), floats.to_dict()
    assert_same_vectors([d.embedding for d in floats.data], expected, "float")

    # The SDK's default: it asks for base64 and decodes the float32s itself.
    default = client.embeddings.create(model=models["embedding"], input=TEXTS)
    assert_same_vectors([list(d.embedding) for d in default.data], expected, "default")

    raw = client.embeddings.create(
        model=models["embedding"], input=TEXTS, encoding_format="base64"
    )
    decoded = []
    for item in raw.data:
        assert isinstance(item.embedding, str), f"base64 asked, got {type(item.embedding)}"
        data = base64.b64decode(item.embedding)
        assert len(data) == 4 * dimension, f"{len(data)} bytes for {dimension} float32s"
        decoded.append(list(struct.unpack(f"<{dimension}f", data)))
    assert_same_vectors(decoded, expected, "base64")
    assert_same_vectors(decoded, [d.embedding for d in floats.data], "base64 vs float")

    single = client.embeddings.create(
        model=models["embedding"], input=TEXTS[0], encoding_format="float"
    )
    assert len(single.data) == 1, single.to_dict()
    assert_same_vectors([single.data[0].embedding], expected[:1], "a string input")

    same = client.embeddings.create(
        model=models["embedding"], input=TEXTS[0], encoding_format="float", dimensions=dimension
    )
    assert len(same.data[0].embedding) == dimension, "dimensions = the model's"
    try:
        client.embeddings.create(
            model=models["embedding"], input=TEXTS[0], dimensions=dimension + 1
        )
    except openai.BadRequestError as err:
        assert err.status_code == 400, err
    else:
        raise AssertionError(f"dimensions {dimension + 1} was accepted")


CHECKS = [
    models_are_listed,
    a_bad_key_is_an_authentication_error,
    a_chat_completion_is_well_formed,
    a_streamed_completion_joins_to_the_same_text,
    include_usage_adds_a_usage_chunk,
    a_rag_completion_cites_chunks_of_the_documents,
    a_streamed_rag_completion_carries_citations_first,
    bad_requests_are_refused,
    embeddings_equal_the_rest_ones,
]


def main() -> int:
    print(f"openai {openai.__version__} against {BASE}/v1", flush=True)
    for check in CHECKS:
        try:
            check()
        except Exception:  # noqa: BLE001 - any failure fails the script, with its traceback
            traceback.print_exc()
            print(f"FAILED test_openai.py: {check.__name__}", file=sys.stderr, flush=True)
            return 1
        print(f"ok   {check.__name__}", flush=True)
    print(f"test_openai.py: {len(CHECKS)} checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
