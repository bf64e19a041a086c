"""ragd's MCP server, driven by the official `mcp` Python SDK over streamable HTTP
(`{base}/mcp`, with the bearer key) and over stdio (`ragd mcp --data-dir DIR`, spawned by
the SDK).

Usage: `test_mcp.py [http] [stdio]` (both when neither is named). `bins/ragd/tests/it/
protocols.rs` runs `http` while `ragd serve` runs, then `stdio` once it has stopped, on the
same data directory. It reads:

- CLIENT_TEST_DOCUMENT_ID: the ingested document the checks look for (lighthouse.md);
- CLIENT_TEST_OTHER_DOCUMENT_ID: an unrelated ingested document (bread.md);
- CLIENT_TEST_PHRASE: a phrase of the first document's text;
- CLIENT_TEST_KEYWORD: a word only the first document contains;
- for `http`: CLIENT_TEST_BASE_URL (`http://HOST:PORT`) and CLIENT_TEST_API_KEY;
- for `stdio`: CLIENT_TEST_RAGD_BIN (the built `ragd`), CLIENT_TEST_DATA_DIR and
  CLIENT_TEST_ASSETS_DIR (passed to it as `RAGD_ASSETS_DIR`).

Each check runs in order; the first failure prints its traceback and exits 1.
"""

from __future__ import annotations

import json
import os
import sys
import traceback
import urllib.error
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from importlib.metadata import version
from typing import Any

import anyio
import httpx2
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

TOOLS = {"search", "get_chunk", "get_document_text", "list_documents", "ask"}
QUESTION = "Which day does the Varnholm lighthouse keeper polish the brass lens?"


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise SystemExit(f"test_mcp.py: environment variable {name} is not set")
    return value


DOC = env("CLIENT_TEST_DOCUMENT_ID")
OTHER_DOC = env("CLIENT_TEST_OTHER_DOCUMENT_ID")
PHRASE = env("CLIENT_TEST_PHRASE")
KEYWORD = env("CLIENT_TEST_KEYWORD")

# Shared between the checks of one connection.
state: dict[str, Any] = {}


@asynccontextmanager
async def connect(transport: str) -> AsyncIterator[Client]:
    if transport == "http":
        headers = {"Authorization": f"Bearer {env('CLIENT_TEST_API_KEY')}"}
        timeout = httpx2.Timeout(30, read=300)
        url = f"{env('CLIENT_TEST_BASE_URL').rstrip('/')}/mcp"
        async with httpx2.AsyncClient(headers=headers, timeout=timeout) as http:
            transport_cm = streamable_http_client(url, http_client=http)
            async with Client(transport_cm, read_timeout_seconds=180) as client:
                yield client
    else:
        server_env = {
            "RAGD_ASSETS_DIR": env("CLIENT_TEST_ASSETS_DIR"),
            # Retrieval and reading need no chat model; `ask` is checked over HTTP.
            "RAGD_MODELS__AUTOLOAD": "none",
            "RAGD_HUB__OFFLINE": "true",
            "NO_COLOR": "1",
        }
        if "OMP_WAIT_POLICY" in os.environ:
            server_env["OMP_WAIT_POLICY"] = os.environ["OMP_WAIT_POLICY"]
        params = StdioServerParameters(
            command=env("CLIENT_TEST_RAGD_BIN"),
            args=["mcp", "--data-dir", env("CLIENT_TEST_DATA_DIR")],
            env=server_env,
            cwd=os.getcwd(),
        )
        async with Client(params, read_timeout_seconds=180) as client:
            yield client


def text_of(result: Any) -> str:
    """The text content of a successful tool result."""
    assert not result.is_error, f"the tool failed: {result.content}"
    texts = [block.text for block in result.content if getattr(block, "type", None) == "text"]
    assert texts, f"no text content: {result.content}"
    return "".join(texts)


def json_of(result: Any) -> Any:
    text = text_of(result)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise AssertionError(f"tool result is not JSON: {text[:500]!r}") from err


def hits_of(payload: Any) -> list[dict]:
    """Search hits: `{"hits": [...]}` as in the REST API's search response, or a bare list."""
    hits = payload.get("hits") if isinstance(payload, dict) else payload
    assert isinstance(hits, list), f"no hits list in {payload!r}"
    for hit in hits:
        assert isinstance(hit.get("chunk_id"), str), f"a hit without chunk_id: {hit}"
        assert isinstance(hit.get("document_id"), str), f"a hit without document_id: {hit}"
    return hits


def document_text_of(result: Any) -> str:
    """`get_document_text`: JSON with `text` (as the REST API answers), or the text itself."""
    text = text_of(result)
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return text
    if isinstance(payload, dict) and isinstance(payload.get("text"), str):
        return payload["text"]
    raise AssertionError(f"no text in {payload!r}")


async def call(client: Client, tool: str, arguments: dict[str, Any]) -> Any:
    return await client.call_tool(tool, arguments)


# --- checks, in order ---------------------------------------------------------------


async def the_tools_are_listed(client: Client) -> None:
    tools = {tool.name: tool for tool in (await client.list_tools()).tools}
    assert TOOLS <= set(tools), f"missing tools: {TOOLS - set(tools)} (listed: {sorted(tools)})"
    expected_arguments = {
        "search": "query",
        "get_chunk": "chunk_id",
        "get_document_text": "document_id",
        "ask": "question",
    }
    for name, argument in expected_arguments.items():
        schema = tools[name].input_schema
        assert schema.get("type") == "object", f"{name}: {schema}"
        assert argument in schema.get("properties", {}), f"{name} takes no {argument}: {schema}"
        assert argument in schema.get("required", []), f"{name} needs {argument}: {schema}"


async def search_finds_the_document(client: Client) -> None:
    keyword = hits_of(
        json_of(await call(client, "search", {"query": KEYWORD, "mode": "keyword", "top_k": 3}))
    )
    assert keyword, f"keyword search for {KEYWORD!r} found nothing"
    assert keyword[0]["document_id"] == DOC, f"the first hit is not in {DOC}: {keyword[0]}"
    state["chunk_id"] = keyword[0]["chunk_id"]
    for mode in ("semantic", "hybrid"):
        arguments = {"query": QUESTION, "mode": mode, "top_k": 2, "document_ids": [DOC]}
        hits = hits_of(json_of(await call(client, "search", arguments)))
        assert hits, f"{mode} search found nothing"
        assert len(hits) <= 2, f"{mode}: top_k 2 gave {len(hits)} hits"
        assert all(hit["document_id"] == DOC for hit in hits), f"{mode} outside {DOC}: {hits}"


async def search_by_collection_and_metadata(client: Client) -> None:
    """The harness put DOC alone in the collection `lighthouses` and gave it `topic: sea`."""
    for scope in ({"collections": ["lighthouses"]}, {"filter": {"topic": "sea"}}):
        arguments = {"query": "flour water yeast starter", "mode": "semantic", "top_k": 5, **scope}
        hits = hits_of(json_of(await call(client, "search", arguments)))
        assert hits, f"{scope}: nothing found"
        assert all(hit["document_id"] == DOC for hit in hits), f"{scope} leaked: {hits}"
    for arguments, word in (
        ({"query": "x", "filter": {"topic": {"between": 1}}}, "between"),
        ({"query": "x", "collections": ["no-such-collection"]}, "no-such-collection"),
    ):
        result = await call(client, "search", arguments)
        assert result.is_error, f"search({arguments}) did not fail: {result.content}"
        message = " ".join(getattr(block, "text", "") for block in result.content)
        assert word in message, f"the error does not name {word!r}: {message}"


async def get_chunk_returns_the_hit(client: Client) -> None:
    chunk_id = state["chunk_id"]
    chunk = json_of(await call(client, "get_chunk", {"chunk_id": chunk_id}))
    assert isinstance(chunk, dict), chunk
    assert chunk.get("id") == chunk_id, f"asked for {chunk_id}, got {chunk}"
    assert chunk.get("document_id") == DOC, chunk
    assert KEYWORD in chunk.get("text", ""), f"{KEYWORD!r} not in the hit's chunk: {chunk}"


async def list_documents_lists_both(client: Client) -> None:
    payload = json_of(await call(client, "list_documents", {}))
    items = payload.get("items") if isinstance(payload, dict) else payload
    assert isinstance(items, list), f"no document list in {payload!r}"
    ids = {item.get("id") for item in items}
    assert {DOC, OTHER_DOC} <= ids, f"{DOC} and {OTHER_DOC} not in {ids}"
    payload = json_of(await call(client, "list_documents", {"limit": 1, "status": "ready"}))
    items = payload.get("items") if isinstance(payload, dict) else payload
    assert isinstance(items, list) and len(items) == 1, f"limit 1 gave {payload!r}"


async def get_document_text_reads_the_text(client: Client) -> None:
    whole = document_text_of(await call(client, "get_document_text", {"document_id": DOC}))
    assert PHRASE in whole, f"{PHRASE!r} not in the document text: {whole[:500]!r}"
    arguments = {"document_id": DOC, "start": 0, "end": 20}
    head = document_text_of(await call(client, "get_document_text", arguments))
    assert head == whole[:20], f"chars 0..20 are {head!r}, the text starts {whole[:20]!r}"


async def the_document_resource_is_read(client: Client) -> None:
    uri = f"ragd://documents/{DOC}"
    result = await client.read_resource(uri)
    texts = [getattr(content, "text", None) for content in result.contents]
    texts = [text for text in texts if isinstance(text, str)]
    assert texts, f"no text contents for {uri}: {result.contents}"
    assert any(PHRASE in text for text in texts), f"{PHRASE!r} not in {uri}: {texts}"
    assert str(result.contents[0].uri) == uri, result.contents[0].uri


async def a_bad_id_is_a_tool_error(client: Client) -> None:
    unknown = str(uuid.uuid4())
    for tool, arguments in (
        ("get_chunk", {"chunk_id": "not-a-chunk-id"}),
        ("get_chunk", {"chunk_id": unknown}),
        ("get_document_text", {"document_id": unknown}),
    ):
        result = await call(client, tool, arguments)
        assert result.is_error, f"{tool}({arguments}) did not fail: {result.content}"
        assert result.content, f"{tool}({arguments}): an error without a message"
    # The session survives its errors.
    assert hits_of(json_of(await call(client, "search", {"query": KEYWORD, "mode": "keyword"})))


async def ask_answers_with_citations(client: Client) -> None:
    arguments = {"question": QUESTION, "document_ids": [DOC], "top_k": 2}
    text = text_of(await call(client, "ask", arguments))
    assert text.strip(), "ask gave an empty answer"
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as err:
        raise AssertionError(f"ask's result is not JSON: {text[:500]!r}") from err
    citations = payload.get("citations") if isinstance(payload, dict) else None
    assert isinstance(citations, list) and citations, f"ask cites nothing: {payload!r}"
    assert all(c.get("document_id") == DOC for c in citations), f"outside {DOC}: {citations}"


def unauthorized_http_is_refused() -> None:
    body = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "test", "version": "0"},
        },
    }
    url = f"{env('CLIENT_TEST_BASE_URL').rstrip('/')}/mcp"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("Accept", "application/json, text/event-stream")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            raise AssertionError(f"/mcp without a key answered {response.status}")
    except urllib.error.HTTPError as err:
        assert err.code == 401, f"/mcp without a key answered {err.code}"


CHECKS: list[Callable[[Client], Awaitable[None]]] = [
    the_tools_are_listed,
    search_finds_the_document,
    search_by_collection_and_metadata,
    get_chunk_returns_the_hit,
    list_documents_lists_both,
    get_document_text_reads_the_text,
    the_document_resource_is_read,
    a_bad_id_is_a_tool_error,
]


async def run(transport: str) -> None:
    checks = list(CHECKS)
    if transport == "http":
        # The HTTP server has the chat model loaded; the stdio one is started without it.
        checks.append(ask_answers_with_citations)
        state["current"] = "unauthorized_http_is_refused"
        unauthorized_http_is_refused()
        print(f"ok   {transport}: unauthorized_http_is_refused", flush=True)
    state["current"] = "connect"
    async with connect(transport) as client:
        print(f"ok   {transport}: connect (protocol {client.protocol_version})", flush=True)
        for check in checks:
            state["current"] = check.__name__
            await check(client)
            print(f"ok   {transport}: {check.__name__}", flush=True)


def main() -> int:
    transports = sys.argv[1:] or ["http", "stdio"]
    unknown = [t for t in transports if t not in ("http", "stdio")]
    if unknown:
        print(f"usage: test_mcp.py [http] [stdio], got {unknown}", file=sys.stderr)
        return 2
    print(f"mcp {version('mcp')}: {' and '.join(transports)}", flush=True)
    for transport in transports:
        state.clear()
        try:
            anyio.run(run, transport)
        except BaseException:  # noqa: BLE001 - task groups raise exception groups
            traceback.print_exc()
            failed = state.get("current", "?")
            print(f"FAILED test_mcp.py: {transport}: {failed}", file=sys.stderr, flush=True)
            return 1
    print(f"test_mcp.py: {' and '.join(transports)} passed", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
