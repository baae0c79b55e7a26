"""Shared machinery of the fake upstreams: server lifecycle, recording, scenarios, faults.

A scenario is selected per request, from (1) the request's model id — ``"fake-<name>"``,
several joined with ``+`` (``"fake-slow-0.2s+no-usage"``) — (2) the server's
``next_scenario`` queue (one entry per request, popped first-come) and (3) the server's
``scenario`` default. All three are merged. Unknown names raise ``ValueError`` in the
test that set them, so a typo cannot silently test the happy path.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import socket
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

import orjson
from aiohttp import web
from multidict import CIMultiDict

from tests.ports import unused_port

__all__ = [
    "FakeServer",
    "FakeUsage",
    "RecordedRequest",
    "Scenario",
    "refused_url",
    "unused_port",
]

_DURATION = re.compile(r"^(slow|stall|hang)-(\d+(?:\.\d+)?)(ms|s)$")
_ERROR = re.compile(r"^error-(\d{3})$")
_RETRY_AFTER = re.compile(r"^retry-after-(\d+)$")
_FLAGS = {
    "drop-mid-stream",
    "error-mid-stream",
    "no-usage",
    "usage-with-choices",
    "malformed-json",
    "tool-call",
    "no-final-blank-line",
    "echo-key",
    "fail-before-content",
    "end-before-content",
    "garbage",
    "non-stream-body",
    "context-length",
    "content-policy",
}


@dataclass(slots=True)
class Scenario:
    """What a request should experience; built from scenario names.

    Names:
        ``error-<status>``: answer with the provider's real error JSON and that status.
        ``slow-<n>s`` / ``slow-<n>ms``: wait before sending the response headers.
        ``stall-<n>s``: send the first part of the body, then wait, then the rest.
        ``drop-mid-stream``: close the connection half-way through the body.
        ``error-mid-stream``: a stream that turns into the provider's in-stream error.
        ``no-usage``: never report usage (like a local server).
        ``usage-with-choices``: OpenAI stream usage in the finish_reason chunk.
        ``malformed-json``: a broken JSON body, or one broken event mid-stream.
        ``tool-call``: answer with a call of the request's first (or chosen) tool.
        ``no-final-blank-line``: the stream's last event lacks its closing blank line.
        ``echo-key``: a 401 whose message echoes the request's API key, whole and masked
            (with ``error-mid-stream``: the in-stream error echoes it instead).
        ``retry-after-<n>``: error responses carry ``retry-after: <n>``.
        ``hang-<n>s``: a stream sends its first (start-up) event, then nothing for n s.
        ``fail-before-content``: a stream sends its first event, then an in-stream error.
        ``end-before-content``: a stream sends its first event, then ends.
        ``garbage``: 200 with a body that is neither JSON nor SSE.
        ``non-stream-body``: a stream request answered with a JSON body.
        ``context-length``: 400 with the provider's "prompt too long" error.
        ``content-policy``: 400 with the provider's content policy refusal.
    """

    names: tuple[str, ...] = ()
    error_status: int | None = None
    slow_s: float = 0.0
    stall_s: float = 0.0
    flags: frozenset[str] = frozenset()
    retry_after: int | None = None
    hang_s: float = 0.0

    @classmethod
    def parse(cls, names: Iterable[str]) -> Scenario:
        """Build a scenario from names (``ValueError`` on an unknown name)."""
        kept: list[str] = []
        error_status, slow, stall, hang = None, 0.0, 0.0, 0.0
        retry_after: int | None = None
        flags: set[str] = set()
        for raw in names:
            for name in raw.split("+"):
                name = name.strip()
                if not name:
                    continue
                kept.append(name)
                if m := _ERROR.match(name):
                    error_status = int(m.group(1))
                elif m := _DURATION.match(name):
                    secs = float(m.group(2)) / (1000.0 if m.group(3) == "ms" else 1.0)
                    if m.group(1) == "slow":
                        slow = secs
                    elif m.group(1) == "hang":
                        hang = secs
                    else:
                        stall = secs
                elif m := _RETRY_AFTER.match(name):
                    retry_after = int(m.group(1))
                elif name in _FLAGS:
                    flags.add(name)
                else:
                    raise ValueError(f"unknown fake scenario {name!r}")
        return cls(tuple(kept), error_status, slow, stall, frozenset(flags), retry_after, hang)

    def has(self, flag: str) -> bool:
        """True if the flag scenario ``flag`` is selected."""
        return flag in self.flags


@dataclass(slots=True)
class FakeUsage:
    """Usage the fakes report, in tokenomy's convention (input includes cache parts).

    ``None`` means derived from the traffic: input = words of the request text (+ the
    cache parts), output = words of the reply (+ ``reasoning_tokens``). One word of the
    deterministic reply is one streamed chunk and one "token".
    """

    input_tokens: int | None = None
    output_tokens: int | None = None
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0

    def resolve(self, request_words: int, reply_words: int) -> ResolvedUsage:
        """Fix the numbers for one request."""
        inp = self.input_tokens
        if inp is None:
            inp = request_words + self.cached_tokens + self.cache_write_tokens
        out = self.output_tokens
        if out is None:
            out = reply_words + self.reasoning_tokens
        if self.cached_tokens + self.cache_write_tokens > inp:
            raise ValueError("FakeUsage: cache parts exceed input_tokens")
        if self.cache_write_1h_tokens > self.cache_write_tokens:
            raise ValueError("FakeUsage: cache_write_1h_tokens exceeds cache_write_tokens")
        return ResolvedUsage(
            inp,
            out,
            self.cached_tokens,
            self.cache_write_tokens,
            self.cache_write_1h_tokens,
            min(self.reasoning_tokens, out),
        )


@dataclass(frozen=True, slots=True)
class ResolvedUsage:
    """The exact numbers of one reply (tokenomy convention)."""

    input_tokens: int
    output_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    cache_write_1h_tokens: int
    reasoning_tokens: int


@dataclass(slots=True)
class RecordedRequest:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]
    body: bytes
    json: Any = None
    scenario: Scenario = field(default_factory=Scenario)
    at: float = field(default_factory=time.monotonic)  # when it arrived (monotonic clock)


def refused_url(path: str = "/v1") -> str:
    """A base URL whose connections are refused, for connection-error tests."""
    return f"http://127.0.0.1:{unused_port()}{path}"


def words_of(text: str) -> list[str]:
    """Whitespace-separated words: the fakes' notion of a token."""
    return text.split()


def stable_id(prefix: str, seed: str, n: int = 24) -> str:
    """A deterministic id such as ``chatcmpl-3f2a…`` derived from the request."""
    return prefix + hashlib.sha256(seed.encode()).hexdigest()[:n]


def sse(event: str | None, data: Any) -> bytes:
    """One server-sent event (``data`` is JSON-encoded unless already bytes)."""
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + payload + b"\n\n"


Handler = Callable[[web.Request, RecordedRequest], Awaitable[web.StreamResponse]]


class FakeServer:
    """An aiohttp server on 127.0.0.1 with recording and scenario selection.

    Use as ``async with FakeX() as up: ...``; ``up.url`` is ``http://127.0.0.1:<port>``.

    Attributes:
        requests: Every request received, in order (in ``fast`` mode only those that
            name a scenario: the others take the pre-serialised path, unrecorded).
        fast: Fast mode, bench/'s upstream: the chat completions / messages endpoint
            answers with pre-serialised replies, without auth checks or recording.
        next_scenario: Queue of scenario names; each request pops one (if any).
        scenario: Scenario names applied to every request.
        usage: The :class:`FakeUsage` reported (mutable between requests).
        reply_text: Fixed reply text instead of the derived one (``None``: derived).
        api_key: If set, only this key is accepted; otherwise any non-empty key is.
        created: The fixed ``created`` timestamp of every object (deterministic bodies).
    """

    provider = "fake"

    def __init__(
        self,
        *,
        port: int = 0,
        host: str = "127.0.0.1",
        api_key: str | None = None,
        scenario: str | Iterable[str] = (),
        usage: FakeUsage | None = None,
        reply_text: str | None = None,
        fast: bool = False,
    ) -> None:
        self.host = host
        self.port = port
        self.api_key = api_key
        self.scenario: list[str] = [scenario] if isinstance(scenario, str) else list(scenario)
        self.next_scenario: deque[str] = deque()
        self.usage = usage or FakeUsage()
        self.reply_text = reply_text
        self.fast = fast
        self.requests: list[RecordedRequest] = []
        self.created = 1_764_300_000
        self._runner: web.AppRunner | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def url(self) -> str:
        """Root URL, ``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The base URL the provider's official SDK expects."""
        return self.url

    def routes(self) -> list[web.RouteDef]:  # pragma: no cover - overridden
        """The provider's routes."""
        raise NotImplementedError

    async def start(self) -> Self:
        """Bind and start serving (port 0 picks a free port)."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.add_routes(self.routes())
        # handler_cancellation: a client that gives up (timeout tests) cancels the
        # handler instead of leaving it sleeping; a short shutdown keeps teardown fast.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        await runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            self.port = int(sock.getsockname()[1])
            await web.SockSite(runner, sock).start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runner = runner
        return self

    async def stop(self) -> None:
        """Stop serving and close every connection."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # ------------------------------------------------------------------ recording

    @property
    def last(self) -> RecordedRequest:
        """The most recent request (``IndexError`` if none)."""
        return self.requests[-1]

    def clear(self) -> None:
        """Forget recorded requests and queued scenarios."""
        self.requests.clear()
        self.next_scenario.clear()

    async def _record(self, request: web.Request, body: bytes | None) -> RecordedRequest:
        if body is None:
            body = await request.read()
        parsed: Any = None
        if body:
            with contextlib.suppress(orjson.JSONDecodeError):
                parsed = orjson.loads(body)
        rec = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=CIMultiDict(request.headers),
            body=body,
            json=parsed,
        )
        names = list(self.scenario)
        if self.next_scenario:
            names.append(self.next_scenario.popleft())
        model = parsed.get("model") if isinstance(parsed, dict) else None
        if isinstance(model, str) and model.startswith("fake-"):
            names.append(model[5:])
        rec.scenario = Scenario.parse(names)
        self.requests.append(rec)
        return rec

    def handler(self, fn: Handler) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Wrap a route handler ``fn(request, recorded)`` with :meth:`dispatch`."""

        async def wrapped(request: web.Request) -> web.StreamResponse:
            return await self.dispatch(request, fn)

        return wrapped

    async def dispatch(
        self, request: web.Request, fn: Handler, body: bytes | None = None
    ) -> web.StreamResponse:
        """Record, then apply slow/auth/error scenarios, then call ``fn``.

        Args:
            request: The aiohttp request.
            fn: The endpoint's implementation.
            body: The body if the caller already read it (fast mode).
        """
        rec = await self._record(request, body)
        scn = rec.scenario
        if scn.slow_s:
            await asyncio.sleep(scn.slow_s)
        denied = self.check_auth(request)
        if denied is not None:
            return denied
        if scn.error_status is not None:
            resp = self.error_response(scn.error_status)
            if scn.retry_after is not None:
                resp.headers["retry-after"] = str(scn.retry_after)
            return resp
        if scn.has("context-length"):
            return self.error_response(400, self.context_length_message)
        if scn.has("content-policy"):
            return self.error_response(400, self.content_policy_message)
        if scn.has("garbage"):
            return web.Response(
                body=b"<html><body>502 Bad Gateway</body></html>\n",
                content_type="text/event-stream" if _streams(rec) else "application/json",
            )
        if scn.has("non-stream-body") and _streams(rec):
            return web.json_response({"id": "not-a-stream", "object": "chat.completion"})
        if scn.has("echo-key") and not scn.has("error-mid-stream"):
            return self.error_response(401, self.echo_key_message(request))
        return await fn(request, rec)

    @staticmethod
    def echo_key_message(request: web.Request) -> str:
        """An auth error text echoing the presented key, as some providers do."""
        auth = request.headers.get("Authorization", "")
        key = request.headers.get("x-api-key") or auth.removeprefix("Bearer ")
        return f"Incorrect API key provided: {key} (shown as {key[:7]}****{key[-4:]})."

    # ------------------------------------------------------------ provider specifics

    def check_auth(self, request: web.Request) -> web.Response | None:  # pragma: no cover
        """Return the provider's auth error response, or ``None`` if allowed."""
        raise NotImplementedError

    def error_body(self, status: int, message: str | None = None) -> dict[str, Any]:
        """The provider's error JSON for ``status``."""
        raise NotImplementedError  # pragma: no cover

    def error_headers(self) -> dict[str, str]:
        """Headers sent with every error (request id)."""
        return {}

    # The providers' own wording (routing detects them).
    context_length_message = (
        "This model's maximum context length is 128000 tokens. However, your messages "
        "resulted in 200000 tokens. Please reduce the length of the messages."
    )
    content_policy_message = (
        "Your request was rejected as a result of our safety system (content_policy)."
    )

    def stream_error_event(self, message: str) -> bytes:
        """The provider's in-stream error event carrying ``message``."""
        raise NotImplementedError  # pragma: no cover

    def error_response(self, status: int, message: str | None = None) -> web.Response:
        """The provider's real error JSON for ``status``."""
        headers = self.error_headers()
        if status == 429:
            headers["retry-after"] = "0"
        return web.Response(
            status=status,
            body=orjson.dumps(self.error_body(status, message)),
            content_type="application/json",
            headers=headers,
        )

    # ------------------------------------------------------------------ body helpers

    def reply_words(self, prompt_words: list[str], limit: int | None) -> tuple[list[str], bool]:
        """Deterministic reply words and whether ``limit`` (max tokens) cut them."""
        if self.reply_text is not None:
            words = words_of(self.reply_text)
        elif prompt_words:
            words = ["This", "is", "a", "fake", "reply", "to:", *prompt_words[-16:]]
        else:
            words = ["This", "is", "a", "fake", "reply."]
        if limit is not None and 0 < limit < len(words):
            return words[:limit], True
        return words, False

    @staticmethod
    def join_words(words: list[str]) -> list[str]:
        """Stream pieces: each word after the first carries its leading space."""
        return [w if i == 0 else " " + w for i, w in enumerate(words)]

    def now(self) -> int:
        """The fixed ``created`` timestamp (deterministic bodies)."""
        return self.created

    @staticmethod
    def elapsed_ms(start: float) -> str:
        """Processing time header value."""
        return str(int((time.perf_counter() - start) * 1000))

    # ------------------------------------------------------------------ stream faults

    async def stream_events(
        self,
        request: web.Request,
        rec: RecordedRequest,
        events: list[bytes],
        *,
        headers: dict[str, str],
        error_event: bytes | None = None,
    ) -> web.StreamResponse:
        """Send ``events`` as an SSE body, applying the stream scenarios."""
        scn = rec.scenario
        resp = web.StreamResponse(
            status=200,
            headers={
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
                **headers,
            },
        )
        await resp.prepare(request)
        half = max(1, len(events) // 2)
        if scn.has("malformed-json"):
            events = [*events[:half], b'data: {"id": "broken", "choices": [\n\n', *events[half:]]
        if scn.has("error-mid-stream") and error_event is not None:
            if scn.has("echo-key"):
                error_event = self.stream_error_event(self.echo_key_message(request))
            events = [*events[:half], error_event]
        if scn.has("no-final-blank-line") and events and events[-1].endswith(b"\n\n"):
            events = [*events[:-1], events[-1][:-2]]
        if scn.has("fail-before-content") and error_event is not None:
            events = [events[0], error_event]
        if scn.has("end-before-content"):
            events = events[:1]
        for i, ev in enumerate(events):
            if i == 1 and scn.hang_s:
                await asyncio.sleep(scn.hang_s)
            if i == half:
                if scn.stall_s:
                    await asyncio.sleep(scn.stall_s)
                if scn.has("drop-mid-stream"):
                    await self.drop(request)
            await resp.write(ev)
        await resp.write_eof()
        return resp

    async def send_json(
        self, request: web.Request, rec: RecordedRequest, body: Any, headers: dict[str, str]
    ) -> web.StreamResponse:
        """Send a JSON body, applying the non-stream scenarios."""
        scn = rec.scenario
        raw = orjson.dumps(body)
        if scn.has("malformed-json"):
            raw = raw[: len(raw) // 2]
        if not (scn.stall_s or scn.has("drop-mid-stream")):
            return web.Response(body=raw, content_type="application/json", headers=headers)
        resp = web.StreamResponse(
            status=200, headers={"Content-Type": "application/json", **headers}
        )
        resp.content_length = len(raw)
        await resp.prepare(request)
        await resp.write(raw[: len(raw) // 2])
        if scn.stall_s:
            await asyncio.sleep(scn.stall_s)
        if scn.has("drop-mid-stream"):
            await self.drop(request)
        await resp.write(raw[len(raw) // 2 :])
        await resp.write_eof()
        return resp

    @staticmethod
    async def drop(request: web.Request) -> None:
        """Close the connection now, without finishing the body (never returns)."""
        transport = request.transport
        if transport is not None:
            transport.close()  # flushes what was written, then FIN: a truncated body
        # Leave the handler without aiohttp trying to finish the (closed) response.
        raise asyncio.CancelledError


def schema_arguments(schema: Any, prompt_words: list[str]) -> dict[str, Any]:
    """Deterministic tool arguments satisfying the top level of a JSON schema."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return {}
    fill: dict[str, Any] = {
        "string": " ".join(prompt_words[-3:]) or "fake",
        "integer": 1,
        "number": 1.5,
        "boolean": True,
        "array": [],
        "object": {},
    }
    args: dict[str, Any] = {}
    for key, prop in props.items():
        prop = prop if isinstance(prop, dict) else {}
        enum = prop.get("enum")
        args[key] = (
            enum[0] if isinstance(enum, list) and enum else fill.get(str(prop.get("type")), "fake")
        )
    return args


def request_text(value: Any) -> list[str]:
    """All words of the text inside a request value (strings, parts, nested blocks)."""
    out: list[str] = []
    _collect(value, out)
    return out


def _collect(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.extend(value.split())
    elif isinstance(value, list):
        for v in value:
            _collect(v, out)
    elif isinstance(value, dict):
        for key in ("text", "content", "input_text", "output", "thinking"):
            if key in value:
                _collect(value[key], out)


def _streams(rec: RecordedRequest) -> bool:
    return isinstance(rec.json, dict) and rec.json.get("stream") is True
