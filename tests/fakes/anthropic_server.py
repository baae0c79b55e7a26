"""A fake Anthropic Messages API: messages (plain and streamed), count_tokens, models.

Checks ``x-api-key`` and ``anthropic-version`` like the real API, reports cache reads
and writes (with the ``cache_creation`` TTL split), streams the real event sequence
(``message_start``, ``content_block_*``, ``ping``, ``message_delta``, ``message_stop``)
and answers errors as ``{"type": "error", "error": {"type", "message"}}``. As a process:
``python -m tests.fakes.serve --provider anthropic --port P [--fast]``.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
from aiohttp import web

from ._base import (
    FakeServer,
    RecordedRequest,
    ResolvedUsage,
    Scenario,
    request_text,
    schema_arguments,
    sse,
    stable_id,
    words_of,
)

__all__ = ["FakeAnthropic"]

_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request (fake)."),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "model: fake"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: (
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate "
        "limit; see the response headers for current usage. Please reduce the prompt "
        "length or the maximum tokens requested, or try again later.",
    ),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}
_STREAM_ERROR = sse(
    "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
)
_THINKING = "Let me think about this request step by step."


class FakeAnthropic(FakeServer):
    """Fake ``https://api.anthropic.com`` on loopback.

    ``base_url`` is the root URL (the ``anthropic`` SDK appends ``/v1/messages``).
    A request with ``thinking`` enabled gets a thinking block first; ``tool-call`` (or a
    forcing ``tool_choice``) gets a ``tool_use`` block for the first/chosen tool.
    """

    provider = "anthropic"
    context_length_message = "prompt is too long: 208310 tokens > 200000 maximum"
    content_policy_message = "Output blocked by content filtering policy"

    def __init__(self, *, models: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.models = models or ["claude-sonnet-4-6", "claude-haiku-4-5-20251001"]
        self._fast: dict[bool, bytes] = {}

    def routes(self) -> list[web.RouteDef]:
        """The Anthropic endpoints served."""
        messages = self._fast_handler if self.fast else self.handler(self._messages)
        return [
            web.post("/v1/messages", messages),
            web.post("/v1/messages/count_tokens", self.handler(self._count_tokens)),
            web.get("/v1/models", self.handler(self._models)),
        ]

    # ------------------------------------------------------------------ auth & errors

    def check_auth(self, request: web.Request) -> web.Response | None:
        """401 without/with a wrong key; 400 without ``anthropic-version``.

        The key may come as ``x-api-key`` or as ``Authorization: Bearer``: the official
        SDK (2.x) sends API keys as a bearer token, older clients use ``x-api-key``.
        """
        auth = request.headers.get("Authorization", "")
        key = request.headers.get("x-api-key") or (auth[7:] if auth.startswith("Bearer ") else "")
        if not key:
            return self._error(401, "authentication_error", "x-api-key header is required")
        if self.api_key is not None and key != self.api_key:
            return self.error_response(401)
        if not request.headers.get("anthropic-version"):
            return self._error(
                400, "invalid_request_error", "anthropic-version: header is required"
            )
        return None

    def stream_error_event(self, message: str) -> bytes:
        """Anthropic's ``event: error`` carrying ``message``."""
        return sse("error", {"type": "error", "error": {"type": "api_error", "message": message}})

    def error_body(self, status: int, message: str | None = None) -> dict[str, Any]:
        """``{"type": "error", "error": {"type", "message"}, "request_id"}``."""
        etype, default = _ERRORS.get(status, ("api_error", f"Error {status}"))
        return {
            "type": "error",
            "error": {"type": etype, "message": message or default},
            "request_id": self._request_id(),
        }

    def error_headers(self) -> dict[str, str]:
        """Real errors carry ``request-id`` too."""
        return {"request-id": self._request_id()}

    def _request_id(self) -> str:
        return stable_id("req_", f"a{len(self.requests)}")

    def _error(self, status: int, etype: str, message: str) -> web.Response:
        body = {
            "type": "error",
            "error": {"type": etype, "message": message},
            "request_id": self._request_id(),
        }
        return web.Response(
            status=status,
            body=orjson.dumps(body),
            content_type="application/json",
            headers=self.error_headers(),
        )

    def _validate(self, rec: RecordedRequest, *, needs_max_tokens: bool) -> web.Response | None:
        body = rec.json
        if not isinstance(body, dict):
            return self._error(
                400,
                "invalid_request_error",
                "There was an error parsing the "
                "body of your request. Please make sure it is valid JSON.",
            )
        required = (
            ("model", "messages", "max_tokens") if needs_max_tokens else ("model", "messages")
        )
        for name in required:
            if name not in body:
                return self._error(400, "invalid_request_error", f"{name}: Field required")
        if not isinstance(body["messages"], list) or not body["messages"]:
            return self._error(
                400, "invalid_request_error", "messages: at least one message is required"
            )
        return None

    # ------------------------------------------------------------------ usage

    @staticmethod
    def _usage(u: ResolvedUsage, thinking_words: int) -> dict[str, Any]:
        out: dict[str, Any] = {
            "input_tokens": u.input_tokens - u.cached_tokens - u.cache_write_tokens,
            "cache_creation_input_tokens": u.cache_write_tokens,
            "cache_read_input_tokens": u.cached_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": u.cache_write_tokens - u.cache_write_1h_tokens,
                "ephemeral_1h_input_tokens": u.cache_write_1h_tokens,
            },
            "output_tokens": u.output_tokens,
            "service_tier": "standard",
        }
        if thinking_words:
            out["output_tokens_details"] = {"thinking_tokens": thinking_words}
        return out

    @staticmethod
    def _prompt_words(body: dict[str, Any]) -> list[str]:
        return request_text(body.get("system")) + request_text(body.get("messages"))

    # ------------------------------------------------------------------ messages

    async def _messages(self, request: web.Request, rec: RecordedRequest) -> web.StreamResponse:
        start = time.perf_counter()
        invalid = self._validate(rec, needs_max_tokens=True)
        if invalid is not None:
            return invalid
        body: dict[str, Any] = rec.json
        message, events = self._reply(body, rec.scenario, len(self.requests))
        headers = {
            "request-id": self._request_id(),
            "anthropic-organization-id": "00000000-0000-4000-8000-000000000000",
            "x-processing-ms": self.elapsed_ms(start),
        }
        if not body.get("stream"):
            return await self.send_json(request, rec, message, headers)
        return await self.stream_events(
            request, rec, events, headers=headers, error_event=_STREAM_ERROR
        )

    def _reply(
        self, body: dict[str, Any], scn: Scenario, n: int
    ) -> tuple[dict[str, Any], list[bytes]]:
        """The reply to ``body``: the message object and the equivalent stream events."""
        model = body["model"]
        seed = f"{n}:{model}"
        prompt_words = self._prompt_words(body)
        thinking_cfg = body.get("thinking")
        thinking = isinstance(thinking_cfg, dict) and thinking_cfg.get("type") in (
            "enabled",
            "adaptive",
        )
        thinking_words = words_of(_THINKING) if thinking else []
        tools = [t for t in body.get("tools") or () if isinstance(t, dict) and "name" in t]
        choice = body.get("tool_choice")
        forced = isinstance(choice, dict) and choice.get("type") in ("any", "tool")
        tool = None
        if tools and (scn.has("tool-call") or forced):
            name = choice.get("name") if isinstance(choice, dict) else None
            tool = next((t for t in tools if t.get("name") == name), tools[0])
        content: list[dict[str, Any]] = []
        if thinking:
            signature = base64.b64encode(stable_id("sig", seed).encode()).decode()
            content.append({"type": "thinking", "thinking": _THINKING, "signature": signature})
        budget = body["max_tokens"] - len(thinking_words)
        if tool is not None:
            tool_input = schema_arguments(tool.get("input_schema"), prompt_words)
            tool_json = orjson.dumps(tool_input).decode()
            content.append(
                {
                    "type": "tool_use",
                    "id": stable_id("toolu_", seed),
                    "name": tool["name"],
                    "input": tool_input,
                }
            )
            reply_words: list[str] = []
            out_words = len(words_of(tool_json)) + 1
            stop_reason = "tool_use"
        else:
            reply_words, cut = self.reply_words(prompt_words, max(budget, 1))
            content.append({"type": "text", "text": " ".join(reply_words)})
            out_words = len(reply_words)
            stop_reason = "max_tokens" if cut else "end_turn"
        usage = self.usage.resolve(len(prompt_words), out_words + len(thinking_words))
        msg_id = stable_id("msg_", seed)
        report = not scn.has("no-usage")
        message: dict[str, Any] = {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
        }
        if report:
            message["usage"] = self._usage(usage, len(thinking_words))

        start_usage = dict(self._usage(usage, 0))
        start_usage["output_tokens"] = 1  # the real API reports a provisional 1 here
        events = [
            sse(
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        **message,
                        "content": [],
                        "stop_reason": None,
                        **({"usage": start_usage} if report else {}),
                    },
                },
            )
        ]

        def block(index: int, start_block: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
            events.append(
                sse(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": start_block},
                )
            )
            if index == 0:
                events.append(sse("ping", {"type": "ping"}))
            events.extend(
                sse(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": d},
                )
                for d in deltas
            )
            events.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))

        for index, item in enumerate(content):
            if item["type"] == "thinking":
                deltas = [
                    {"type": "thinking_delta", "thinking": p}
                    for p in self.join_words(thinking_words)
                ]
                deltas.append({"type": "signature_delta", "signature": item["signature"]})
                block(index, {"type": "thinking", "thinking": "", "signature": ""}, deltas)
            elif item["type"] == "tool_use":
                pieces = [tool_json[i : i + 8] for i in range(0, len(tool_json), 8)]
                deltas = [{"type": "input_json_delta", "partial_json": p} for p in ["", *pieces]]
                block(index, {**item, "input": {}}, deltas)
            else:
                deltas = [{"type": "text_delta", "text": p} for p in self.join_words(reply_words)]
                block(index, {"type": "text", "text": ""}, deltas)
        delta_event: dict[str, Any] = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
        }
        if report:
            full = self._usage(usage, len(thinking_words))
            # message_delta usage is cumulative; the current API repeats every bucket.
            delta_event["usage"] = {
                k: full[k]
                for k in (
                    "input_tokens",
                    "cache_creation_input_tokens",
                    "cache_read_input_tokens",
                    "output_tokens",
                )
            }
        events.append(sse("message_delta", delta_event))
        events.append(sse("message_stop", {"type": "message_stop"}))
        return message, events

    async def _count_tokens(self, request: web.Request, rec: RecordedRequest) -> web.StreamResponse:
        invalid = self._validate(rec, needs_max_tokens=False)
        if invalid is not None:
            return invalid
        n = self.usage.resolve(len(self._prompt_words(rec.json)), 0).input_tokens
        return web.Response(body=orjson.dumps({"input_tokens": n}), content_type="application/json")

    async def _models(self, request: web.Request, rec: RecordedRequest) -> web.StreamResponse:
        data = [
            {"type": "model", "id": m, "display_name": m, "created_at": "2025-09-29T00:00:00Z"}
            for m in self.models
        ]
        body = {
            "data": data,
            "has_more": False,
            "first_id": self.models[0],
            "last_id": self.models[-1],
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    # ------------------------------------------------------------------ fast mode

    fast_path = "/v1/messages"

    def fast_replies(self) -> tuple[bytes, bytes, bytes]:
        """The fast path's pre-serialised bodies: unary, stream, stream (usage is in it)."""
        if not self._fast:
            canned = {
                "model": self.models[0],
                "max_tokens": 1024,
                "messages": [{"role": "user", "content": "Hello there fake"}],
            }
            message, events = self._reply(canned, Scenario(), 0)
            self._fast = {False: orjson.dumps(message), True: b"".join(events)}
        return self._fast[False], self._fast[True], self._fast[True]

    async def _fast_handler(self, request: web.Request) -> web.StreamResponse:
        """Benchmark path: pre-serialised bodies, a byte search instead of a JSON parse."""
        body = await request.read()
        if b'"fake-' in body:  # a scenario was asked for: take the full path
            return await self.dispatch(request, self._messages, body)
        self.fast_replies()
        if b'"stream":true' not in body and b'"stream": true' not in body:
            return web.Response(body=self._fast[False], content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await resp.prepare(request)
        await resp.write(self._fast[True])
        await resp.write_eof()
        return resp
