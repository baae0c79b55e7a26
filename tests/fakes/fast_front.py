"""The fakes' fast mode as a process: a raw asyncio front that bench/ can't outrun.

aiohttp's own request handling costs ~100 µs a request, which on a 2-core machine takes
CPU from the gateway being measured. The front answers the fake's fast path (chat
completions / messages, stream or not) with the fake's own pre-serialised replies and a
byte search, as a fixed responder would; any other request (another path, or a model
naming a scenario, ``"fake-error-429"``) switches its connection to a plain byte relay to
the full fake running behind it on a private port, so every scenario still works.
"""

from __future__ import annotations

import asyncio

from ._base import FakeServer

_STREAM_MARKERS = (b'"stream":true', b'"stream": true')


def _response(body: bytes, content_type: bytes) -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: " + content_type + b"\r\nx-request-id: fast\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
    )


class FastFront(asyncio.Protocol):
    """One client connection: fixed replies, or a relay to the full fake."""

    def __init__(self, path: bytes, replies: tuple[bytes, bytes, bytes], behind: int) -> None:
        self._path = path
        unary, stream, stream_usage = replies
        self._unary = _response(unary, b"application/json")
        self._stream = _response(stream, b"text/event-stream; charset=utf-8")
        self._stream_usage = _response(stream_usage, b"text/event-stream; charset=utf-8")
        self._behind = behind
        self._buf = b""
        self._transport: asyncio.Transport | None = None
        self._relay: asyncio.Transport | None = None
        self._relaying = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._relay is not None:
            self._relay.close()

    def data_received(self, data: bytes) -> None:
        if self._relaying:
            if self._relay is not None:
                self._relay.write(data)
            else:
                self._buf += data  # still connecting
            return
        self._buf += data
        while not self._relaying:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self._buf[:end]
            lower = head.lower()
            length = 0
            i = lower.find(b"\r\ncontent-length:")
            if i >= 0:
                j = lower.find(b"\r\n", i + 2)
                length = int(lower[i + 17 : j if j > 0 else len(lower)].strip())
            total = end + 4 + length
            if len(self._buf) < total:
                return
            body = self._buf[end + 4 : total]
            line = head[: head.find(b"\r\n")] if b"\r\n" in head else head
            if not line.startswith(b"POST " + self._path + b" ") or b'"fake-' in body:
                self._start_relay()
                return
            self._buf = self._buf[total:]
            assert self._transport is not None
            if not any(marker in body for marker in _STREAM_MARKERS):
                self._transport.write(self._unary)
            elif b"include_usage" in body:
                self._transport.write(self._stream_usage)
            else:
                self._transport.write(self._stream)

    def _start_relay(self) -> None:
        self._relaying = True
        asyncio.get_running_loop().create_task(self._connect())

    async def _connect(self) -> None:
        loop = asyncio.get_running_loop()
        front = self._transport
        assert front is not None
        try:
            relay, _ = await loop.create_connection(lambda: _Back(front), "127.0.0.1", self._behind)
        except OSError:
            front.close()
            return
        self._relay = relay
        relay.write(self._buf)
        self._buf = b""


class _Back(asyncio.Protocol):
    """The full fake's side of a relayed connection: its bytes go back to the client."""

    def __init__(self, front: asyncio.Transport) -> None:
        self._front = front

    def data_received(self, data: bytes) -> None:
        self._front.write(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._front.close()


async def start_fast_front(
    fake: FakeServer, path: str, replies: tuple[bytes, bytes, bytes], host: str, port: int
) -> asyncio.Server:
    """Serve ``fake`` (already started on a private port) behind a fast front on ``port``."""
    loop = asyncio.get_running_loop()
    return await loop.create_server(
        lambda: FastFront(path.encode(), replies, fake.port), host, port, backlog=1024
    )
