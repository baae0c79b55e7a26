"""The gateway's input boundary: whatever a client sends, the ledger keeps working.

Every text the usage event will hold is checked before the upstream is called (refused
with 400 rather than silently altered), the body is bounded after decompression, and odd
but valid input is answered with a 4xx in the client's format, never a 500. Each test
also counts the calls the fake upstreams served against the events in the ledger: a call
served upstream and missing from the ledger is the failure this file guards against.
"""

from __future__ import annotations

import asyncio
import functools
import gzip
import json
import logging
import resource
import zlib
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import pytest
from aiohttp import http_parser

from tests.gateway.harness import Harness, config_for, running_gateway
from tokenomy.budgets import storage
from tokenomy.budgets.model import BUDGET
from tokenomy.gateway import bodies

REQUEST_ID = "x-tokenomy-request-id"
MESSAGES: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]
CHAT_BODY: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES}
MESSAGES_BODY: dict[str, Any] = {"model": "claude-sonnet", "max_tokens": 16, "messages": MESSAGES}


# ---------------------------------------------------------------------------- helpers


@pytest.fixture
async def gwdb(db_url: str, upstream_keys: None) -> AsyncIterator[Harness]:
    """The gateway on SQLite and on PostgreSQL (PostgreSQL refuses NUL in text)."""
    async with running_gateway(db_url) as h:
        yield h


def served(h: Harness) -> int:
    return len(h.openai.requests) + len(h.anthropic.requests)


def assert_served_calls_recorded(h: Harness) -> None:
    """Every call an upstream served has its event, and the writer is not stuck."""
    events = h.events()  # flushes: fails if a row blocks the writer
    upstream_answered = [
        e for e in events if e.provider and (e.status < 400 or e.error_kind.startswith("upstream"))
    ]
    assert len(upstream_answered) == served(h)


def oai(h: Harness) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=h.openai_base, api_key=h.key, max_retries=0)


def ant(h: Harness) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=h.url, api_key=h.key, max_retries=0)


async def raw_request(
    url: str,
    path: str,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    method: bytes = b"POST",
) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 request written byte for byte (header values no client would send)."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        head = [method + b" " + path.encode() + b" HTTP/1.1", b"Host: " + host.encode()]
        head += [name + b": " + value for name, value in headers]
        head += [b"Content-Length: " + str(len(body)).encode(), b"Connection: close"]
        writer.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        await writer.drain()
        raw = await reader.read()
    finally:
        writer.close()
    head_raw, _, payload = raw.partition(b"\r\n\r\n")
    lines = head_raw.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    out = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        out[name.strip().lower()] = value.strip()
    return status, out, payload


def openai_raw_headers(h: Harness, **extra: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"Authorization", b"Bearer " + h.key.encode()),
        (b"Content-Type", b"application/json"),
        *((name.replace("_", "-").encode(), v) for name, v in extra.items()),
    ]


def anthropic_raw_headers(h: Harness, **extra: bytes) -> list[tuple[bytes, bytes]]:
    return [
        (b"x-api-key", h.key.encode()),
        (b"anthropic-version", b"2023-06-01"),
        (b"Content-Type", b"application/json"),
        *((name.replace("_", "-").encode(), v) for name, v in extra.items()),
    ]


def openai_error(payload: bytes) -> dict[str, Any]:
    body = json.loads(payload)
    assert set(body) == {"error"} and {"message", "type", "param", "code"} <= set(body["error"])
    return dict(body["error"])


def anthropic_error(payload: bytes) -> dict[str, Any]:
    body = json.loads(payload)
    assert body["type"] == "error" and {"type", "message"} <= set(body["error"])
    return dict(body["error"])


def nested_json(depth: int) -> bytes:
    """``nested(depth)`` as JSON text (Python's json module stops at ~1000 levels)."""
    return b'{"k": ' + b"[" * (depth - 1) + b'"x"' + b"]" * (depth - 1) + b"}"


def nested(depth: int) -> Any:
    """A JSON value ``depth`` containers deep (a dict at the top, lists below)."""
    value: Any = "x"
    for _ in range(depth - 1):
        value = [value]
    return {"k": value}


# ============================================================ NUL and invalid text, 400


@pytest.mark.parametrize("where", ["model", "user"])
async def test_nul_in_model_or_user_is_400_and_the_ledger_keeps_flowing(
    gwdb: Harness, where: str
) -> None:
    """Defect 1: one NUL used to poison every later PostgreSQL batch."""
    kwargs: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES}
    kwargs[where] = kwargs.get(where, "alice") + "\x00"
    async with oai(gwdb) as c:
        with pytest.raises(openai.BadRequestError) as info:
            await c.chat.completions.create(**kwargs)
        assert info.value.status_code == 400
        assert "NUL" in info.value.message
        body = info.value.body
        assert isinstance(body, dict) and body["param"] == where
        rid = info.value.response.headers[REQUEST_ID]
        ok = await c.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES, user="bob"
        )
    assert served(gwdb) == 1
    ev = gwdb.event(rid)
    assert (ev.status, ev.error_kind) == (400, "invalid_request_error")
    assert "\x00" not in ev.model and "\x00" not in ev.end_user
    assert gwdb.event(ok.headers[REQUEST_ID]).end_user == "bob"
    assert_served_calls_recorded(gwdb)


async def test_nul_in_anthropic_metadata_user_id_is_400(gwdb: Harness) -> None:
    async with ant(gwdb) as c:
        with pytest.raises(anthropic.BadRequestError) as info:
            await c.messages.create(
                model="claude-sonnet",
                max_tokens=16,
                messages=MESSAGES,
                metadata={"user_id": "u\x00"},
            )
    assert info.value.status_code == 400
    assert "metadata.user_id" in info.value.message
    assert served(gwdb) == 0
    assert gwdb.event(info.value.response.headers[REQUEST_ID]).end_user == ""
    assert_served_calls_recorded(gwdb)


@pytest.mark.parametrize(
    ("field", "value"),
    [("model", "m" * 257), ("user", "u" * 257), ("metadata", {"k": "v" * 17_000})],
)
async def test_overlong_recorded_fields_are_400(gw: Harness, field: str, value: Any) -> None:
    body = {**CHAT_BODY, field: value}
    status, _, payload = await raw_request(
        gw.url, "/v1/chat/completions", openai_raw_headers(gw), json.dumps(body).encode()
    )
    assert status == 400
    err = openai_error(payload)
    assert err["param"] == field and "at most" in err["message"]
    assert served(gw) == 0
    assert_served_calls_recorded(gw)


@pytest.mark.parametrize("header", [b"X-Tokenomy-Agent", b"X-Tokenomy-Task"])
async def test_overlong_agent_or_task_header_is_400(gw: Harness, header: bytes) -> None:
    headers = [*openai_raw_headers(gw), (header, b"a" * 257)]
    status, _, payload = await raw_request(
        gw.url, "/v1/chat/completions", headers, json.dumps(CHAT_BODY).encode()
    )
    assert status == 400
    assert header.decode() in openai_error(payload)["message"]
    assert served(gw) == 0


# =================================================== header encodings, 400 before upstream


@pytest.mark.parametrize(
    ("header", "value"),
    [
        (b"X-Tokenomy-Agent", b"agent-\xff"),  # not UTF-8 at all
        (b"X-Tokenomy-Task", b"task-\xc3\x28"),  # an invalid UTF-8 sequence
        (b"X-Tokenomy-Task", b"task-\xed\xa0\x80"),  # an encoded surrogate
        (b"anthropic-beta", b"beta-\xff"),  # forwarded upstream as is
    ],
)
@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
async def test_badly_encoded_header_is_400_naming_it(
    gwdb: Harness, fmt: str, header: bytes, value: bytes
) -> None:
    """Defect 2: the upstream used to answer (and bill) and the journal then failed."""
    if fmt == "openai":
        headers = [*openai_raw_headers(gwdb), (header, value)]
        path, body = "/v1/chat/completions", {**CHAT_BODY, "model": "gpt-via-anthropic"}
    else:
        headers = [*anthropic_raw_headers(gwdb), (header, value)]
        path, body = "/v1/messages", MESSAGES_BODY
    status, resp_headers, payload = await raw_request(
        gwdb.url, path, headers, json.dumps(body).encode()
    )
    assert status == 400
    err = openai_error(payload) if fmt == "openai" else anthropic_error(payload)
    assert err["type"] == "invalid_request_error"
    assert header.decode().lower() in err["message"].lower()
    assert "UTF-8" in err["message"]
    assert served(gwdb) == 0
    ev = gwdb.event(resp_headers[REQUEST_ID])
    assert (ev.status, ev.agent, ev.task) == (400, "", "")
    assert_served_calls_recorded(gwdb)


async def test_utf8_agent_and_task_headers_are_recorded_as_sent(gwdb: Harness) -> None:
    headers = openai_raw_headers(
        gwdb, X_Tokenomy_Agent="agënt-ü".encode(), X_Tokenomy_Task="tâche 東京".encode()
    )
    status, resp_headers, _ = await raw_request(
        gwdb.url, "/v1/chat/completions", headers, json.dumps(CHAT_BODY).encode()
    )
    assert status == 200
    ev = gwdb.event(resp_headers[REQUEST_ID])
    assert (ev.agent, ev.task) == ("agënt-ü", "tâche 東京")
    assert_served_calls_recorded(gwdb)


@pytest.mark.parametrize("header", [b"Authorization", b"x-api-key"])
async def test_api_key_that_is_not_utf8_is_401(gw: Harness, header: bytes) -> None:
    """Defect 12: hashing the key used to fail with a 500."""
    value = b"Bearer tk-\xff\xfe" if header == b"Authorization" else b"tk-\xff\xfe"
    headers = [(header, value), (b"Content-Type", b"application/json")]
    status, _, payload = await raw_request(
        gw.url, "/v1/chat/completions", headers, json.dumps(CHAT_BODY).encode()
    )
    assert status == 401
    assert openai_error(payload)["type"] == "authentication_error"
    assert served(gw) == 0


@pytest.mark.parametrize("header", [b"Authorization", b"x-api-key"])
async def test_listing_models_with_a_key_that_is_not_utf8_is_401(
    gw: Harness, header: bytes
) -> None:
    value = b"Bearer tk-\xff\xfe" if header == b"Authorization" else b"tk-\xff\xfe"
    status, _, payload = await raw_request(gw.url, "/v1/models", [(header, value)], b"", b"GET")
    assert status == 401
    error = json.loads(payload)["error"]
    assert error["type"] == "authentication_error"


# ====================================================== metadata and nesting, 400


async def test_metadata_nested_300_deep_to_an_anthropic_backed_model_is_400(
    gwdb: Harness,
) -> None:
    """Defect 2: the upstream answered, then serializing the event failed."""
    async with oai(gwdb) as c:
        with pytest.raises(openai.BadRequestError) as info:
            await c.chat.completions.create(
                model="gpt-via-anthropic", messages=MESSAGES, metadata=nested(300)
            )
    assert info.value.status_code == 400
    assert "nested" in info.value.message
    assert served(gwdb) == 0
    ev = gwdb.event(info.value.response.headers[REQUEST_ID])
    assert (ev.status, ev.metadata) == (400, None)
    assert_served_calls_recorded(gwdb)


@pytest.mark.parametrize(("depth", "status"), [(8, 200), (9, 400)])
async def test_metadata_depth_limit(gw: Harness, depth: int, status: int) -> None:
    body = {**CHAT_BODY, "metadata": nested(depth)}
    code, resp_headers, _ = await raw_request(
        gw.url, "/v1/chat/completions", openai_raw_headers(gw), json.dumps(body).encode()
    )
    assert code == status
    if status == 200:
        assert gw.event(resp_headers[REQUEST_ID]).metadata == nested(depth)
    assert_served_calls_recorded(gw)


@pytest.mark.parametrize("depth", [255, 300, 1024])
@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
async def test_json_nested_255_to_1024_deep_is_400(gw: Harness, fmt: str, depth: int) -> None:
    """Defect 12: re-serializing the body for the upstream used to fail with a 500."""
    base = CHAT_BODY if fmt == "openai" else MESSAGES_BODY
    body = json.dumps(base).encode()[:-1] + b', "extra": ' + nested_json(depth - 1) + b"}"
    path = "/v1/chat/completions" if fmt == "openai" else "/v1/messages"
    headers = openai_raw_headers(gw) if fmt == "openai" else anthropic_raw_headers(gw)
    status, _, payload = await raw_request(gw.url, path, headers, body)
    assert status == 400
    err = openai_error(payload) if fmt == "openai" else anthropic_error(payload)
    assert "nested" in err["message"]
    assert served(gw) == 0
    assert_served_calls_recorded(gw)


# ========================================================= upstream-derived text


async def test_upstream_error_text_and_request_id_are_stored_cleanly(
    db_url: str, upstream_keys: None
) -> None:
    """An upstream's error text and request id arrive after it answered: made storable."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")  # the gateway's request; the body is ignored
        body = b'{"error": {"message": "bad\\u0000thing", "type": "server_error"}}'
        writer.write(
            b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
            b"x-request-id: req-\xff\xfe-" + b"r" * 400 + b"\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        cfg = config_for(f"http://127.0.0.1:{port}/v1", "http://127.0.0.1:1")
        async with running_gateway(db_url, config=cfg) as h:
            status, resp_headers, _ = await raw_request(
                h.url, "/v1/chat/completions", openai_raw_headers(h), json.dumps(CHAT_BODY).encode()
            )
            assert status == 500  # relayed from the upstream
            ev = h.event(resp_headers[REQUEST_ID])
            assert ev.error_kind == "upstream_error"
            assert "bad" in ev.error_message and "\x00" not in ev.error_message
            assert ev.upstream_request_id.startswith("req-")
            assert ev.upstream_request_id.encode("utf-8")  # storable: no lone surrogates
            assert len(ev.upstream_request_id) <= 256
    finally:
        server.close()
        await server.wait_closed()


# ============================================================= compressed bodies


@functools.cache
def gzip_bomb(inflated: int) -> bytes:
    """A valid chat body of ``inflated`` bytes once decompressed, compressed ~1000:1."""
    head = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
    tail = b'"}]}'
    z = zlib.compressobj(9, zlib.DEFLATED, 31)
    parts = [z.compress(head)]
    chunk = b"a" * (1 << 20)
    filler = inflated - len(head) - len(tail)
    while filler > 0:
        parts.append(z.compress(chunk[: min(filler, len(chunk))]))
        filler -= len(chunk)
    parts += [z.compress(tail), z.flush()]
    return b"".join(parts)


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
async def test_gzip_bomb_is_413_without_inflating_it_in_memory(gw: Harness, fmt: str) -> None:
    """Defect 3: a 200 KB gzip body that inflates to 200 MiB (limit 20 MiB)."""
    bomb = gzip_bomb(200 << 20)
    assert len(bomb) < 1 << 20
    headers = openai_raw_headers(gw) if fmt == "openai" else anthropic_raw_headers(gw)
    headers.append((b"Content-Encoding", b"gzip"))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    path = "/v1/chat/completions" if fmt == "openai" else "/v1/messages"
    status, _, payload = await raw_request(gw.url, path, headers, bomb)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert status == 413
    err = openai_error(payload) if fmt == "openai" else anthropic_error(payload)
    assert "decompressed" in err["message"]
    assert grown_mib < 100, f"peak RSS grew by {grown_mib:.0f} MiB"
    assert served(gw) == 0
    assert_served_calls_recorded(gw)


async def test_a_refused_bomb_is_inflated_only_up_to_the_limit(
    gw: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The gateway inflates at most ``max_body_bytes + 1`` bytes of a bomb, and nothing else
    does: aiohttp's own decompression is off, so its lingering close (which reads the rest
    of a refused upload so that the client sees the 413) never inflates it."""
    inflated = 0
    real = zlib.decompressobj

    class Counting:
        def __init__(self, *args: Any) -> None:
            self._inner = real(*args)

        def decompress(self, data: bytes, max_length: int = 0) -> bytes:
            nonlocal inflated
            out = self._inner.decompress(data, max_length)
            inflated += len(out)
            return out

        def __getattr__(self, name: str) -> Any:
            return getattr(self._inner, name)

    aiohttp_inflaters = 0
    real_buffer_init = http_parser.DeflateBuffer.__init__

    def counting_buffer_init(self: Any, *args: Any, **kwargs: Any) -> None:
        nonlocal aiohttp_inflaters
        aiohttp_inflaters += 1
        real_buffer_init(self, *args, **kwargs)

    monkeypatch.setattr(bodies.zlib, "decompressobj", Counting)
    monkeypatch.setattr(http_parser.DeflateBuffer, "__init__", counting_buffer_init)
    headers = [*openai_raw_headers(gw), (b"Content-Encoding", b"gzip")]
    status, _, _ = await raw_request(gw.url, "/v1/chat/completions", headers, gzip_bomb(200 << 20))
    assert status == 413
    assert 0 < inflated <= gw.settings.gateway.max_body_bytes + 1
    assert aiohttp_inflaters == 0
    assert served(gw) == 0


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "GZip"])
async def test_compressed_bodies_within_the_limit_are_served(gw: Harness, encoding: str) -> None:
    raw = json.dumps(CHAT_BODY).encode()
    data = gzip.compress(raw) if encoding.lower() == "gzip" else zlib.compress(raw)
    headers = [*openai_raw_headers(gw), (b"Content-Encoding", encoding.encode())]
    status, _, payload = await raw_request(gw.url, "/v1/chat/completions", headers, data)
    assert status == 200, payload
    assert gw.openai.last.json["messages"] == MESSAGES
    assert_served_calls_recorded(gw)


async def test_decompressed_size_just_over_the_limit_is_413(
    sqlite_url: str, upstream_keys: None
) -> None:
    async with running_gateway(sqlite_url, max_body_bytes=100_000) as gw:
        ok = gzip_bomb(99_000)
        over = gzip_bomb(100_001)
        headers = [*openai_raw_headers(gw), (b"Content-Encoding", b"gzip")]
        assert (await raw_request(gw.url, "/v1/chat/completions", headers, ok))[0] == 200
        status, _, payload = await raw_request(gw.url, "/v1/chat/completions", headers, over)
        assert status == 413
        assert "100000" in openai_error(payload)["message"]
        assert_served_calls_recorded(gw)


@pytest.mark.parametrize("encoding", [b"compress", b"gzip, gzip", b"xz", b"br", b"zstd"])
async def test_unsupported_content_encoding_is_415(gw: Harness, encoding: bytes) -> None:
    headers = [*openai_raw_headers(gw), (b"Content-Encoding", encoding)]
    status, _, payload = await raw_request(
        gw.url, "/v1/chat/completions", headers, gzip.compress(json.dumps(CHAT_BODY).encode())
    )
    assert status == 415
    err = openai_error(payload)
    assert "Content-Encoding" in err["message"] and "gzip" in err["message"]
    assert served(gw) == 0


async def test_corrupt_gzip_body_is_400_quietly(
    gw: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.clear()
    headers = [*openai_raw_headers(gw), (b"Content-Encoding", b"gzip")]
    data = gzip.compress(json.dumps(CHAT_BODY).encode())
    status, _, payload = await raw_request(
        gw.url, "/v1/chat/completions", headers, data[:10] + b"garbage" + data[17:]
    )
    assert status == 400
    assert "gzip" in openai_error(payload)["message"]
    assert served(gw) == 0
    await asyncio.sleep(0.1)  # aiohttp's clean-up after the response
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


# ====================================================== client abandoning its upload


async def test_client_abandoning_its_upload_is_499_quietly(
    sqlite_url: str, upstream_keys: None, caplog: pytest.LogCaptureFixture
) -> None:
    """Defect 12: recorded as 499 client_disconnected, no traceback, no reservation left."""
    async with running_gateway(sqlite_url) as gw:
        storage.set_budget(
            gw.store,
            kind=BUDGET,
            scope="team:research",
            unit="usd",
            limit=10**12,
            period="month",
            hard=True,
        )
        await gw.gateway.budgets.refresh()
        host, port = gw.url.removeprefix("http://").split(":")
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            for chunked in (False, True):
                _, writer = await asyncio.open_connection(host, int(port))
                framing = (
                    b"Transfer-Encoding: chunked\r\n\r\n100\r\n"
                    if chunked
                    else b"Content-Length: 100000\r\n\r\n"
                )
                writer.write(
                    b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"
                    b"Authorization: Bearer " + gw.key.encode() + b"\r\n"
                    b"Content-Type: application/json\r\n" + framing + b'{"model": "gpt-4o-mini", '
                )
                await writer.drain()
                await asyncio.sleep(0.2)  # the gateway is now waiting for the rest
                writer.transport.abort()
            deadline = asyncio.get_running_loop().time() + 10
            while True:
                events = gw.events()
                if len(events) == 2 or asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.05)
        assert [(e.status, e.error_kind) for e in events] == [(499, "client_disconnected")] * 2
        assert not [
            r
            for r in caplog.records
            if r.name.startswith(("tokenomy", "aiohttp")) and r.levelno >= logging.WARNING
        ], caplog.text
        assert gw.gateway.budgets.local_reserved() == 0
        assert served(gw) == 0


# ============================================== requests and events, counted end to end


async def test_every_served_call_is_on_the_ledger_after_odd_input(gwdb: Harness) -> None:
    """A mix of good and odd requests: served calls and ledger events match one for one."""
    async with oai(gwdb) as c, ant(gwdb) as a:
        await c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, user="ü" * 256)
        await c.chat.completions.create(
            model="gpt-via-anthropic", messages=MESSAGES, metadata={"run": "x\x00y", "n": "1"}
        )
        await a.messages.create(
            model="claude-sonnet", max_tokens=16, messages=MESSAGES, metadata={"user_id": "bob"}
        )
        for bad in (nested(300), {"k": "v" * 20_000}):
            with pytest.raises(openai.BadRequestError):
                await c.chat.completions.create(
                    model="gpt-via-anthropic", messages=MESSAGES, metadata=bad
                )
    assert served(gwdb) == 3
    assert_served_calls_recorded(gwdb)
    events = gwdb.events()
    assert len(events) == 5
    assert any(e.metadata == {"run": "x\x00y", "n": "1"} for e in events)
