"""The Anthropic wire format: messages and messages/count_tokens.

Also the upstream side of Anthropic providers, and the passthrough bridges (Anthropic
client, Anthropic upstream).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from tokenomy.config import Model, Provider
from tokenomy.errors import InvalidRequest, RequestError
from tokenomy.events import Usage, UsageEvent
from tokenomy.metering import tokenizer
from tokenomy.metering.stream import AnthropicStreamMeter, StreamMeter
from tokenomy.metering.usage import anthropic_usage
from tokenomy.wire.base import (
    Endpoint,
    Passthrough,
    Relay,
    TypedEventPassthrough,
    Wire,
    check_messages,
    recorded_text,
    sse,
)
from tokenomy.wire.steps import Fragment, messages_fragments
from tokenomy.wire.texts import Piece, anthropic_texts

DEFAULT_VERSION = "2023-06-01"
# Client headers forwarded to an Anthropic upstream as they are.
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")
MESSAGES_TERMINAL = frozenset({"message_stop"})


class AnthropicWire(Wire):
    """Anthropic's wire format; its providers' ``base_url`` excludes ``/v1``, as in the SDK."""

    __slots__ = ()
    name = "anthropic"
    title = "Anthropic"
    forwarded_headers = FORWARDED_HEADERS
    sole_vendor = "anthropic"  # Anthropic's wire format is only spoken by Anthropic

    def headers(self, provider: Provider, client_headers: Mapping[str, str]) -> dict[str, str]:
        base = self._headers.get(provider.name)
        if base is None:  # built once per provider, like the OpenAI wire's
            base = {
                "Content-Type": "application/json",
                "anthropic-version": DEFAULT_VERSION,
                **provider.headers,
            }
            key = provider.api_key()
            if key:
                base["x-api-key"] = key
            self._headers[provider.name] = base
        headers = dict(base)
        if client_headers is not None:
            for name in self.forwarded_headers:
                value = client_headers.get(name)
                if value:
                    headers[name] = value
        return headers

    def record_caller(self, body: dict[str, Any], event: UsageEvent) -> None:
        meta = body.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("user_id"), str):
            event.end_user = recorded_text(meta["user_id"], "metadata.user_id")

    def error_body(self, err: RequestError) -> dict[str, Any]:
        return {"type": "error", "error": {"type": err.anthropic_type, "message": err.message}}

    def stream_error(self, message: str) -> bytes:
        """Anthropic's in-stream ``error`` event."""
        return sse({"type": "error", "error": {"type": "api_error", "message": message}}, "error")

    def models(self, names: list[str]) -> dict[str, Any]:
        return {
            "data": [
                {
                    "type": "model",
                    "id": n,
                    "display_name": n,
                    "created_at": "1970-01-01T00:00:00Z",
                }
                for n in names
            ],
            "has_more": False,
            "first_id": names[0] if names else None,
            "last_id": names[-1] if names else None,
        }


ANTHROPIC = AnthropicWire()


class Messages(Endpoint):
    __slots__ = ()
    name = "messages"
    path = "/v1/messages"
    upstream_path = "/v1/messages"
    wire = ANTHROPIC
    cap_fields = ("max_tokens",)

    def check(self, body: dict[str, Any]) -> None:
        check_messages(body)
        mt = body.get("max_tokens")
        if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
            raise InvalidRequest(
                "'max_tokens' is required and must be a positive integer.", param="max_tokens"
            )

    def estimate_input(self, body: dict[str, Any]) -> int:
        return tokenizer.estimate_messages_input(body)

    def texts(self, body: dict[str, Any]) -> Iterator[Piece]:
        return anthropic_texts(body)

    def step_fragments(self, body: dict[str, Any], start: int) -> tuple[int, list[Fragment]]:
        return messages_fragments(body, start)

    def usage(self, data: dict[str, Any]) -> Usage | None:
        return anthropic_usage(data.get("usage"))

    def response_text(self, data: dict[str, Any]) -> str:
        parts: list[str] = []
        for block in data.get("content") or []:
            if isinstance(block, dict):
                if isinstance(block.get("text"), str):
                    parts.append(block["text"])
                elif block.get("type") == "tool_use":
                    parts.append(str(block.get("input")))
        return "".join(parts)

    def meter(self) -> StreamMeter:
        return AnthropicStreamMeter()


class CountTokens(Endpoint):
    """``POST /v1/messages/count_tokens``: counts a Messages request's input; not billed."""

    __slots__ = ()
    name = "messages.count_tokens"
    path = "/v1/messages/count_tokens"
    upstream_path = "/v1/messages/count_tokens"
    wire = ANTHROPIC
    billed = False

    def check(self, body: dict[str, Any]) -> None:
        if body.get("stream"):
            raise InvalidRequest("count_tokens cannot be streamed.", param="stream")
        check_messages(body)

    def output_cap(self, body: dict[str, Any]) -> int | None:
        return 0

    def set_output_cap(self, body: dict[str, Any], model: Model, upstream_url: str) -> int:
        return 0

    def estimate_input(self, body: dict[str, Any]) -> int:
        return tokenizer.estimate_messages_input(body)

    def texts(self, body: dict[str, Any]) -> Iterator[Piece]:
        return anthropic_texts(body)

    def usage(self, data: dict[str, Any]) -> Usage | None:
        return Usage()  # a count is not a use: nothing to bill

    def response_text(self, data: dict[str, Any]) -> str:
        return ""


MESSAGES = Messages()
COUNT_TOKENS = CountTokens()


class MessagesPassthrough(Passthrough):
    """Anthropic client, Anthropic upstream."""

    __slots__ = ()
    client = upstream = MESSAGES

    def relay(self, body: dict[str, Any], model: str) -> Relay:
        return TypedEventPassthrough(MESSAGES, MESSAGES_TERMINAL)


ENDPOINTS = (MESSAGES, COUNT_TOKENS)
BRIDGES = (MessagesPassthrough(),)
