"""Client connections are bounded: header, body and keep-alive timeouts, a connection cap.

Raw sockets play the misbehaving clients (silent, half a header, a stalled body, many
idle connections); normal clients must still be served. Waits are bounded, never timed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
import orjson
import pytest

from tests.gateway.harness import Harness, running_gateway
from tokenomy.gateway.connections import connections_for_fd_limit

BOUND = 10.0  # generous upper bound for anything that should happen "soon"


@pytest.fixture
async def tight(sqlite_url: str, upstream_keys: None) -> AsyncIterator[Harness]:
    async with running_gateway(
        sqlite_url, header_timeout_s=0.3, body_timeout_s=0.3, keepalive_timeout_s=30
    ) as h:
        yield h


async def connect(h: Harness) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = h.url.removeprefix("http://").split(":")
    return await asyncio.open_connection(host, int(port))


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), BOUND)


async def response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), BOUND)
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return status, await asyncio.wait_for(reader.readexactly(length), BOUND)


async def test_silent_connection_is_closed_after_the_header_timeout(tight: Harness) -> None:
    reader, writer = await connect(tight)
    assert await closed_by_server(reader) == b""
    writer.close()


async def test_half_a_header_is_closed_after_the_header_timeout(tight: Harness) -> None:
    reader, writer = await connect(tight)
    writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Ty")
    assert await closed_by_server(reader) == b""
    writer.close()
    assert tight.events() == []  # never a request: nothing to record


async def test_idle_keep_alive_outlives_the_header_timeout(tight: Harness) -> None:
    reader, writer = await connect(tight)
    for _ in range(2):
        writer.write(b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n")
        status, body = await response(reader)
        assert status == 200 and orjson.loads(body) == {"status": "ok"}
        await asyncio.sleep(0.6)  # idle for twice the header timeout: keep-alive rules
    # A trickled next request still gets the header timeout.
    writer.write(b"GET /health HTTP/1.1\r\n")
    assert await closed_by_server(reader) == b""
    writer.close()


async def test_stalled_body_is_answered_408_recorded_and_closed(tight: Harness) -> None:
    reader, writer = await connect(tight)
    body = b'{"model": "gpt-4o-mini", "messages": ['
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\n"
        b"Authorization: Bearer " + tight.key.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + body
    )
    status, answer = await response(reader)
    assert status == 408
    assert orjson.loads(answer)["error"]["code"] == "request_timeout"
    assert await closed_by_server(reader) == b""
    writer.close()
    (ev,) = tight.events()
    assert (ev.status, ev.error_kind) == (408, "request_timeout")
    assert tight.openai.requests == []  # never forwarded


async def test_at_the_cap_idle_connections_are_shed_and_clients_served(
    sqlite_url: str, upstream_keys: None
) -> None:
    cap, idle_count = 20, 100
    async with running_gateway(sqlite_url, max_connections=cap, header_timeout_s=60) as h:
        idle = [await connect(h) for _ in range(idle_count)]
        try:
            async with aiohttp.ClientSession() as http:
                for i in range(10):
                    async with http.post(
                        h.openai_base + "/chat/completions",
                        json={
                            "model": "gpt-4o-mini",
                            "messages": [{"role": "user", "content": f"q{i}"}],
                        },
                        headers={"Authorization": f"Bearer {h.key}"},
                        timeout=aiohttp.ClientTimeout(total=BOUND),
                    ) as resp:
                        assert resp.status == 200
            # The oldest idle sockets were closed by the gateway to make room.
            closed = 0
            for reader, _ in idle[: idle_count - cap]:
                if await closed_by_server(reader) == b"":
                    closed += 1
            assert closed == idle_count - cap
        finally:
            for _, writer in idle:
                with contextlib.suppress(Exception):
                    writer.close()
        assert len(h.events()) == 10


def test_default_cap_leaves_room_for_upstream_sockets() -> None:
    assert connections_for_fd_limit(1024) == 384
    assert connections_for_fd_limit(64) == 24
    assert connections_for_fd_limit(1 << 20) == ((1 << 20) - 256) // 2
