"""Bridge: an OpenAI Responses client (``POST /v1/responses``) served by an Anthropic upstream.

So Codex CLI, which speaks only the Responses API, can use Claude models. The translation
is :mod:`tokenomy.providers.translate_responses_to_messages` (request, unary response) and
:mod:`tokenomy.providers.translate_responses_stream` (stream).
"""

from __future__ import annotations

from typing import Any

import orjson

from tokenomy.config import Model
from tokenomy.errors import UpstreamError
from tokenomy.providers.translate_responses_stream import MessagesToResponsesStream
from tokenomy.providers.translate_responses_to_messages import (
    messages_response_to_responses,
    responses_request_to_messages,
)
from tokenomy.wire.anthropic import MESSAGES
from tokenomy.wire.base import DEFAULT_OUTPUT_CAP, Bridge, Relay, sse
from tokenomy.wire.openai import RESPONSES


class MessagesToResponses(Relay):
    """Anthropic Messages events in, Responses events out."""

    def __init__(self, model: str, request: dict[str, Any]) -> None:
        self.meter = MESSAGES.meter()
        self.translator = MessagesToResponsesStream(model, request=request)
        self._held = b""

    def event(self, name: str | None, data: bytes) -> tuple[bytes, bool]:
        obj = orjson.loads(data)
        kind = name or (obj.get("type") if isinstance(obj, dict) else None) or ""
        self.meter.feed(obj)
        out = b"".join(sse(d, e) for e, d in self.translator.feed(kind, obj))
        if self.translator.finished:  # message_stop: the terminal response.* event
            self.terminal_seen = True
            self._held = out
            return b"", True
        return out, False

    def tail(self) -> bytes:
        return self._held

    def error(self, message: str) -> bytes:
        # Ends the client's stream the way the Responses SDKs expect: ``response.failed``.
        events = self.translator.failed(UpstreamError(message))
        return b"".join(sse(d, e) for e, d in events)


class ResponsesToMessages(Bridge):
    """OpenAI Responses client, Anthropic upstream."""

    __slots__ = ()
    client = RESPONSES
    upstream = MESSAGES

    def request(
        self, body: dict[str, Any], upstream_model: str, model: Model, stream: bool
    ) -> dict[str, Any]:
        return responses_request_to_messages(
            body, upstream_model, model.max_output_tokens or DEFAULT_OUTPUT_CAP
        )

    def response(self, data: dict[str, Any], model: str, body: dict[str, Any]) -> bytes | None:
        return orjson.dumps(messages_response_to_responses(data, model, request=body))

    def relay(self, body: dict[str, Any], model: str) -> Relay:
        return MessagesToResponses(model, body)


BRIDGES = (ResponsesToMessages(),)
