"""SSE parsing and stream meters, fed with real-shaped provider streams."""

from __future__ import annotations

import random
from typing import Any

import orjson
import pytest

from tokenomy.events import Usage
from tokenomy.metering.stream import (
    AnthropicStreamMeter,
    OpenAIStreamMeter,
    ResponsesStreamMeter,
    SSEParser,
    aiter_sse,
)


def _sse(events: list[tuple[str, Any]], nl: str = "\n") -> bytes:
    out = []
    for event, data in events:
        body = data if isinstance(data, str) else orjson.dumps(data).decode()
        head = f"event: {event}{nl}" if event else ""
        out.append(f"{head}data: {body}{nl}{nl}")
    return "".join(out).encode()


def _split_every_way(raw: bytes, seed: int = 7) -> list[list[bytes]]:
    rnd = random.Random(seed)
    ways = [[raw], [raw[i : i + 1] for i in range(len(raw))]]
    for _ in range(20):
        cuts = sorted(rnd.sample(range(1, len(raw)), k=min(12, len(raw) - 1)))
        ways.append([raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=True)])
    return ways


def _parse_all(chunks: list[bytes]) -> list[tuple[str, bytes]]:
    p = SSEParser()
    out = [ev for c in chunks for ev in p.feed(c)]
    return out + p.flush()


# ---------------------------------------------------------------------------- SSE parser


@pytest.mark.parametrize("nl", ["\n", "\r\n", "\r"])
def test_sse_any_split_any_line_ending(nl: str) -> None:
    raw = _sse([("", {"a": 1}), ("ping", {"type": "ping"}), ("", "[DONE]")], nl)
    expected = [("", b'{"a":1}'), ("ping", b'{"type":"ping"}'), ("", b"[DONE]")]
    for chunks in _split_every_way(raw):
        assert _parse_all(chunks) == expected


def test_sse_comments_multiline_data_unknown_fields_and_bom() -> None:
    raw = (
        b"\xef\xbb\xbf: keep-alive comment\n\n"
        b"id: 1\nretry: 100\nevent: message_start\ndata: line1\ndata:line2\nfoo: bar\n\n"
        b"event: empty\n\n"  # no data: not dispatched
        b": another comment\ndata: x\n\n"
    )
    expected = [("message_start", b"line1\nline2"), ("", b"x")]
    for chunks in _split_every_way(raw):
        assert _parse_all(chunks) == expected


def test_sse_flush_keeps_unterminated_last_event() -> None:
    p = SSEParser()
    assert p.feed(b'data: {"usage": 1}\n\ndata: [DONE]') == [("", b'{"usage": 1}')]
    assert p.flush() == [("", b"[DONE]")]
    assert p.flush() == []


async def test_aiter_sse() -> None:
    async def chunks() -> Any:
        for c in (b"event: a\nda", b"ta: 1\n", b"\ndata: 2\n\n"):
            yield c

    assert [ev async for ev in aiter_sse(chunks())] == [("a", b"1"), ("", b"2")]


# ------------------------------------------------------------------------- OpenAI chat


def _chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = (
        []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    )
    return {
        "id": "chatcmpl-abc",
        "object": "chat.completion.chunk",
        "created": 1732790000,
        "model": "gpt-4o-2024-08-06",
        "system_fingerprint": "fp_1",
        "choices": choices,
        **extra,
    }


USAGE = {
    "prompt_tokens": 19,
    "completion_tokens": 3,
    "total_tokens": 22,
    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
    "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0},
}


def _openai_stream(usage_mode: str) -> bytes:
    extra = {"usage": None} if usage_mode == "final" else {}
    events: list[tuple[str, Any]] = [
        ("", _chunk({"role": "assistant", "content": "", "refusal": None}, **extra)),
        ("", _chunk({"content": "Hello"}, **extra)),
        ("", _chunk({"content": " there"}, **extra)),
    ]
    if usage_mode == "with-choices":
        events.append(("", _chunk({}, "stop", usage=USAGE)))
    else:
        events.append(("", _chunk({}, "stop", **extra)))
    if usage_mode == "final":
        events.append(("", _chunk(None, usage=USAGE)))
    events.append(("", "[DONE]"))
    return _sse(events)


@pytest.mark.parametrize("mode", ["final", "with-choices"])
def test_openai_meter_usage_wherever_it_arrives(mode: str) -> None:
    for chunks in _split_every_way(_openai_stream(mode)):
        m = OpenAIStreamMeter()
        for c in chunks:
            m.feed_bytes(c)
        m.close()
        assert m.usage() == Usage(input_tokens=19, output_tokens=3)
        assert m.usage_complete and m.done
        assert (m.id, m.model, m.finish_reasons) == ("chatcmpl-abc", "gpt-4o-2024-08-06", ["stop"])
        assert m.output_text() == "Hello there"


def test_openai_meter_no_usage_and_cut_off() -> None:
    raw = _openai_stream("none")
    m = OpenAIStreamMeter()
    m.feed_bytes(raw[: raw.index(b"[DONE]") - 6])
    assert m.usage() is None and not m.usage_complete and not m.done
    assert m.output_text() == "Hello there"


def test_openai_meter_vllm_continuous_usage_last_wins() -> None:
    m = OpenAIStreamMeter()
    for i, text in enumerate(["a", "b", "c"], start=1):
        m.feed(
            _chunk(
                {"content": text},
                usage={"prompt_tokens": 7, "completion_tokens": i, "total_tokens": 7 + i},
            )
        )
    assert m.usage() == Usage(input_tokens=7, output_tokens=3)  # cumulative, not 1+2+3


def test_openai_meter_tool_calls_reasoning_and_refusal() -> None:
    m = OpenAIStreamMeter()
    call = {
        "index": 0,
        "id": "call_1",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    m.feed(_chunk({"role": "assistant", "reasoning_content": "think "}))
    m.feed(_chunk({"tool_calls": [call]}))
    m.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}))
    m.feed(_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}))
    m.feed(_chunk({"refusal": "!"}))
    m.feed(_chunk({}, "tool_calls"))
    assert m.output_text() == 'think get_weather{"city":"Paris"}!'
    assert m.finish_reasons == ["tool_calls"]


def test_openai_meter_mistral_list_content() -> None:
    m = OpenAIStreamMeter()
    m.feed(
        _chunk(
            {
                "content": [
                    {"type": "thinking", "thinking": [{"type": "text", "text": "hm"}]},
                    {"type": "text", "text": "ok"},
                ]
            }
        )
    )
    assert m.output_text() == "hmok"


def test_openai_meter_legacy_completions_and_error_event() -> None:
    m = OpenAIStreamMeter()
    m.feed(
        {
            "id": "cmpl-1",
            "object": "text_completion",
            "model": "gpt-3.5-turbo-instruct",
            "choices": [{"text": "Once", "index": 0, "logprobs": None, "finish_reason": None}],
        }
    )
    m.feed(
        {
            "id": "cmpl-1",
            "object": "text_completion",
            "model": "gpt-3.5-turbo-instruct",
            "choices": [{"text": " upon", "index": 0, "logprobs": None, "finish_reason": "length"}],
        }
    )
    m.feed_sse("", b'{"error": {"message": "boom", "type": "server_error"}}')
    m.feed_sse("", b"not json")
    assert m.output_text() == "Once upon"
    assert m.finish_reasons == ["length"]
    assert m.error == {"message": "boom", "type": "server_error"}


# ------------------------------------------------------------------------- Responses API


def _response(status: str, usage: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": 1732790000,
        "status": status,
        "model": "gpt-4.1-2025-04-14",
        "output": [],
        "usage": usage,
    }


RESP_USAGE = {
    "input_tokens": 36,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 87,
    "output_tokens_details": {"reasoning_tokens": 64},
    "total_tokens": 123,
}


@pytest.mark.parametrize("terminal", ["completed", "incomplete", "failed"])
def test_responses_meter(terminal: str) -> None:
    item = {
        "id": "fc_1",
        "type": "function_call",
        "call_id": "call_1",
        "name": "lookup",
        "arguments": "",
        "status": "in_progress",
    }
    events: list[tuple[str, Any]] = [
        (
            "response.created",
            {
                "type": "response.created",
                "sequence_number": 0,
                "response": _response("in_progress", None),
            },
        ),
        (
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "sequence_number": 1,
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": "Hi",
                "logprobs": [],
            },
        ),
        (
            "response.output_item.added",
            {
                "type": "response.output_item.added",
                "sequence_number": 2,
                "output_index": 1,
                "item": item,
            },
        ),
        (
            "response.function_call_arguments.delta",
            {
                "type": "response.function_call_arguments.delta",
                "sequence_number": 3,
                "item_id": "fc_1",
                "output_index": 1,
                "delta": "{}",
            },
        ),
        (
            f"response.{terminal}",
            {
                "type": f"response.{terminal}",
                "sequence_number": 4,
                "response": _response(terminal, RESP_USAGE),
            },
        ),
    ]
    m = ResponsesStreamMeter()
    m.feed_bytes(_sse(events))
    assert m.usage() == Usage(input_tokens=36, output_tokens=87, reasoning_tokens=64)
    assert m.done and m.usage_complete
    assert m.status == terminal and m.finish_reasons == [terminal]
    assert (m.id, m.model) == ("resp_1", "gpt-4.1-2025-04-14")
    assert m.output_text() == "Hilookup{}"


def test_responses_meter_cut_off() -> None:
    m = ResponsesStreamMeter()
    m.feed(
        {
            "type": "response.created",
            "sequence_number": 0,
            "response": _response("in_progress", None),
        }
    )
    m.feed({"type": "response.output_text.delta", "delta": "partial"})
    assert m.usage() is None and not m.done and m.output_text() == "partial"


# ------------------------------------------------------------------------------ Anthropic


def _anthropic_events(final_usage: dict[str, Any]) -> list[tuple[str, Any]]:
    start_usage = {
        "input_tokens": 25,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 2000,
        "cache_creation": {"ephemeral_5m_input_tokens": 40, "ephemeral_1h_input_tokens": 60},
        "output_tokens": 1,
        "service_tier": "standard",
    }
    message: dict[str, Any] = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "content": [],
        "model": "claude-sonnet-4-5-20250929",
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    return [
        ("message_start", {"type": "message_start", "message": message}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "Hmm. "},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "c2ln"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("ping", {"type": "ping"}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "text", "text": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "text_delta", "text": "Hello"},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 2,
                "content_block": {
                    "type": "tool_use",
                    "id": "toolu_1",
                    "name": "get_weather",
                    "input": {},
                },
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 2,
                "delta": {"type": "input_json_delta", "partial_json": '{"city": "Paris"}'},
            },
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 2}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                "usage": final_usage,
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


EXPECTED_ANTHROPIC = Usage(
    input_tokens=2125,
    cached_tokens=2000,
    cache_write_tokens=100,
    cache_write_1h_tokens=60,
    output_tokens=89,
)


@pytest.mark.parametrize(
    "final_usage",
    [
        {"output_tokens": 89},  # classic message_delta: output only
        {  # current API: cumulative counts of every bucket
            "input_tokens": 25,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 2000,
            "output_tokens": 89,
        },
        {"input_tokens": None, "output_tokens": 89},
    ],
)
def test_anthropic_meter(final_usage: dict[str, Any]) -> None:
    raw = _sse(_anthropic_events(final_usage))
    for chunks in _split_every_way(raw)[:5]:
        m = AnthropicStreamMeter()
        for c in chunks:
            m.feed_bytes(c)
        assert m.usage() == EXPECTED_ANTHROPIC  # output replaced, never 1 + 89
        assert m.usage_complete and m.done
        assert m.finish_reasons == ["tool_use"]
        assert (m.id, m.model) == ("msg_01", "claude-sonnet-4-5-20250929")
        assert m.output_text() == 'Hmm. Helloget_weather{"city": "Paris"}'


def test_anthropic_meter_cut_after_message_start() -> None:
    events = _anthropic_events({"output_tokens": 89})
    m = AnthropicStreamMeter()
    m.feed_bytes(_sse(events[:8]))
    u = m.usage()
    assert u is not None and u.input_tokens == 2125 and u.output_tokens == 1
    assert not m.usage_complete and not m.done
    assert m.output_text() == "Hmm. Hello"


def test_anthropic_meter_nothing_and_error() -> None:
    m = AnthropicStreamMeter()
    assert m.usage() is None and m.output_text() == ""
    m.feed_sse(
        "error",
        b'{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
    )
    assert m.error == {"type": "overloaded_error", "message": "Overloaded"}
