"""A simulated :class:`~tokenomy.simulated.answers.Answer` in the real wire formats.

Unary bodies and streams as OpenAI (chat completions, completions, Responses) and
Anthropic (messages) send them, usage included. A stream is a sequence of
``(event bytes, output tokens sent so far)``: the server paces the events by the second
number. Error bodies are the providers' own, with their statuses.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import orjson

from tokenomy.simulated.answers import Answer, chunks

Stream = Iterator[tuple[bytes, int]]
DONE = b"data: [DONE]\n\n"


def _data(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def _event(obj: dict[str, Any]) -> bytes:
    return b"event: " + str(obj["type"]).encode() + b"\n" + _data(obj)


# -- OpenAI chat completions ---------------------------------------------------------------
def _chat_usage(a: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": a.input_tokens,
        "completion_tokens": a.output_tokens,
        "total_tokens": a.input_tokens + a.output_tokens,
        "prompt_tokens_details": {"cached_tokens": a.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _finish(a: Answer) -> str:
    return "tool_calls" if a.tool else ("length" if a.truncated else "stop")


def chat(a: Answer) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": a.text or None, "refusal": None}
    if a.tool:
        message["tool_calls"] = [
            {
                "id": a.tool.id,
                "type": "function",
                "function": {"name": a.tool.name, "arguments": a.tool.arguments},
            }
        ]
    return {
        "id": "chatcmpl-" + a.id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": a.model,
        "choices": [
            {"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(a)}
        ],
        "usage": _chat_usage(a),
        "system_fingerprint": "fp_simulated",
    }


def chat_stream(a: Answer, size: int, usage: bool) -> Stream:
    head = {
        "id": "chatcmpl-" + a.id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": a.model,
        "system_fingerprint": "fp_simulated",
    }

    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return _data({**head, "choices": [choice]})

    yield chunk({"role": "assistant", "content": "" if not a.tool else None}), 0
    sent = 0
    if a.tool:
        call = {"index": 0, "id": a.tool.id, "type": "function"}
        fn = {"name": a.tool.name, "arguments": ""}
        yield chunk({"tool_calls": [{**call, "function": fn}]}), 0
        yield (
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": a.tool.arguments}}]}),
            (a.output_tokens),
        )
    for piece in chunks(a.words, size):
        sent += min(size, a.output_tokens - sent)
        yield chunk({"content": piece}), sent
    yield chunk({}, _finish(a)), a.output_tokens
    if usage:
        yield _data({**head, "choices": [], "usage": _chat_usage(a)}), a.output_tokens
    yield DONE, a.output_tokens


# -- OpenAI completions (legacy) ----------------------------------------------------------
def _completions_usage(a: Answer) -> dict[str, Any]:
    return {
        "prompt_tokens": a.input_tokens,
        "completion_tokens": a.output_tokens,
        "total_tokens": a.input_tokens + a.output_tokens,
    }


def completions(a: Answer) -> dict[str, Any]:
    finish = "length" if a.truncated else "stop"
    return {
        "id": "cmpl-" + a.id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": a.model,
        "choices": [{"text": a.text, "index": 0, "logprobs": None, "finish_reason": finish}],
        "usage": _completions_usage(a),
    }


def completions_stream(a: Answer, size: int, usage: bool) -> Stream:
    head = {"id": "cmpl-" + a.id, "object": "text_completion", "created": int(time.time())}
    head["model"] = a.model
    sent = 0
    for piece in chunks(a.words, size):
        sent += min(size, a.output_tokens - sent)
        choice = {"text": piece, "index": 0, "logprobs": None, "finish_reason": None}
        yield _data({**head, "choices": [choice]}), sent
    finish = "length" if a.truncated else "stop"
    choice = {"text": "", "index": 0, "logprobs": None, "finish_reason": finish}
    yield _data({**head, "choices": [choice]}), a.output_tokens
    if usage:
        yield _data({**head, "choices": [], "usage": _completions_usage(a)}), a.output_tokens
    yield DONE, a.output_tokens


# -- OpenAI Responses ----------------------------------------------------------------------
def _responses_usage(a: Answer) -> dict[str, Any]:
    return {
        "input_tokens": a.input_tokens,
        "input_tokens_details": {"cached_tokens": a.cached_tokens},
        "output_tokens": a.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": a.input_tokens + a.output_tokens,
    }


def _responses_item(a: Answer, done: bool) -> dict[str, Any]:
    status = "completed" if done else "in_progress"
    if a.tool:
        return {
            "type": "function_call",
            "id": "fc_" + a.id,
            "call_id": a.tool.id,
            "name": a.tool.name,
            "arguments": a.tool.arguments if done else "",
            "status": status,
        }
    content = [{"type": "output_text", "text": a.text, "annotations": [], "logprobs": []}]
    return {
        "type": "message",
        "id": "msg_" + a.id,
        "status": status,
        "role": "assistant",
        "content": content if done else [],
    }


def responses(a: Answer, *, done: bool = True) -> dict[str, Any]:
    status = "in_progress" if not done else ("incomplete" if a.truncated else "completed")
    return {
        "id": "resp_" + a.id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if done and a.truncated else None,
        "instructions": None,
        "model": a.model,
        "output": [_responses_item(a, True)] if done else [],
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "text": {"format": {"type": "text"}},
        "metadata": {},
        "usage": _responses_usage(a) if done else None,
    }


def responses_stream(a: Answer, size: int) -> Stream:
    seq = 0

    def ev(kind: str, **fields: Any) -> bytes:
        nonlocal seq
        seq += 1
        return _event({"type": kind, "sequence_number": seq - 1, **fields})

    yield ev("response.created", response=responses(a, done=False)), 0
    yield ev("response.in_progress", response=responses(a, done=False)), 0
    item_id = ("fc_" if a.tool else "msg_") + a.id
    yield ev("response.output_item.added", output_index=0, item=_responses_item(a, False)), 0
    where = {"item_id": item_id, "output_index": 0}
    if a.tool:
        yield (
            ev("response.function_call_arguments.delta", **where, delta=a.tool.arguments),
            (a.output_tokens),
        )
        yield (
            ev("response.function_call_arguments.done", **where, arguments=a.tool.arguments),
            (a.output_tokens),
        )
    else:
        part = {"type": "output_text", "text": "", "annotations": []}
        yield ev("response.content_part.added", **where, content_index=0, part=part), 0
        sent = 0
        for piece in chunks(a.words, size):
            sent += min(size, a.output_tokens - sent)
            yield (
                ev(
                    "response.output_text.delta", **where, content_index=0, delta=piece, logprobs=[]
                ),
                sent,
            )
        yield (
            ev("response.output_text.done", **where, content_index=0, text=a.text, logprobs=[]),
            a.output_tokens,
        )
        part = {"type": "output_text", "text": a.text, "annotations": []}
        yield ev("response.content_part.done", **where, content_index=0, part=part), a.output_tokens
    yield (
        ev("response.output_item.done", output_index=0, item=_responses_item(a, True)),
        (a.output_tokens),
    )
    final = responses(a)
    yield ev(f"response.{final['status']}", response=final), a.output_tokens


# -- Anthropic messages --------------------------------------------------------------------
def _stop_reason(a: Answer) -> str:
    return "tool_use" if a.tool else ("max_tokens" if a.truncated else "end_turn")


def _messages_usage(a: Answer, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": a.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    }


def _tool_block(a: Answer, done: bool) -> dict[str, Any]:
    assert a.tool is not None
    args = orjson.loads(a.tool.arguments) if done else {}
    return {"type": "tool_use", "id": "toolu_" + a.id, "name": a.tool.name, "input": args}


def messages(a: Answer) -> dict[str, Any]:
    content = [_tool_block(a, True)] if a.tool else [{"type": "text", "text": a.text}]
    return {
        "id": "msg_" + a.id,
        "type": "message",
        "role": "assistant",
        "model": a.model,
        "content": content,
        "stop_reason": _stop_reason(a),
        "stop_sequence": None,
        "usage": _messages_usage(a, a.output_tokens),
    }


def messages_stream(a: Answer, size: int) -> Stream:
    start = {**messages(a), "content": [], "stop_reason": None}
    start["usage"] = _messages_usage(a, 1)  # what Anthropic reports before generating
    yield _event({"type": "message_start", "message": start}), 0
    block = _tool_block(a, False) if a.tool else {"type": "text", "text": ""}
    yield _event({"type": "content_block_start", "index": 0, "content_block": block}), 0
    yield _event({"type": "ping"}), 0
    if a.tool:
        delta = {"type": "input_json_delta", "partial_json": a.tool.arguments}
        yield _event({"type": "content_block_delta", "index": 0, "delta": delta}), a.output_tokens
    sent = 0
    for piece in chunks(a.words, size):
        sent += min(size, a.output_tokens - sent)
        delta = {"type": "text_delta", "text": piece}
        yield _event({"type": "content_block_delta", "index": 0, "delta": delta}), sent
    yield _event({"type": "content_block_stop", "index": 0}), a.output_tokens
    yield (
        _event(
            {
                "type": "message_delta",
                "delta": {"stop_reason": _stop_reason(a), "stop_sequence": None},
                "usage": {"output_tokens": a.output_tokens},
            }
        ),
        a.output_tokens,
    )
    yield _event({"type": "message_stop"}), a.output_tokens


# -- errors --------------------------------------------------------------------------------
# (status, OpenAI error, Anthropic error) of each kind of injected failure.
FAILURES: tuple[tuple[int, dict[str, Any], int, dict[str, Any]], ...] = (
    (
        429,
        {
            "message": "Rate limit reached for requests (simulated). Please try again in 1s.",
            "type": "requests",
            "param": None,
            "code": "rate_limit_exceeded",
        },
        429,
        {
            "type": "rate_limit_error",
            "message": "This request would exceed the rate limit (simulated).",
        },
    ),
    (
        500,
        {
            "message": "The server had an error while processing your request (simulated).",
            "type": "server_error",
            "param": None,
            "code": None,
        },
        500,
        {"type": "api_error", "message": "Internal server error (simulated)"},
    ),
    (
        503,
        {
            "message": "The engine is currently overloaded, please try again later (simulated).",
            "type": "server_error",
            "param": None,
            "code": None,
        },
        529,
        {"type": "overloaded_error", "message": "Overloaded (simulated)"},
    ),
)
# Of every 4 injected failures: two 429s, one 500, one 503 (Anthropic: 529).
FAILURE_CYCLE = (0, 1, 0, 2)


def failure(anthropic: bool, index: int) -> tuple[int, dict[str, Any]]:
    """(status, body) of the ``index``-th kind of failure, in the client's format."""
    status, oai, a_status, ant = FAILURES[index]
    if anthropic:
        return a_status, {"type": "error", "error": ant}
    return status, {"error": oai}


def bad_request(anthropic: bool, message: str) -> dict[str, Any]:
    if anthropic:
        return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}
    error = {"message": message, "type": "invalid_request_error", "param": None, "code": None}
    return {"error": error}
