"""The OpenAI wire format: chat.completions, completions, embeddings and responses.

Also the upstream side of OpenAI-compatible providers (OpenAI, DeepSeek, Qwen, vLLM,
llama.cpp, Ollama...), and the passthrough bridges (OpenAI client, OpenAI upstream).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from tokenomy.config import Model, Provider
from tokenomy.errors import InvalidRequest, RequestError
from tokenomy.events import Usage, UsageEvent
from tokenomy.metering import tokenizer
from tokenomy.metering.stream import OpenAIStreamMeter, ResponsesStreamMeter, StreamMeter
from tokenomy.metering.usage import openai_usage
from tokenomy.redact import scrub_json
from tokenomy.wire.base import (
    Endpoint,
    Passthrough,
    Relay,
    TypedEventPassthrough,
    Wire,
    check_messages,
    check_metadata,
    recorded_text,
    sse,
)
from tokenomy.wire.steps import Fragment, chat_fragments, responses_fragments
from tokenomy.wire.texts import Piece, openai_texts, prompt_texts

DONE = b"data: [DONE]\n\n"
RESPONSES_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


class OpenAIWire(Wire):
    """OpenAI's wire format; its providers' ``base_url`` includes ``/v1``, as in the SDK."""

    __slots__ = ()
    name = "openai"
    title = "OpenAI"

    def headers(self, provider: Provider, client_headers: Mapping[str, str]) -> dict[str, str]:
        # Built once per provider: the upstream key is read from its env var at first use.
        headers = self._headers.get(provider.name)
        if headers is None:
            headers = {"Content-Type": "application/json", **provider.headers}
            key = provider.api_key()
            if key:
                headers["Authorization"] = f"Bearer {key}"
            self._headers[provider.name] = headers
        return headers

    def record_caller(self, body: dict[str, Any], event: UsageEvent) -> None:
        user = body.get("user")
        if isinstance(user, str):
            event.end_user = recorded_text(user, "user")
        meta = body.get("metadata")
        if isinstance(meta, dict) and meta:
            event.metadata = check_metadata(meta)

    def error_body(self, err: RequestError) -> dict[str, Any]:
        return {
            "error": {
                "message": err.message,
                "type": err.openai_type,
                "param": err.param,
                "code": err.code,
            }
        }

    def stream_error(self, message: str) -> bytes:
        """An error chunk the OpenAI SDKs raise on (``data: {"error": ...}``)."""
        error = {"message": message, "type": "api_error", "param": None, "code": "upstream_error"}
        return sse({"error": error})

    def models(self, names: list[str]) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": n, "object": "model", "created": 0, "owned_by": "tokenomy"} for n in names
            ],
        }


OPENAI = OpenAIWire()


def _choice_text(data: dict[str, Any]) -> str:
    parts: list[str] = []
    for choice in data.get("choices") or []:
        if not isinstance(choice, dict):
            continue
        if isinstance(choice.get("text"), str):
            parts.append(choice["text"])
        msg = choice.get("message")
        if isinstance(msg, dict):
            if isinstance(msg.get("content"), str):
                parts.append(msg["content"])
            for tc in msg.get("tool_calls") or []:
                fn = tc.get("function") if isinstance(tc, dict) else None
                if isinstance(fn, dict):
                    parts.append(str(fn.get("name", "")) + str(fn.get("arguments", "")))
    return "".join(parts)


class _OpenAIEndpoint(Endpoint):
    __slots__ = ()
    wire = OPENAI

    def usage(self, data: dict[str, Any]) -> Usage | None:
        return openai_usage(data.get("usage"))

    def response_text(self, data: dict[str, Any]) -> str:
        return _choice_text(data)

    def meter(self) -> StreamMeter:
        return OpenAIStreamMeter()

    def texts(self, body: dict[str, Any]) -> Iterator[Piece]:
        return openai_texts(body)


class _StreamUsage(_OpenAIEndpoint):
    """An endpoint whose streams report usage only when ``stream_options`` asks for it."""

    __slots__ = ()

    def prepare(self, body: dict[str, Any], upstream_model: str, stream: bool) -> None:
        """The deployment's model id, and stream usage always requested."""
        body["model"] = upstream_model
        if stream:
            options = body.get("stream_options")
            body["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }

    def choices(self, body: dict[str, Any]) -> int:
        n = body.get("n")
        return n if isinstance(n, int) and n > 0 else 1


class Chat(_StreamUsage):
    __slots__ = ()
    name = "chat.completions"
    path = "/v1/chat/completions"
    upstream_path = "/chat/completions"
    cap_fields = ("max_completion_tokens", "max_tokens")

    def check(self, body: dict[str, Any]) -> None:
        check_messages(body)

    def cap_field(self, upstream_url: str) -> str:
        # OpenAI's reasoning models refuse max_tokens.
        return "max_completion_tokens" if "api.openai.com" in upstream_url else "max_tokens"

    def estimate_input(self, body: dict[str, Any]) -> int:
        return tokenizer.estimate_chat_input(body)

    def step_fragments(self, body: dict[str, Any], start: int) -> tuple[int, list[Fragment]]:
        return chat_fragments(body, start)


class Completions(_StreamUsage):
    __slots__ = ()
    name = "completions"
    path = "/v1/completions"
    upstream_path = "/completions"
    cap_fields = ("max_tokens",)

    def check(self, body: dict[str, Any]) -> None:
        if "prompt" not in body:
            raise InvalidRequest("'prompt' is required.", param="prompt")

    def estimate_input(self, body: dict[str, Any]) -> int:
        return tokenizer.estimate_completions_input(body)

    def texts(self, body: dict[str, Any]) -> Iterator[Piece]:
        return prompt_texts(body, "prompt")


class Embeddings(_OpenAIEndpoint):
    __slots__ = ()
    name = "embeddings"
    path = "/v1/embeddings"
    upstream_path = "/embeddings"

    def check(self, body: dict[str, Any]) -> None:
        if body.get("stream"):
            raise InvalidRequest("Embeddings cannot be streamed.", param="stream")
        if "input" not in body:
            raise InvalidRequest("'input' is required.", param="input")

    def output_cap(self, body: dict[str, Any]) -> int | None:
        return 0

    def set_output_cap(self, body: dict[str, Any], model: Model, upstream_url: str) -> int:
        return 0

    def estimate_input(self, body: dict[str, Any]) -> int:
        return tokenizer.estimate_embeddings_input(body)

    def texts(self, body: dict[str, Any]) -> Iterator[Piece]:
        return prompt_texts(body, "input")


class Responses(_OpenAIEndpoint):
    __slots__ = ()
    name = "responses"
    path = "/v1/responses"
    upstream_path = "/responses"
    cap_fields = ("max_output_tokens",)

    def check(self, body: dict[str, Any]) -> None:
        if "input" not in body and "previous_response_id" not in body:
            raise InvalidRequest("'input' is required.", param="input")

    def estimate_input(self, body: dict[str, Any]) -> int:
        return tokenizer.estimate_responses_input(body)

    def step_fragments(self, body: dict[str, Any], start: int) -> tuple[int, list[Fragment]]:
        return responses_fragments(body, start)

    def response_text(self, data: dict[str, Any]) -> str:
        parts: list[str] = []
        for item in data.get("output") or []:
            if not isinstance(item, dict):
                continue
            for c in item.get("content") or []:
                if isinstance(c, dict) and isinstance(c.get("text"), str):
                    parts.append(c["text"])
            if isinstance(item.get("arguments"), str):
                parts.append(item["arguments"])
        return "".join(parts)

    def meter(self) -> StreamMeter:
        return ResponsesStreamMeter()

    def stream_error(self, message: str) -> bytes:
        return sse(
            {"type": "error", "code": "upstream_error", "message": message, "param": None}, "error"
        )


CHAT = Chat()
COMPLETIONS = Completions()
EMBEDDINGS = Embeddings()
RESPONSES = Responses()


def wants_usage(body: dict[str, Any]) -> bool:
    """Whether an OpenAI client asked for the stream's usage chunk."""
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


# -- relays ----------------------------------------------------------------------------
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
        return OPENAI.stream_error(message)


# -- bridges ---------------------------------------------------------------------------
class _ChunkPassthrough(Passthrough):
    """Chat and completions streams: ``data:`` chunks ending with ``[DONE]``."""

    __slots__ = ()

    def relay(self, body: dict[str, Any], model: str) -> Relay:
        return OpenAIPassthrough(wants_usage(body))


class ChatPassthrough(_ChunkPassthrough):
    __slots__ = ()
    client = upstream = CHAT


class CompletionsPassthrough(_ChunkPassthrough):
    __slots__ = ()
    client = upstream = COMPLETIONS


class EmbeddingsPassthrough(Passthrough):
    __slots__ = ()
    client = upstream = EMBEDDINGS


class ResponsesPassthrough(Passthrough):
    __slots__ = ()
    client = upstream = RESPONSES

    def relay(self, body: dict[str, Any], model: str) -> Relay:
        # Usage arrives in the terminal ``response.*`` event.
        return TypedEventPassthrough(RESPONSES, RESPONSES_TERMINAL)


ENDPOINTS = (CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES)
BRIDGES = (
    ChatPassthrough(),
    CompletionsPassthrough(),
    EmbeddingsPassthrough(),
    ResponsesPassthrough(),
)
