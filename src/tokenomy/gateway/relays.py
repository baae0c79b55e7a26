"""Stream relays: upstream SSE events in, client SSE bytes out, usage metered on the way.

One relay per (client format, upstream format, endpoint). Each relay sees every upstream
event once, returns the bytes to send to the client, and says when it has reached the
stream's terminal event: the gateway records the usage *before* it sends that event, so
a client that saw the end of the stream can never have an unrecorded request.
"""

from __future__ import annotations

from typing import Any

import orjson

from tokenomy.metering.stream import (
    AnthropicStreamMeter,
    OpenAIStreamMeter,
    ResponsesStreamMeter,
)
from tokenomy.providers.translate import ChatToMessagesStream, MessagesToChatStream
from tokenomy.redact import scrub_json
from tokenomy.types import Usage

DONE = b"data: [DONE]\n\n"
_RESPONSES_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})
_ERROR_EVENTS = frozenset({"error", "response.failed"})


def sse(data: Any, event: str | None = None) -> bytes:
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


def _openai_stream_error(message: str) -> bytes:
    """An error chunk the OpenAI SDKs raise on (``data: {"error": ...}``)."""
    error = {"message": message, "type": "api_error", "param": None, "code": "upstream_error"}
    return sse({"error": error})


def _anthropic_stream_error(message: str) -> bytes:
    """Anthropic's in-stream ``error`` event."""
    return sse({"type": "error", "error": {"type": "api_error", "message": message}}, "error")


class Relay:
    """Base: subclasses implement ``event`` and may override ``tail`` and ``error``."""

    meter: Any
    terminal_seen = False

    def event(self, name: str | None, data: bytes) -> tuple[bytes, bool]:
        """Bytes for the client, and whether this event is the stream's terminal one.

        When terminal, the returned bytes are everything *before* the terminal; the
        terminal itself comes from ``tail()`` after the usage has been recorded.
        """
        raise NotImplementedError

    def tail(self) -> bytes:
        raise NotImplementedError

    def error(self, message: str) -> bytes:
        """An in-stream error for the client (headers are already sent)."""
        raise NotImplementedError

    def usage(self) -> Usage | None:
        u: Usage | None = self.meter.usage()
        return u

    @property
    def usage_complete(self) -> bool:
        return bool(self.meter.usage_complete)

    def output_text(self) -> str:
        text: str = self.meter.output_text()
        return text


class OpenAIPassthrough(Relay):
    """OpenAI client, OpenAI-compatible upstream: chat and completions streams."""

    def __init__(self, client_wants_usage: bool) -> None:
        self.meter = OpenAIStreamMeter()
        self.client_wants_usage = client_wants_usage

    def event(self, name: str | None, data: bytes) -> tuple[bytes, bool]:
        if data == b"[DONE]":
            self.terminal_seen = True
            return b"", True
        obj = orjson.loads(data)
        self.meter.feed(obj)
        if isinstance(obj, dict) and "error" in obj:
            data = orjson.dumps(scrub_json(obj))  # upstreams echo credentials in errors
        if self.client_wants_usage or not isinstance(obj, dict) or obj.get("usage") is None:
            return b"data: " + data + b"\n\n", False
        # We asked upstream for usage on the client's behalf: don't show what it didn't ask for.
        if not obj.get("choices"):
            return b"", False
        del obj["usage"]
        return sse(obj), False

    def tail(self) -> bytes:
        return DONE

    def error(self, message: str) -> bytes:
        return _openai_stream_error(message)


class _TypedEventPassthrough(Relay):
    """Passthrough of a stream of typed events (``event:`` lines) ending in a known type."""

    terminal: frozenset[str]

    def __init__(self) -> None:
        self._held = b""

    def event(self, name: str | None, data: bytes) -> tuple[bytes, bool]:
        obj = orjson.loads(data)
        kind = name or (obj.get("type") if isinstance(obj, dict) else None) or ""
        self.meter.feed(obj)
        if kind in _ERROR_EVENTS:
            data = orjson.dumps(scrub_json(obj))  # upstreams echo credentials in errors
        out = (b"event: " + kind.encode() + b"\n" if kind else b"") + b"data: " + data + b"\n\n"
        if kind in self.terminal:
            self.terminal_seen = True
            self._held = out
            return b"", True
        return out, False

    def tail(self) -> bytes:
        return self._held


class ResponsesPassthrough(_TypedEventPassthrough):
    """OpenAI Responses API stream; usage arrives in the terminal ``response.*`` event."""

    terminal = _RESPONSES_TERMINAL

    def __init__(self) -> None:
        super().__init__()
        self.meter = ResponsesStreamMeter()

    def error(self, message: str) -> bytes:
        return sse(
            {"type": "error", "code": "upstream_error", "message": message, "param": None}, "error"
        )


class AnthropicPassthrough(_TypedEventPassthrough):
    """Anthropic client, Anthropic upstream."""

    terminal = frozenset({"message_stop"})

    def __init__(self) -> None:
        super().__init__()
        self.meter = AnthropicStreamMeter()

    def error(self, message: str) -> bytes:
        return _anthropic_stream_error(message)


class AnthropicToOpenAI(Relay):
    """OpenAI chat client served by an Anthropic upstream."""

    def __init__(self, model: str, client_wants_usage: bool) -> None:
        self.meter = AnthropicStreamMeter()
        self.translator = MessagesToChatStream(model, client_wants_usage)
        self._pending: list[dict[str, Any]] = []

    def event(self, name: str | None, data: bytes) -> tuple[bytes, bool]:
        obj = orjson.loads(data)
        kind = name or (obj.get("type") if isinstance(obj, dict) else None) or ""
        self.meter.feed(obj)
        chunks = self.translator.feed(kind, obj)
        if kind == "message_stop":
            self.terminal_seen = True
            self._pending = chunks
            return b"", True
        return b"".join(sse(c) for c in chunks), False

    def tail(self) -> bytes:
        return b"".join(sse(c) for c in self._pending) + DONE

    def error(self, message: str) -> bytes:
        return _openai_stream_error(message)


class OpenAIToAnthropic(Relay):
    """Anthropic messages client served by an OpenAI-compatible upstream."""

    def __init__(self, model: str) -> None:
        self.meter = OpenAIStreamMeter()
        self.translator = ChatToMessagesStream(model)

    def event(self, name: str | None, data: bytes) -> tuple[bytes, bool]:
        if data == b"[DONE]":
            self.terminal_seen = True
            return b"", True
        obj = orjson.loads(data)
        self.meter.feed(obj)
        return b"".join(sse(d, e) for e, d in self.translator.feed(obj)), False

    def tail(self) -> bytes:
        return b"".join(sse(d, e) for e, d in self.translator.finish())

    def error(self, message: str) -> bytes:
        return _anthropic_stream_error(message)
