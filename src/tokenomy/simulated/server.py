"""The simulated token factory's HTTP server: an upstream on a loopback port.

The gateway starts it at start-up (``tokenomy.gateway.app``) and points each simulated
provider's ``base_url`` at ``http://127.0.0.1:PORT/<provider name>``; the gateway then
calls it like any upstream, over real HTTP, so metering, streaming, pricing and the
ledger run exactly as for a cloud provider. Each provider has its own speed
(``tokens_per_s``, 0 = no pacing), time to first token (``ttft_ms``), share of failed
calls (``failure_rate``: 429, 500 and 503, or Anthropic's 529, with the providers' own
error bodies) and answer length (``answer_tokens``).

The server is a small HTTP/1.1 protocol of its own rather than an aiohttp app: it shares
the gateway's event loop, and aiohttp's request handling (~100 µs a request) would take
that CPU from the gateway under load. An answer that needs no waiting is written from
``data_received`` directly; one that waits (time to first token, pacing, a long prompt
tokenized in a thread) runs as a task, and the connection answers its next request after
it (HTTP/1.1 without pipelining, as the gateway's client uses it).
"""

from __future__ import annotations

import asyncio
import dataclasses
import math
import random
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote

import orjson

from tokenomy.simulated import answers, formats
from tokenomy.simulated.cache import PromptCache

# Bodies larger than this are tokenized in a thread, off the event loop the gateway shares.
_INLINE_BYTES = 32_768
# Events per second of a paced stream, at most: tokens are grouped into chunks above it.
_EVENTS_PER_S = 50
_FAST_CHUNK = 16  # tokens per chunk when tokens_per_s = 0
_MAX_HEAD = 65_536

_ENDPOINTS = {
    "chat/completions": "chat.completions",
    "completions": "completions",
    "embeddings": "embeddings",
    "responses": "responses",
    "v1/messages": "messages",
    "v1/messages/count_tokens": "messages.count_tokens",
}
_ENDPOINTS.update({"v1/" + k: v for k, v in list(_ENDPOINTS.items()) if not k.startswith("v1/")})
_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 429: "Too Many Requests"}
_REASONS |= {500: "Internal Server Error", 503: "Service Unavailable", 529: "Overloaded"}


@dataclass(frozen=True, slots=True)
class _Kind:
    """How the factory answers one endpoint (looked up once per request)."""

    anthropic: bool  # Anthropic's wire format (error bodies, request-id header)
    unary: Callable[[answers.Answer], dict[str, Any]] | None = None
    stream: Callable[[answers.Answer, int, dict[str, Any]], Iterator[tuple[bytes, int]]] | None = (
        None
    )
    # Answered whole, with no model call and no injected failure (count_tokens, embeddings).
    whole: Callable[[dict[str, Any]], Any] | None = None
    fails: bool = True


def _count(body: dict[str, Any]) -> Any:
    return {"input_tokens": answers.input_tokens("messages.count_tokens", body)}


def _embeddings(body: dict[str, Any]) -> Any:
    data, n = answers.embeddings(body)
    usage = {"prompt_tokens": n, "total_tokens": n}
    return {"object": "list", "data": data, "model": body.get("model"), "usage": usage}


_KINDS = {
    "chat.completions": _Kind(
        False, formats.chat, lambda a, n, b: formats.chat_stream(a, n, _wants_usage(b))
    ),
    "completions": _Kind(
        False,
        formats.completions,
        lambda a, n, b: formats.completions_stream(a, n, _wants_usage(b)),
    ),
    "responses": _Kind(False, formats.responses, lambda a, n, b: formats.responses_stream(a, n)),
    "messages": _Kind(True, formats.messages, lambda a, n, b: formats.messages_stream(a, n)),
    "embeddings": _Kind(False, whole=_embeddings),
    "messages.count_tokens": _Kind(True, whole=_count, fails=False),
}


@dataclass(frozen=True, slots=True)
class Options:
    """How one simulated provider behaves."""

    tokens_per_s: float = 100.0
    ttft_ms: float = 300.0
    failure_rate: float = 0.0
    answer_tokens: int = 120

    @property
    def chunk(self) -> int:
        """Output tokens per stream event."""
        if self.tokens_per_s <= 0:
            return _FAST_CHUNK
        return max(1, math.ceil(self.tokens_per_s / _EVENTS_PER_S))

    def seconds(self, output_tokens: int) -> float:
        """How long an answer of ``output_tokens`` takes: first token, then the rest."""
        gen = output_tokens / self.tokens_per_s if self.tokens_per_s > 0 else 0.0
        return self.ttft_ms / 1000 + gen


@dataclass(slots=True)
class _Request:
    provider: str
    options: Options
    endpoint: str
    kind: _Kind
    body: dict[str, Any]
    heavy: bool

    @property
    def anthropic(self) -> bool:
        return self.kind.anthropic


def _response(
    status: int, body: bytes, content_type: bytes, anthropic: bool, extra: bytes = b""
) -> bytes:
    reason = _REASONS.get(status, "Error").encode()
    id_header = b"request-id" if anthropic else b"x-request-id"
    return (
        b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\n%s: req_sim\r\n%sContent-Length: %d\r\n\r\n"
        % (status, reason, content_type, id_header, extra, len(body))
    ) + body


def _json(data: Any, status: int = 200, anthropic: bool = False, extra: bytes = b"") -> bytes:
    return _response(status, orjson.dumps(data), b"application/json", anthropic, extra)


def _sse_head(anthropic: bool) -> bytes:
    id_header = b"request-id" if anthropic else b"x-request-id"
    return (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
        b"Cache-Control: no-cache\r\n%s: req_sim\r\n" % id_header
    )


class SimulatedFactory:
    """The simulated providers of one gateway, served on one loopback port.

    The socket is bound when the factory is made (so the providers' URLs are known
    before the gateway is built) and served from :meth:`serve`, an aiohttp
    ``cleanup_ctx`` of the gateway's app.
    """

    def __init__(
        self, providers: dict[str, Options], *, seed: int | None = None, port: int = 0
    ) -> None:
        self.providers = providers
        self.caches = {name: PromptCache() for name in providers}
        self._rng = random.Random(seed)
        self._failures = 0
        self._connections: set[_Connection] = set()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))  # 0: an ephemeral port (the gateway's case)
        self.port: int = self.sock.getsockname()[1]

    def base_url(self, provider: str) -> str:
        return f"http://127.0.0.1:{self.port}/{quote(provider, safe='')}"

    async def serve(self, _app: object = None) -> AsyncIterator[None]:
        """Serve until the gateway stops (an aiohttp ``cleanup_ctx``)."""
        loop = asyncio.get_running_loop()
        server = await loop.create_server(lambda: _Connection(self), sock=self.sock, backlog=1024)
        try:
            yield
        finally:
            server.close()
            for conn in list(self._connections):
                conn.close()
            await server.wait_closed()

    # -- one request ---------------------------------------------------------------------
    def request(self, method: bytes, target: bytes, raw: bytes) -> bytes | _Request:
        """The whole response when it can be written now; else the parsed request."""
        name, _, tail = target.decode("latin-1").lstrip("/").partition("/")
        name = unquote(name)
        options = self.providers.get(name)
        endpoint = _ENDPOINTS.get(tail.partition("?")[0], "")
        kind = _KINDS.get(endpoint)
        anthropic = kind is not None and kind.anthropic
        if method == b"GET" and options is not None and tail in ("models", "v1/models"):
            model = {"id": name, "object": "model", "created": 0, "owned_by": "simulated"}
            return _json({"object": "list", "data": [model]})
        if method != b"POST" or options is None or kind is None:
            msg = f"Unknown path {method.decode('latin-1')} {target.decode('latin-1')} (simulated)."
            return _json(formats.bad_request(anthropic, msg), 404, anthropic)
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            msg = "The request body is not a JSON object (simulated)."
            return _json(formats.bad_request(anthropic, msg), 400, anthropic)
        if kind.fails and options.failure_rate > 0 and self._rng.random() < options.failure_rate:
            return self._fail(anthropic)
        req = _Request(name, options, endpoint, kind, parsed, len(raw) > _INLINE_BYTES)
        if req.heavy or options.ttft_ms > 0:
            return req  # waits: answered by ``deliver``
        out = self._compute(req)
        if isinstance(out, bytes):
            return out
        if options.tokens_per_s > 0:
            return req if out.output_tokens else self._unary(req, out)
        if req.body.get("stream") is True:
            events = b"".join(data for data, _ in self._events(req, out))
            return _response(200, events, b"text/event-stream; charset=utf-8", req.anthropic)
        return self._unary(req, out)

    def _compute(self, req: _Request) -> bytes | answers.Answer:
        """Count tokens and make the answer (``count_tokens`` and embeddings answer whole)."""
        if req.kind.whole is not None:
            return _json(req.kind.whole(req.body), 200, req.anthropic)
        return answers.answer(req.endpoint, req.body, req.options.answer_tokens)

    def _with_cache(self, req: _Request, ans: answers.Answer) -> answers.Answer:
        cached = self.caches[req.provider].cached_tokens(req.endpoint, req.body, ans.input_tokens)
        return dataclasses.replace(ans, cached_tokens=cached) if cached else ans

    def _unary(self, req: _Request, ans: answers.Answer) -> bytes:
        assert req.kind.unary is not None  # an endpoint answered whole never gets here
        return _json(req.kind.unary(self._with_cache(req, ans)), 200, req.anthropic)

    def _events(self, req: _Request, ans: answers.Answer) -> Iterator[tuple[bytes, int]]:
        assert req.kind.stream is not None  # an endpoint answered whole never gets here
        return req.kind.stream(self._with_cache(req, ans), req.options.chunk, req.body)

    def _fail(self, anthropic: bool) -> bytes:
        kind = formats.FAILURE_CYCLE[self._failures % len(formats.FAILURE_CYCLE)]
        self._failures += 1
        status, body = formats.failure(anthropic, kind)
        return _json(body, status, anthropic, b"retry-after: 1\r\n" if status == 429 else b"")

    async def deliver(self, conn: _Connection, req: _Request) -> None:
        """Answer a request that waits: first token, pacing, or a long prompt."""
        options = req.options
        loop = asyncio.get_running_loop()
        start = loop.time()
        if req.heavy:  # tokenizing a long prompt takes milliseconds: off the shared loop
            out = await asyncio.to_thread(self._compute, req)
        else:
            out = self._compute(req)
        first = start + options.ttft_ms / 1000
        if isinstance(out, bytes) or req.body.get("stream") is not True:
            if not isinstance(out, bytes):
                first += out.output_tokens / options.tokens_per_s if options.tokens_per_s else 0
            delay = first - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            conn.write(out if isinstance(out, bytes) else self._unary(req, out))
            return
        tps = options.tokens_per_s
        pending: list[bytes] = []
        conn.write(_sse_head(req.anthropic) + b"Transfer-Encoding: chunked\r\n\r\n")
        for data, sent in self._events(req, out):
            delay = first + (sent / tps if tps > 0 else 0.0) - loop.time()
            if delay > 0.001:
                if pending:
                    conn.write_chunk(b"".join(pending))
                    pending.clear()
                await asyncio.sleep(delay)
                if conn.closing:
                    return  # the caller went away; so does the answer
            pending.append(data)
        conn.write_chunk(b"".join(pending))
        conn.write(b"0\r\n\r\n")


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection from the gateway: requests in order, one at a time."""

    def __init__(self, factory: SimulatedFactory) -> None:
        self.factory = factory
        self.transport: asyncio.Transport | None = None
        self._buf = b""
        self._busy: asyncio.Task[None] | None = None

    @property
    def closing(self) -> bool:
        return self.transport is None or self.transport.is_closing()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.factory._connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.factory._connections.discard(self)
        if self._busy is not None:
            self._busy.cancel()
        self.transport = None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def write(self, data: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def write_chunk(self, data: bytes) -> None:
        if data:
            self.write(b"%x\r\n%s\r\n" % (len(data), data))

    def data_received(self, data: bytes) -> None:
        self._buf += data
        self._next()

    def _next(self) -> None:
        while self._busy is None and self.transport is not None:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > _MAX_HEAD:
                    self.close()
                return
            head = self._buf[:end]
            length = 0
            lower = head.lower()
            i = lower.find(b"\r\ncontent-length:")
            if i >= 0:
                j = lower.find(b"\r\n", i + 2)
                length = int(lower[i + 17 : j if j > 0 else len(lower)].strip())
            elif b"\r\ntransfer-encoding:" in lower:
                self.write(_json({"error": {"message": "chunked bodies are not supported"}}, 400))
                self.close()
                return
            total = end + 4 + length
            if len(self._buf) < total:
                return
            line = head[: head.find(b"\r\n")] if b"\r\n" in head else head
            method, _, rest = line.partition(b" ")
            target = rest.rpartition(b" ")[0]
            raw = self._buf[end + 4 : total]
            self._buf = self._buf[total:]
            try:
                out = self.factory.request(method, target, raw)
            except Exception as exc:  # a bug: answer 500 rather than hang the gateway
                msg = f"simulated factory error: {type(exc).__name__}: {exc}"
                out = _json({"error": {"message": msg, "type": "server_error"}}, 500)
            if isinstance(out, bytes):
                self.write(out)
                continue
            task = asyncio.get_running_loop().create_task(self._deliver(out))
            self._busy = task

    async def _deliver(self, req: _Request) -> None:
        try:
            await self.factory.deliver(self, req)
        except Exception as exc:  # a bug: the connection cannot be trusted any more
            self.write(_json({"error": {"message": f"simulated factory error: {exc}"}}, 500))
            self.close()
        finally:
            self._busy = None
        self._next()


def _wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True
