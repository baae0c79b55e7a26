"""Bridges between OpenAI Chat Completions and Anthropic Messages, both directions.

The translation itself is :mod:`tokenomy.providers.translate` (pure functions on parsed
JSON); these bridges choose it and run its stream leg as a relay.
"""

from __future__ import annotations

from typing import Any

import orjson

from tokenomy.config import Model
from tokenomy.providers import translate
from tokenomy.wire.anthropic import ANTHROPIC, MESSAGES
from tokenomy.wire.base import DEFAULT_OUTPUT_CAP, Bridge, Relay, sse
from tokenomy.wire.openai import CHAT, DONE, OPENAI, wants_usage


class AnthropicToOpenAI(Relay):
    """OpenAI chat client served by an Anthropic upstream."""

    def __init__(self, model: str, client_wants_usage: bool) -> None:
        self.meter = MESSAGES.meter()
        self.translator = translate.MessagesToChatStream(model, client_wants_usage)
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
        return OPENAI.stream_error(message)


class OpenAIToAnthropic(Relay):
    """Anthropic messages client served by an OpenAI-compatible upstream."""

    def __init__(self, model: str) -> None:
        self.meter = CHAT.meter()
        self.translator = translate.ChatToMessagesStream(model)

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
        return ANTHROPIC.stream_error(message)


class ChatToMessages(Bridge):
    """OpenAI chat client, Anthropic upstream."""

    __slots__ = ()
    client = CHAT
    upstream = MESSAGES

    def request(
        self, body: dict[str, Any], upstream_model: str, model: Model, stream: bool
    ) -> dict[str, Any]:
        return translate.chat_request_to_messages(
            body, upstream_model, model.max_output_tokens or DEFAULT_OUTPUT_CAP
        )

    def response(self, data: dict[str, Any], model: str, body: dict[str, Any]) -> bytes | None:
        return orjson.dumps(translate.messages_response_to_chat(data, model))

    def relay(self, body: dict[str, Any], model: str) -> Relay:
        return AnthropicToOpenAI(model, wants_usage(body))


class MessagesToChat(Bridge):
    """Anthropic messages client, OpenAI-compatible upstream."""

    __slots__ = ()
    client = MESSAGES
    upstream = CHAT

    def request(
        self, body: dict[str, Any], upstream_model: str, model: Model, stream: bool
    ) -> dict[str, Any]:
        upstream = translate.messages_request_to_chat(body, upstream_model)
        CHAT.prepare(upstream, upstream_model, stream)
        return upstream

    def response(self, data: dict[str, Any], model: str, body: dict[str, Any]) -> bytes | None:
        return orjson.dumps(translate.chat_response_to_messages(data, model))

    def relay(self, body: dict[str, Any], model: str) -> Relay:
        return OpenAIToAnthropic(model)


BRIDGES = (ChatToMessages(), MessagesToChat())
