"""ragd's Ollama-compatible API (`/api/tags`, `/api/chat`, ...), driven by the official
`ollama` Python client.

Run by `bins/ragd/tests/it/protocols.rs` against a real `ragd serve` with the bundled chat
model loaded and two documents ingested; it reads (all required):

- CLIENT_TEST_BASE_URL: `http://HOST:PORT` of the server;
- CLIENT_TEST_API_KEY: a key the server accepts;
- CLIENT_TEST_DOCUMENT_ID: the document the questions are about (lighthouse.md);
- CLIENT_TEST_OTHER_DOCUMENT_ID: an unrelated document (bread.md);
- CLIENT_TEST_CHAT_MODEL, CLIENT_TEST_EMBEDDING_MODEL: the model ids `GET /v1/models`
  lists with `ragd.kind` "chat" and "embedding".

Each check runs in order; the first failure prints its traceback and exits 1. The chat
model is SmolLM2-135M: answers are checked for structure and equality, never quality.
"""

from __future__ import annotations

import json
import math
import os
import sys
import traceback
import urllib.error
import urllib.request
from importlib.metadata import version
from typing import Any

import ollama

NUM_PREDICT = 24
OPTIONS = {"temperature": 0, "seed": 7, "num_predict": NUM_PREDICT}
MESSAGES = [
    {"role": "system", "content": "You are a terse assistant."},
    {"role": "user", "content": "Name three colours of the rainbow."},
]
PROMPT = "The three primary colours are"
QUESTION = "Which day does the Varnholm lighthouse keeper polish the brass lens?"
TEXTS = ["The lighthouse keeper polishes the brass lens.", "Sourdough needs a starter."]


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"test_ollama.py: environment variable {name} is not set")
    return value


BASE = env("CLIENT_TEST_BASE_URL").rstrip("/")
KEY = env("CLIENT_TEST_API_KEY")
DOC = env("CLIENT_TEST_DOCUMENT_ID")
OTHER_DOC = env("CLIENT_TEST_OTHER_DOCUMENT_ID")
CHAT_MODEL = env("CLIENT_TEST_CHAT_MODEL")
EMBEDDING_MODEL = env("CLIENT_TEST_EMBEDDING_MODEL")

client = ollama.Client(host=BASE, headers={"Authorization": f"Bearer {KEY}"}, timeout=180)

# Answers of earlier checks, compared by later ones.
answers: dict[str, str] = {}


def request(method: str, path: str, body: Any = None) -> urllib.request.Request:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"{BASE}{path}", data=data, method=method)
    req.add_header("Authorization", f"Bearer {KEY}")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    return req


def rest(method: str, path: str, body: Any = None) -> Any:
    """A raw JSON request: ragd's REST API, or the wire format where the client hides it."""
    try:
        with urllib.request.urlopen(request(method, path, body), timeout=180) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        raise AssertionError(f"{method} {path}: {err.code} {err.read()!r}") from err


def ndjson(path: str, body: Any) -> list[dict]:
    """A streamed Ollama answer on the wire: one JSON object a line."""
    with urllib.request.urlopen(request("POST", path, body), timeout=180) as response:
        content_type = response.headers.get("Content-Type", "")
        assert "ndjson" in content_type or "json" in content_type, content_type
        return [json.loads(line) for line in response.read().splitlines() if line.strip()]


def cosine(a: list[float], b: list[float]) -> float:
    assert len(a) == len(b), f"dimensions differ: {len(a)} vs {len(b)}"
    dot = sum(x * y for x, y in zip(a, b))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def assert_same_vectors(got: Any, expected: list[list[float]], what: str) -> None:
    got = [list(v) for v in got]
    assert len(got) == len(expected), f"{what}: {len(got)} vectors, expected {len(expected)}"
    for i, (a, b) in enumerate(zip(got, expected)):
        similarity = cosine(a, b)
        assert abs(similarity - 1.0) <= 1e-6, f"{what}[{i}]: cosine {similarity} with REST"


def expect_error(status: int, what: str, call: Any) -> None:
    try:
        call()
    except ollama.ResponseError as err:
        assert err.status_code == status, f"{what}: status {err.status_code}, expected {status}"
    else:
        raise AssertionError(f"{what} was accepted")


def check_citations(citations: Any) -> None:
    assert isinstance(citations, list) and citations, f"no citations: {citations!r}"
    for citation in citations:
        for field in ("number", "chunk_id", "document_id", "filename", "page"):
            assert field in citation, f"citation without {field!r}: {citation}"
        chunk = rest("GET", f"/api/v1/documents/chunks/{citation['chunk_id']}")
        assert chunk["document_id"] == citation["document_id"], (chunk, citation)
        assert citation["document_id"] in (DOC, OTHER_DOC), f"unknown document: {citation}"
    assert any(c["document_id"] == DOC for c in citations), (
        f"the document the question is about is not cited: {citations}"
    )


# --- checks, in order ---------------------------------------------------------------


def the_version_is_reported() -> None:
    body = rest("GET", "/api/version")
    assert isinstance(body.get("version"), str) and body["version"], body


def a_bad_key_is_refused() -> None:
    bad = ollama.Client(host=BASE, headers={"Authorization": "Bearer not-the-key"}, timeout=60)
    expect_error(401, "a bad key", bad.list)


def models_are_listed() -> None:
    listed = [m.model for m in client.list().models]
    for expected in (CHAT_MODEL, "ragd", EMBEDDING_MODEL):
        assert expected in listed, f"{expected!r} not in /api/tags: {listed}"
    names = [m.get("name") for m in rest("GET", "/api/tags")["models"]]
    for expected in (CHAT_MODEL, "ragd", EMBEDDING_MODEL):
        assert expected in names, f"{expected!r} not among the names in /api/tags: {names}"
    shown = client.show(CHAT_MODEL)
    assert shown is not None


def a_chat_answers() -> None:
    response = client.chat(model=CHAT_MODEL, messages=MESSAGES, options=OPTIONS)
    assert response.done is True, response
    assert response.done_reason in ("stop", "length"), response
    assert response.message.role == "assistant", response
    content = response.message.content
    assert isinstance(content, str) and content.strip(), f"empty answer: {response}"
    assert response.eval_count is not None and 0 < response.eval_count <= NUM_PREDICT, (
        f"eval_count {response.eval_count} with num_predict {NUM_PREDICT}"
    )
    answers["chat"] = content


def a_streamed_chat_joins_to_the_same_text() -> None:
    parts = list(client.chat(model=CHAT_MODEL, messages=MESSAGES, options=OPTIONS, stream=True))
    assert len(parts) >= 2, f"one part is no stream: {parts}"
    assert all(p.done is False for p in parts[:-1]), "done before the end"
    assert parts[-1].done is True, parts[-1]
    assert parts[-1].done_reason in ("stop", "length"), parts[-1]
    text = "".join(p.message.content or "" for p in parts)
    assert text == answers["chat"], (
        f"streamed {text!r} != non-streamed {answers['chat']!r} at temperature 0, seed 7"
    )


def generate_answers_and_streams_the_same_text() -> None:
    whole = client.generate(model=CHAT_MODEL, prompt=PROMPT, options=OPTIONS)
    assert whole.done is True, whole
    assert isinstance(whole.response, str) and whole.response.strip(), whole
    parts = list(client.generate(model=CHAT_MODEL, prompt=PROMPT, options=OPTIONS, stream=True))
    assert parts and parts[-1].done is True, parts
    text = "".join(p.response or "" for p in parts)
    assert text == whole.response, f"streamed {text!r} != non-streamed {whole.response!r}"


def the_rag_model_cites_chunks_of_the_documents() -> None:
    messages = [{"role": "user", "content": QUESTION}]
    response = client.chat(model="ragd", messages=messages, options=OPTIONS)
    assert response.done is True and isinstance(response.message.content, str), response

    # The client's models drop fields Ollama does not have: the extension is read on the wire.
    body = {"model": "ragd", "messages": messages, "options": OPTIONS}
    whole = rest("POST", "/api/chat", {**body, "stream": False})
    assert whole.get("done") is True, whole
    check_citations(whole.get("ragd", {}).get("citations"))

    lines = ndjson("/api/chat", body)  # Ollama streams unless told not to.
    assert lines and lines[-1].get("done") is True, lines
    assert all(line.get("done") is False for line in lines[:-1]), lines
    check_citations(lines[-1].get("ragd", {}).get("citations"))
    assert whole["ragd"]["citations"] == lines[-1]["ragd"]["citations"], (
        "streamed and non-streamed citations differ"
    )
    streamed = "".join(line.get("message", {}).get("content", "") for line in lines)
    assert streamed == whole["message"]["content"], (streamed, whole["message"]["content"])


def an_unknown_model_is_not_found() -> None:
    expect_error(
        404,
        "an unknown model",
        lambda: client.chat(model="no-such-model", messages=MESSAGES, options=OPTIONS),
    )


def embed_equals_the_rest_embeddings() -> None:
    expected = rest("POST", "/api/v1/embeddings", {"input": TEXTS})["embeddings"]
    response = client.embed(model=EMBEDDING_MODEL, input=TEXTS)
    assert response.model == EMBEDDING_MODEL, response.model
    assert_same_vectors(response.embeddings, expected, "a list input")
    single = client.embed(model=EMBEDDING_MODEL, input=TEXTS[0])
    assert_same_vectors(single.embeddings, expected[:1], "a string input")


CHECKS = [
    the_version_is_reported,
    a_bad_key_is_refused,
    models_are_listed,
    a_chat_answers,
    a_streamed_chat_joins_to_the_same_text,
    generate_answers_and_streams_the_same_text,
    the_rag_model_cites_chunks_of_the_documents,
    an_unknown_model_is_not_found,
    embed_equals_the_rest_embeddings,
]


def main() -> int:
    print(f"ollama {version('ollama')} against {BASE}", flush=True)
    for check in CHECKS:
        try:
            check()
        except Exception:  # noqa: BLE001 - any failure fails the script, with its traceback
            traceback.print_exc()
            print(f"FAILED test_ollama.py: {check.__name__}", file=sys.stderr, flush=True)
            return 1
        print(f"ok   {check.__name__}", flush=True)
    print(f"test_ollama.py: {len(CHECKS)} checks passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
