"""A fake OpenAI API: chat completions, completions, embeddings, responses, models.

Speaks the real wire format (bodies, SSE streams, error JSON, auth) closely enough that
the official ``openai`` SDK parses everything; see ``test_fakes.py``. As a process (bench/
runs it in fast mode): ``python -m tests.fakes.serve --port P [--fast]``.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import time
from typing import Any

import orjson
from aiohttp import web

from ._base import (
    FakeServer,
    RecordedRequest,
    ResolvedUsage,
    request_text,
    schema_arguments,
    sse,
    stable_id,
    words_of,
)

__all__ = ["FakeOpenAI"]

# (error.type, error.code, message) as the real API sends them per status.
_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request (fake)."),
    401: (
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided: sk-fake***. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
    ),
    403: (
        "invalid_request_error",
        "unsupported_country_region_territory",
        "Country, region, or territory not supported",
    ),
    404: (
        "invalid_request_error",
        "model_not_found",
        "The model `fake` does not exist or you do not have access to it.",
    ),
    409: ("invalid_request_error", None, "Conflict (fake)."),
    422: ("invalid_request_error", None, "Unprocessable entity (fake)."),
    429: (
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for fake in organization org-fake on requests per min (RPM): "
        "Limit 3, Used 3, Requested 1. Please try again in 20s.",
    ),
    500: (
        "server_error",
        None,
        "The server had an error while processing your request. Sorry about that!",
    ),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
    529: ("server_error", None, "The server is overloaded (fake)."),
}
_STREAM_ERROR = sse(
    None,
    {
        "error": {
            "message": "The server had an error while processing your request. Sorry about that!",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    },
)
_DONE = b"data: [DONE]\n\n"
_FINGERPRINT = "fp_fake0001"


class FakeOpenAI(FakeServer):
    """Fake ``https://api.openai.com`` on loopback.

    ``base_url`` ends in ``/v1`` like the SDK's default. Accepts any non-empty bearer key
    unless ``api_key`` is set. Usage is reported when the request asks for it
    (``stream_options.include_usage`` for streams, always for non-stream bodies) unless
    the ``no-usage`` scenario is selected; ``usage-with-choices`` moves stream usage into
    the finish_reason chunk and sends it whether asked or not (llama.cpp style).
    """

    provider = "openai"

    def __init__(self, *, models: list[str] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.models = models or ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"]
        self._fast_chat: bytes | None = None
        self._fast_stream: bytes | None = None
        self._fast_stream_usage: bytes | None = None

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1`` (what ``openai.OpenAI(base_url=...)`` wants)."""
        return self.url + "/v1"

    def routes(self) -> list[web.RouteDef]:
        """The OpenAI endpoints served."""
        chat = self._fast_chat_handler if self.fast else self.handler(self._chat)
        return [
            web.post("/v1/chat/completions", chat),
            web.post("/v1/completions", self.handler(self._completions)),
            web.post("/v1/embeddings", self.handler(self._embeddings)),
            web.post("/v1/responses", self.handler(self._responses)),
            web.get("/v1/models", self.handler(self._models)),
            web.get("/v1/models/{model}", self.handler(self._model)),
        ]

    # ------------------------------------------------------------------ auth & errors

    def check_auth(self, request: web.Request) -> web.Response | None:
        """401 like the real API for a missing or wrong bearer key."""
        auth = request.headers.get("Authorization", "")
        key = auth[7:] if auth.startswith("Bearer ") else ""
        if not key:
            return self._error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                code=None,
            )
        if self.api_key is not None and key != self.api_key:
            return self.error_response(401)
        return None

    def error_body(self, status: int, message: str | None = None) -> dict[str, Any]:
        """``{"error": {"message", "type", "param", "code"}}``."""
        etype, code, default = _ERRORS.get(status, ("server_error", None, f"Error {status}."))
        return {
            "error": {"message": message or default, "type": etype, "param": None, "code": code}
        }

    def stream_error_event(self, message: str) -> bytes:
        """``data: {"error": {...}}`` as the real API sends mid-stream."""
        error = {"message": message, "type": "server_error", "param": None, "code": None}
        return sse(None, {"error": error})

    def error_headers(self) -> dict[str, str]:
        """Real errors carry ``x-request-id`` too."""
        return {"x-request-id": stable_id("req_", str(len(self.requests)))}

    def _error(
        self, status: int, message: str, *, param: str | None = None, code: str | None = None
    ) -> web.Response:
        etype = _ERRORS.get(status, ("invalid_request_error", None, ""))[0]
        body = {"error": {"message": message, "type": etype, "param": param, "code": code}}
        return web.Response(
            status=status,
            body=orjson.dumps(body),
            content_type="application/json",
            headers=self.error_headers(),
        )

    def _validate(self, rec: RecordedRequest, required: str) -> web.Response | None:
        body = rec.json
        if not isinstance(body, dict):
            return self._error(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                "payload, but what was sent was not valid JSON.",
            )
        if not body.get("model"):
            return self._error(400, "you must provide a model parameter", code=None)
        if required not in body:
            return self._error(
                400,
                f"Missing required parameter: '{required}'.",
                param=required,
                code="missing_required_parameter",
            )
        return None

    def _headers(self, rec: RecordedRequest, start: float) -> dict[str, str]:
        return {
            "x-request-id": stable_id("req_", str(len(self.requests))),
            "openai-processing-ms": self.elapsed_ms(start),
            "openai-version": "2020-10-01",
        }

    # ------------------------------------------------------------------ usage objects

    @staticmethod
    def _chat_usage(u: ResolvedUsage) -> dict[str, Any]:
        prompt_details: dict[str, Any] = {"cached_tokens": u.cached_tokens, "audio_tokens": 0}
        if u.cache_write_tokens:
            prompt_details["cache_write_tokens"] = u.cache_write_tokens
        return {
            "prompt_tokens": u.input_tokens,
            "completion_tokens": u.output_tokens,
            "total_tokens": u.input_tokens + u.output_tokens,
            "prompt_tokens_details": prompt_details,
            "completion_tokens_details": {
                "reasoning_tokens": u.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    @staticmethod
    def _responses_usage(u: ResolvedUsage) -> dict[str, Any]:
        return {
            "input_tokens": u.input_tokens,
            "input_tokens_details": {
                "cached_tokens": u.cached_tokens,
                "cache_write_tokens": u.cache_write_tokens,
            },
            "output_tokens": u.output_tokens,
            "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
            "total_tokens": u.input_tokens + u.output_tokens,
        }

    # ------------------------------------------------------------------ tool calls

    @staticmethod
    def _chosen_tool(body: dict[str, Any], scenario_asks: bool) -> dict[str, Any] | None:
        """The function definition to call, or ``None`` for a text reply."""
        tools = [t for t in body.get("tools") or () if isinstance(t, dict)]
        defs: list[dict[str, Any]] = [
            t.get("function", t) for t in tools if t.get("type", "function") == "function"
        ]
        defs += [f for f in body.get("functions") or () if isinstance(f, dict)]
        if not defs:
            return None
        choice = body.get("tool_choice")
        if isinstance(choice, dict):
            wanted = choice.get("function")
            fn: dict[str, Any] = wanted if isinstance(wanted, dict) else choice
            name = fn.get("name")
            return next((d for d in defs if d.get("name") == name), defs[0])
        if scenario_asks or choice == "required":
            return defs[0]
        return None

    @staticmethod
    def _arguments(fn: dict[str, Any], prompt_words: list[str]) -> str:
        """Deterministic JSON arguments for the function's parameter schema."""
        return orjson.dumps(schema_arguments(fn.get("parameters"), prompt_words)).decode()

    # ------------------------------------------------------------------ chat

    async def _chat(self, request: web.Request, rec: RecordedRequest) -> web.StreamResponse:
        start = time.perf_counter()
        invalid = self._validate(rec, "messages")
        if invalid is not None:
            return invalid
        body: dict[str, Any] = rec.json
        scn = rec.scenario
        model = body["model"]
        prompt_words = request_text(body.get("messages"))
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        tool = self._chosen_tool(body, scn.has("tool-call"))
        seed = f"{len(self.requests)}:{model}"
        cid = stable_id("chatcmpl-", seed)
        if tool is not None:
            args = self._arguments(tool, prompt_words)
            call_id = stable_id("call_", seed)
            pieces: list[str] = []
            out_words = len(words_of(args)) + 1
            finish = "tool_calls"
        else:
            words, cut = self.reply_words(prompt_words, limit)
            pieces = self.join_words(words)
            out_words = len(words)
            finish = "length" if cut else "stop"
        usage = self.usage.resolve(len(prompt_words), out_words)
        headers = self._headers(rec, start)
        base = {"id": cid, "object": "chat.completion", "created": self.now(), "model": model}

        if not body.get("stream"):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": "".join(pieces) if tool is None else None,
                "refusal": None,
                "annotations": [],
            }
            if tool is not None:
                message["tool_calls"] = [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": tool.get("name"), "arguments": args},
                    }
                ]
            out = {
                **base,
                "choices": [
                    {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
                ],
                "usage": self._chat_usage(usage),
                "service_tier": "default",
                "system_fingerprint": _FINGERPRINT,
            }
            if scn.has("no-usage"):
                del out["usage"]
            return await self.send_json(request, rec, out, headers)

        opts = body.get("stream_options")
        include = isinstance(opts, dict) and bool(opts.get("include_usage"))
        with_choices = scn.has("usage-with-choices")
        send_usage = (include or with_choices) and not scn.has("no-usage")
        head = {
            **base,
            "object": "chat.completion.chunk",
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }
        extra: dict[str, Any] = {"usage": None} if include and not with_choices else {}

        def chunk(delta: dict[str, Any], reason: str | None = None) -> bytes:
            c = {
                **head,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": reason}
                ],
                **extra,
            }
            return sse(None, c)

        events: list[bytes] = []
        if tool is None:
            events.append(chunk({"role": "assistant", "content": "", "refusal": None}))
            events.extend(chunk({"content": p}) for p in pieces)
        else:
            events.append(
                chunk(
                    {
                        "role": "assistant",
                        "content": None,
                        "tool_calls": [
                            {
                                "index": 0,
                                "id": call_id,
                                "type": "function",
                                "function": {"name": tool.get("name"), "arguments": ""},
                            }
                        ],
                        "refusal": None,
                    }
                )
            )
            for i in range(0, len(args), 8):  # arguments arrive in small fragments
                events.append(
                    chunk(
                        {"tool_calls": [{"index": 0, "function": {"arguments": args[i : i + 8]}}]}
                    )
                )
        if with_choices and send_usage:
            last = {
                **head,
                "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}],
                "usage": self._chat_usage(usage),
            }
            events.append(sse(None, last))
        else:
            events.append(chunk({}, finish))
            if send_usage:
                events.append(sse(None, {**head, "choices": [], "usage": self._chat_usage(usage)}))
        events.append(_DONE)
        return await self.stream_events(
            request, rec, events, headers=headers, error_event=_STREAM_ERROR
        )

    # ------------------------------------------------------------------ completions

    async def _completions(self, request: web.Request, rec: RecordedRequest) -> web.StreamResponse:
        start = time.perf_counter()
        invalid = self._validate(rec, "prompt")
        if invalid is not None:
            return invalid
        body: dict[str, Any] = rec.json
        scn = rec.scenario
        prompt = body.get("prompt")
        prompt_words = request_text(prompt)
        n_prompt = len(prompt_words) or _token_ids(prompt)
        words, cut = self.reply_words(prompt_words, body.get("max_tokens", 16))
        pieces = self.join_words(words)
        usage = self.usage.resolve(n_prompt, len(words))
        finish = "length" if cut else "stop"
        head = {
            "id": stable_id("cmpl-", f"{len(self.requests)}"),
            "object": "text_completion",
            "created": self.now(),
            "model": body["model"],
            "system_fingerprint": _FINGERPRINT,
        }
        headers = self._headers(rec, start)
        u = {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
        }
        if not body.get("stream"):
            out = {
                **head,
                "choices": [
                    {"text": "".join(pieces), "index": 0, "logprobs": None, "finish_reason": finish}
                ],
                "usage": u,
            }
            if scn.has("no-usage"):
                del out["usage"]
            return await self.send_json(request, rec, out, headers)
        opts = body.get("stream_options")
        include = isinstance(opts, dict) and bool(opts.get("include_usage"))
        events = [
            sse(
                None,
                {
                    **head,
                    "choices": [{"text": p, "index": 0, "logprobs": None, "finish_reason": None}],
                },
            )
            for p in pieces
        ]
        events.append(
            sse(
                None,
                {
                    **head,
                    "choices": [
                        {"text": "", "index": 0, "logprobs": None, "finish_reason": finish}
                    ],
                },
            )
        )
        if include and not scn.has("no-usage"):
            events.append(sse(None, {**head, "choices": [], "usage": u}))
        events.append(_DONE)
        return await self.stream_events(
            request, rec, events, headers=headers, error_event=_STREAM_ERROR
        )

    # ------------------------------------------------------------------ embeddings

    async def _embeddings(self, request: web.Request, rec: RecordedRequest) -> web.StreamResponse:
        start = time.perf_counter()
        invalid = self._validate(rec, "input")
        if invalid is not None:
            return invalid
        body: dict[str, Any] = rec.json
        raw_input = body["input"]
        if isinstance(raw_input, str) or (
            isinstance(raw_input, list) and raw_input and isinstance(raw_input[0], int)
        ):
            inputs: list[Any] = [raw_input]
        else:
            inputs = list(raw_input) if isinstance(raw_input, list) else [raw_input]
        dims = body.get("dimensions") or 8
        b64 = body.get("encoding_format") == "base64"
        data = []
        n_tokens = 0
        for i, item in enumerate(inputs):
            n_tokens += len(words_of(item)) if isinstance(item, str) else _token_ids(item)
            vec = embedding_vector(orjson.dumps(item), dims)
            emb: Any = base64.b64encode(struct.pack(f"<{dims}f", *vec)).decode() if b64 else vec
            data.append({"object": "embedding", "index": i, "embedding": emb})
        usage = self.usage.resolve(n_tokens, 0)
        out = {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens},
        }
        if rec.scenario.has("no-usage"):
            del out["usage"]
        return await self.send_json(request, rec, out, self._headers(rec, start))

    # ------------------------------------------------------------------ responses

    async def _responses(self, request: web.Request, rec: RecordedRequest) -> web.StreamResponse:
        start = time.perf_counter()
        invalid = self._validate(rec, "input")
        if invalid is not None:
            return invalid
        body: dict[str, Any] = rec.json
        scn = rec.scenario
        model = body["model"]
        prompt_words = request_text(body.get("instructions")) + request_text(body.get("input"))
        seed = f"{len(self.requests)}:{model}"
        rid = stable_id("resp_", seed, 32)
        tools = [t for t in body.get("tools") or () if isinstance(t, dict)]
        fn_tools = [t for t in tools if t.get("type") == "function"]
        choice = body.get("tool_choice")
        tool = None
        if fn_tools and (scn.has("tool-call") or choice == "required" or isinstance(choice, dict)):
            name = choice.get("name") if isinstance(choice, dict) else None
            tool = next((t for t in fn_tools if t.get("name") == name), fn_tools[0])
        limit = body.get("max_output_tokens")
        words, cut = self.reply_words(prompt_words, limit)
        text = "".join(self.join_words(words))
        if tool is not None:
            args = self._arguments(tool, prompt_words)
            usage = self.usage.resolve(len(prompt_words), len(words_of(args)) + 1)
        else:
            usage = self.usage.resolve(len(prompt_words), len(words))
        status = "incomplete" if cut and tool is None else "completed"
        msg_id = stable_id("msg_", seed, 32)
        output: list[dict[str, Any]] = []
        if usage.reasoning_tokens:
            output.append({"id": stable_id("rs_", seed, 32), "type": "reasoning", "summary": []})
        if tool is not None:
            item: dict[str, Any] = {
                "id": stable_id("fc_", seed, 32),
                "type": "function_call",
                "status": "completed",
                "arguments": args,
                "call_id": stable_id("call_", seed),
                "name": tool["name"],
            }
        else:
            item = {
                "id": msg_id,
                "type": "message",
                "status": status,
                "role": "assistant",
                "content": [
                    {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
                ],
            }
        output.append(item)

        def response(state: str, out: list[dict[str, Any]], with_usage: bool) -> dict[str, Any]:
            r: dict[str, Any] = {
                "id": rid,
                "object": "response",
                "created_at": self.now(),
                "status": state,
                "background": False,
                "error": None,
                "incomplete_details": {"reason": "max_output_tokens"}
                if state == "incomplete"
                else None,
                "instructions": body.get("instructions"),
                "max_output_tokens": limit,
                "max_tool_calls": None,
                "model": model,
                "output": out,
                "parallel_tool_calls": True,
                "previous_response_id": None,
                "reasoning": {"effort": None, "summary": None},
                "service_tier": "default",
                "store": body.get("store", True),
                "temperature": 1.0,
                "text": {"format": {"type": "text"}, "verbosity": "medium"},
                "tool_choice": choice if choice is not None else "auto",
                "tools": tools,
                "top_p": 1.0,
                "truncation": "disabled",
                "usage": self._responses_usage(usage) if with_usage else None,
                "user": None,
                "metadata": body.get("metadata") or {},
            }
            return r

        headers = self._headers(rec, start)
        report = not scn.has("no-usage")
        if not body.get("stream"):
            return await self.send_json(request, rec, response(status, output, report), headers)

        seq = 0
        events: list[bytes] = []

        def emit(kind: str, payload: dict[str, Any]) -> None:
            nonlocal seq
            events.append(sse(kind, {"type": kind, "sequence_number": seq, **payload}))
            seq += 1

        emit("response.created", {"response": response("in_progress", [], False)})
        emit("response.in_progress", {"response": response("in_progress", [], False)})
        for idx, done_item in enumerate(output):
            if done_item["type"] == "reasoning":
                emit("response.output_item.added", {"output_index": idx, "item": done_item})
                emit("response.output_item.done", {"output_index": idx, "item": done_item})
            elif done_item["type"] == "function_call":
                emit(
                    "response.output_item.added",
                    {
                        "output_index": idx,
                        "item": {**done_item, "status": "in_progress", "arguments": ""},
                    },
                )
                emit(
                    "response.function_call_arguments.delta",
                    {
                        "item_id": done_item["id"],
                        "output_index": idx,
                        "delta": done_item["arguments"],
                    },
                )
                emit(
                    "response.function_call_arguments.done",
                    {
                        "item_id": done_item["id"],
                        "output_index": idx,
                        "name": done_item["name"],
                        "arguments": done_item["arguments"],
                    },
                )
                emit("response.output_item.done", {"output_index": idx, "item": done_item})
            else:
                emit(
                    "response.output_item.added",
                    {
                        "output_index": idx,
                        "item": {**done_item, "status": "in_progress", "content": []},
                    },
                )
                part = {"type": "output_text", "annotations": [], "logprobs": [], "text": ""}
                where = {"item_id": msg_id, "output_index": idx, "content_index": 0}
                emit("response.content_part.added", {**where, "part": part})
                for piece in self.join_words(words):
                    emit("response.output_text.delta", {**where, "delta": piece, "logprobs": []})
                emit("response.output_text.done", {**where, "text": text, "logprobs": []})
                emit("response.content_part.done", {**where, "part": {**part, "text": text}})
                emit("response.output_item.done", {"output_index": idx, "item": done_item})
        emit(f"response.{status}", {"response": response(status, output, report)})
        error_event = sse(
            "error",
            {
                "type": "error",
                "sequence_number": seq,
                "code": "server_error",
                "message": "The server had an error while processing your request.",
                "param": None,
            },
        )
        return await self.stream_events(
            request, rec, events, headers=headers, error_event=error_event
        )

    # ------------------------------------------------------------------ models

    def _model_obj(self, model: str) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": self.now(), "owned_by": "system"}

    async def _models(self, request: web.Request, rec: RecordedRequest) -> web.StreamResponse:
        body = {"object": "list", "data": [self._model_obj(m) for m in self.models]}
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def _model(self, request: web.Request, rec: RecordedRequest) -> web.StreamResponse:
        model = request.match_info["model"]
        if model not in self.models:
            return self._error(
                404, f"The model '{model}' does not exist", param="model", code="model_not_found"
            )
        return web.Response(
            body=orjson.dumps(self._model_obj(model)), content_type="application/json"
        )

    # ------------------------------------------------------------------ fast mode

    def _prepare_fast(self) -> None:
        words, _ = self.reply_words([], None)
        pieces = self.join_words(words)
        usage = self.usage.resolve(8, len(words))
        base = {
            "id": "chatcmpl-fastfake",
            "object": "chat.completion",
            "created": self.now(),
            "model": "gpt-4o-mini",
            "system_fingerprint": _FINGERPRINT,
        }
        self._fast_chat = orjson.dumps(
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "message": {
                            "role": "assistant",
                            "content": "".join(pieces),
                            "refusal": None,
                            "annotations": [],
                        },
                        "logprobs": None,
                        "finish_reason": "stop",
                    }
                ],
                "usage": self._chat_usage(usage),
                "service_tier": "default",
            }
        )
        head = {**base, "object": "chat.completion.chunk"}
        chunks = [
            sse(
                None,
                {
                    **head,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"role": "assistant", "content": ""},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ],
                },
            )
        ]
        chunks += [
            sse(
                None,
                {
                    **head,
                    "choices": [
                        {
                            "index": 0,
                            "delta": {"content": p},
                            "logprobs": None,
                            "finish_reason": None,
                        }
                    ],
                },
            )
            for p in pieces
        ]
        chunks.append(
            sse(
                None,
                {
                    **head,
                    "choices": [
                        {"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
                    ],
                },
            )
        )
        self._fast_stream = b"".join([*chunks, _DONE])
        usage_chunk = sse(None, {**head, "choices": [], "usage": self._chat_usage(usage)})
        self._fast_stream_usage = b"".join([*chunks, usage_chunk, _DONE])

    fast_path = "/v1/chat/completions"

    def fast_replies(self) -> tuple[bytes, bytes, bytes]:
        """The fast path's pre-serialised bodies: unary, stream, stream with usage."""
        if self._fast_chat is None:
            self._prepare_fast()
        assert self._fast_chat and self._fast_stream and self._fast_stream_usage
        return self._fast_chat, self._fast_stream, self._fast_stream_usage

    async def _fast_chat_handler(self, request: web.Request) -> web.StreamResponse:
        """Benchmark path: pre-serialised bodies, a byte search instead of a JSON parse."""
        body = await request.read()
        if b'"fake-' in body:  # a scenario was asked for: take the full path
            return await self.dispatch(request, self._chat, body)
        if self._fast_chat is None:
            self._prepare_fast()
        if b'"stream":true' not in body and b'"stream": true' not in body:
            return web.Response(body=self._fast_chat, content_type="application/json")
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await resp.prepare(request)
        await resp.write(self._fast_stream_usage if b"include_usage" in body else self._fast_stream)  # type: ignore[arg-type]
        await resp.write_eof()
        return resp


def _token_ids(value: Any) -> int:
    """Length of a pre-tokenised prompt (list of ints, or list of such lists)."""
    if isinstance(value, list):
        if value and all(isinstance(v, int) for v in value):
            return len(value)
        return sum(_token_ids(v) for v in value)
    return 0


def embedding_vector(seed: bytes, dims: int) -> list[float]:
    """A deterministic unit-ish vector (exactly representable as float32)."""
    digest = b""
    counter = 0
    while len(digest) < dims:
        digest += hashlib.sha256(seed + counter.to_bytes(4, "little")).digest()
        counter += 1
    return [(b - 128) / 128.0 for b in digest[:dims]]
