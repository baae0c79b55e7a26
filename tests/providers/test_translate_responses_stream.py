"""Anthropic Messages stream → OpenAI Responses stream, fed with real-shaped provider streams.

Every event consumed is validated with the ``anthropic`` SDK's stream event types and every
event produced with the ``openai`` SDK's ``ResponseStreamEvent``; produced streams are also
served as SSE to a real ``OpenAI`` client (in-process transport), whose own accumulator must
arrive at the same response the unary translation gives for the same content.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from tokenomy.errors import RateLimited, UpstreamError
from tokenomy.providers.translate_responses_stream import MessagesToResponsesStream
from tokenomy.providers.translate_responses_to_messages import messages_response_to_responses

ANTHROPIC_EVENT: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
RESPONSES_EVENT: TypeAdapter[Any] = TypeAdapter(ResponseStreamEvent)
CREATED = 1_700_000_000
MSG_ID = "msg_01Wx3PKm7zQfh9eTtAqT7RLs"
ID = "01Wx3PKm7zQfh9eTtAqT7RLs"
Events = list[tuple[str, dict[str, Any]]]


def ev(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An SSE event as the gateway's parser hands it over: (event name, parsed data)."""
    return data["type"], data


def start(usage: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    return ev(
        {
            "type": "message_start",
            "message": {
                "id": MSG_ID,
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": usage
                or {
                    "input_tokens": 377,
                    "cache_creation_input_tokens": 20,
                    "cache_read_input_tokens": 100,
                    "output_tokens": 1,
                    "service_tier": "standard",
                },
            },
        }
    )


def block(index: int, content_block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ev({"type": "content_block_start", "index": index, "content_block": content_block})


def delta(index: int, d: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ev({"type": "content_block_delta", "index": index, "delta": d})


def stop(index: int) -> tuple[str, dict[str, Any]]:
    return ev({"type": "content_block_stop", "index": index})


def message_delta(stop_reason: str, output_tokens: int = 65) -> tuple[str, dict[str, Any]]:
    return ev(
        {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": output_tokens},
        }
    )


# Thinking, two text blocks around a redacted-thinking block, a tool call whose input
# streams as JSON fragments, a tool call without input, pings.
FULL_STREAM: Events = [
    start(),
    block(0, {"type": "thinking", "thinking": "", "signature": ""}),
    delta(0, {"type": "thinking_delta", "thinking": "The user "}),
    delta(0, {"type": "thinking_delta", "thinking": "wants Lyon."}),
    delta(0, {"type": "signature_delta", "signature": "EqQBCgIYAh"}),
    stop(0),
    block(1, {"type": "text", "text": ""}),
    ev({"type": "ping"}),
    delta(1, {"type": "text_delta", "text": "I'll look "}),
    delta(1, {"type": "text_delta", "text": "up "}),
    stop(1),
    block(2, {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3p"}),
    stop(2),
    block(3, {"type": "text", "text": ""}),
    delta(3, {"type": "text_delta", "text": "Lyon."}),
    stop(3),
    block(
        4,
        {
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "input": {},
        },
    ),
    delta(4, {"type": "input_json_delta", "partial_json": ""}),
    delta(4, {"type": "input_json_delta", "partial_json": '{"city": "Ly'}),
    delta(4, {"type": "input_json_delta", "partial_json": 'on", "unit": "c"}'}),
    stop(4),
    block(5, {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}}),
    delta(5, {"type": "input_json_delta", "partial_json": ""}),
    stop(5),
    ev(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 65, "output_tokens_details": {"thinking_tokens": 12}},
        }
    ),
    ev({"type": "message_stop"}),
]

# The same content as one unary Message.
FULL_MESSAGE: dict[str, Any] = {
    "id": MSG_ID,
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "thinking", "thinking": "The user wants Lyon.", "signature": "EqQBCgIYAh"},
        {"type": "text", "text": "I'll look up "},
        {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3p"},
        {"type": "text", "text": "Lyon."},
        {
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "input": {"city": "Lyon", "unit": "c"},
        },
        {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}},
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 377,
        "cache_creation_input_tokens": 20,
        "cache_read_input_tokens": 100,
        "output_tokens": 65,
        "output_tokens_details": {"thinking_tokens": 12},
        "service_tier": "standard",
    },
}


def run(
    events: Events, *, finish: bool = True, request: dict[str, Any] | None = None
) -> tuple[MessagesToResponsesStream, Events]:
    stream = MessagesToResponsesStream("claude-sonnet", request=request, created_at=CREATED)
    out: Events = []
    for name, data in events:
        if name != "ping":
            ANTHROPIC_EVENT.validate_python(data)
        out.extend(stream.feed(name, data))
    if finish:
        out.extend(stream.finish())
    check(out)
    return stream, out


def check(events: Events) -> None:
    """Each event is a valid SDK event, named by its type, numbered 0, 1, 2, ..."""
    for n, (name, data) in enumerate(events):
        RESPONSES_EVENT.validate_python(data)
        assert name == data["type"]
        assert data["sequence_number"] == n


def names(events: Events) -> list[str]:
    return [name for name, _ in events]


def sse(events: Events) -> bytes:
    return b"".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n".encode() for name, data in events
    )


def sdk_client(events: Events) -> openai.OpenAI:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200, content=sse(events), headers={"content-type": "text/event-stream"}
        )

    return openai.OpenAI(
        api_key="sk-test",
        base_url="http://gateway.test/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )


def test_full_stream_event_order() -> None:
    _, events = run(FULL_STREAM)
    assert names(events) == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",  # reasoning
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",  # message
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.content_part.added",  # second text block, same message
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",  # get_weather
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.output_item.added",  # get_time
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    by_seq = [data for _, data in events]
    assert by_seq[0]["response"]["status"] == "in_progress"
    assert by_seq[0]["response"]["output"] == [] and by_seq[0]["response"]["usage"] is None
    assert by_seq[0]["response"]["id"] == f"resp_{MSG_ID}"
    assert by_seq[9]["item"] == {
        "type": "message",
        "id": f"msg_{ID}_1",
        "role": "assistant",
        "status": "in_progress",
        "content": [],
    }
    assert by_seq[11] == {
        "type": "response.output_text.delta",
        "item_id": f"msg_{ID}_1",
        "output_index": 1,
        "content_index": 0,
        "delta": "I'll look ",
        "logprobs": [],
        "sequence_number": 11,
    }
    assert by_seq[16]["content_index"] == 1
    assert by_seq[20]["item"] == {
        "type": "function_call",
        "id": f"fc_{ID}_2",
        "call_id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        "name": "get_weather",
        "arguments": "",
        "status": "in_progress",
    }
    assert by_seq[23] == {
        "type": "response.function_call_arguments.done",
        "item_id": f"fc_{ID}_2",
        "output_index": 2,
        "name": "get_weather",
        "arguments": '{"city": "Lyon", "unit": "c"}',
        "sequence_number": 23,
    }
    # A call without input gets "{}", announced as a delta so deltas and done agree.
    assert by_seq[26]["delta"] == "{}" and by_seq[27]["arguments"] == "{}"
    final = by_seq[-1]["response"]
    assert final["status"] == "completed"
    assert final["usage"] == {
        "input_tokens": 497,
        "input_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 20},
        "output_tokens": 65,
        "output_tokens_details": {"reasoning_tokens": 12},
        "total_tokens": 562,
    }


def _comparable(response: Response) -> dict[str, Any]:
    """A response dump where function-call arguments are compared as JSON values.

    The stream relays Anthropic's argument text verbatim (with its spacing); the unary
    leg serialises the parsed input compactly. The SDK's own ``parsed*`` additions (for
    structured outputs, None here) are left out.
    """
    dump = response.model_dump(mode="json")
    for item in dump["output"]:
        item.pop("parsed_arguments", None)
        for part in item.get("content") or []:
            part.pop("parsed", None)
        if item["type"] == "function_call":
            item["arguments"] = json.loads(item["arguments"])
    return dump


def test_the_sdk_accumulates_the_same_response_as_the_unary_translation() -> None:
    request = {
        "model": "claude-sonnet",
        "input": "Weather in Lyon?",
        "instructions": "Brief.",
        "tools": [
            {
                "type": "function",
                "name": "get_weather",
                "strict": True,
                "parameters": {"type": "object", "properties": {}},
            }
        ],
    }
    _, events = run(FULL_STREAM, request=request)
    client = sdk_client(events)
    with client.responses.stream(model="claude-sonnet", input="Weather in Lyon?") as stream:
        seen = [event.type for event in stream]
        final = stream.get_final_response()
    assert seen == names(events)
    unary = Response.model_validate(
        messages_response_to_responses(
            FULL_MESSAGE, "claude-sonnet", request=request, created_at=CREATED
        )
    )
    assert _comparable(final) == _comparable(unary)
    assert final.output_text == "I'll look up Lyon."
    calls = [item for item in final.output if item.type == "function_call"]
    assert [(c.call_id, c.name) for c in calls] == [
        ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather"),
        ("toolu_02", "get_time"),
    ]


def test_raw_sdk_stream_of_a_plain_text_answer() -> None:
    events_in: Events = [
        start({"input_tokens": 12, "output_tokens": 1}),
        block(0, {"type": "text", "text": ""}),
        delta(0, {"type": "text_delta", "text": "Hello"}),
        delta(0, {"type": "text_delta", "text": "!"}),
        stop(0),
        message_delta("end_turn", 3),
        ev({"type": "message_stop"}),
    ]
    stream, events = run(events_in)
    client = sdk_client(events)
    texts: list[str] = []
    completed: list[Response] = []
    for event in client.responses.create(model="m", input="hi", stream=True):
        if event.type == "response.output_text.delta":
            texts.append(event.delta)
        elif event.type == "response.completed":
            completed.append(event.response)
    assert "".join(texts) == "Hello!"
    assert completed[0].output_text == "Hello!"
    assert completed[0].usage is not None and completed[0].usage.total_tokens == 15
    assert stream.usage() == {"input_tokens": 12, "output_tokens": 3}
    assert stream.finished


@pytest.mark.parametrize(
    ("stop_reason", "reason"),
    [
        ("max_tokens", "max_output_tokens"),
        ("model_context_window_exceeded", "max_output_tokens"),
        ("refusal", "content_filter"),
    ],
)
def test_incomplete_responses(stop_reason: str, reason: str) -> None:
    _, events = run(
        [
            start(),
            block(0, {"type": "text", "text": ""}),
            delta(0, {"type": "text_delta", "text": "Partial"}),
            stop(0),
            message_delta(stop_reason),
            ev({"type": "message_stop"}),
        ]
    )
    name, data = events[-1]
    assert name == "response.incomplete"
    assert data["response"]["status"] == "incomplete"
    assert data["response"]["incomplete_details"] == {"reason": reason}
    assert Response.model_validate(data["response"]).output_text == "Partial"
    client = sdk_client(events)
    terminal = [e for e in client.responses.create(model="m", input="x", stream=True)][-1]
    assert terminal.type == "response.incomplete"


def test_message_stop_without_message_delta_still_completes() -> None:
    _, events = run(
        [start(), block(0, {"type": "text", "text": "Hi"}), stop(0), ev({"type": "message_stop"})]
    )
    assert names(events)[-2:] == ["response.output_item.done", "response.completed"]
    # A text that arrives on content_block_start is a delta too.
    assert [d["delta"] for n, d in events if n == "response.output_text.delta"] == ["Hi"]


def test_tool_input_on_block_start_and_events_after_the_end() -> None:
    stream, events = run(
        [
            start(),
            block(0, {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"a": 1}}),
            stop(0),
            message_delta("tool_use"),
            ev({"type": "message_stop"}),
        ]
    )
    assert [d["arguments"] for n, d in events if n == "response.function_call_arguments.done"] == [
        '{"a":1}'
    ]
    assert stream.feed("message_stop", {"type": "message_stop"}) == []
    assert stream.feed("ping", {"type": "ping"}) == []
    assert stream.finish() == []


def test_cut_streams() -> None:
    # Cut after message_delta: finish() owes the terminal event.
    cut = FULL_STREAM[:-1]
    stream, events = run(cut, finish=False)
    assert not stream.finished
    owed = stream.finish()
    assert names(owed) == ["response.completed"]
    check(events + owed)
    assert stream.finished and stream.finish() == []

    # Cut mid-block: nothing is owed; the gateway ends the stream with failed().
    stream, events = run(FULL_STREAM[:10])
    assert not stream.finished
    failed = stream.failed(UpstreamError("upstream closed the stream early"))
    check(events + failed)
    assert names(failed) == ["response.failed"]
    response = failed[0][1]["response"]
    assert response["status"] == "failed"
    assert response["error"] == {
        "code": "server_error",
        "message": "upstream closed the stream early",
    }
    # Only finished items are reported: the reasoning item, not the open message.
    assert [item["type"] for item in response["output"]] == ["reasoning"]
    assert response["usage"]["input_tokens"] == 497
    assert stream.finished and stream.failed(UpstreamError("again")) == []


def test_error_event_raises_upstream_error_and_failed_ends_the_stream() -> None:
    stream = MessagesToResponsesStream("claude-sonnet", created_at=CREATED)
    events = stream.feed(*start())
    events += stream.feed(*block(0, {"type": "text", "text": ""}))
    events += stream.feed(*delta(0, {"type": "text_delta", "text": "Hel"}))
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(UpstreamError) as info:
        stream.feed("error", error)
    assert info.value.upstream_status == 529
    assert "overloaded_error" in info.value.message and "Overloaded" in info.value.message
    assert stream.usage() == {
        "input_tokens": 377,
        "cache_creation_input_tokens": 20,
        "cache_read_input_tokens": 100,
        "output_tokens": 1,
        "service_tier": "standard",
    }
    events += stream.failed(info.value)
    check(events)
    client = sdk_client(events)
    terminal = [e for e in client.responses.create(model="m", input="x", stream=True)][-1]
    assert terminal.type == "response.failed"
    assert terminal.response.error is not None
    assert terminal.response.error.code == "server_error"


def test_failed_before_anything_was_sent_opens_the_response_first() -> None:
    stream = MessagesToResponsesStream("m", created_at=CREATED)
    events = stream.failed(RateLimited("slow down"))
    check(events)
    assert names(events) == ["response.created", "response.in_progress", "response.failed"]
    response = events[-1][1]["response"]
    assert response["error"]["code"] == "rate_limit_exceeded"
    assert response["usage"] is None and response["output"] == []


def test_usage_merges_across_events() -> None:
    stream, events = run(
        [
            start(
                {
                    "input_tokens": 25,
                    "cache_creation_input_tokens": 10,
                    "cache_read_input_tokens": 5,
                    "output_tokens": 1,
                }
            ),
            block(0, {"type": "text", "text": ""}),
            delta(0, {"type": "text_delta", "text": "4"}),
            stop(0),
            ev(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {
                        "input_tokens": 40,
                        "cache_creation_input_tokens": None,
                        "cache_read_input_tokens": 7,
                        "output_tokens": 8,
                    },
                }
            ),
            ev({"type": "message_stop"}),
        ]
    )
    assert stream.usage() == {
        "input_tokens": 40,
        "cache_creation_input_tokens": 10,
        "cache_read_input_tokens": 7,
        "output_tokens": 8,
    }
    assert events[-1][1]["response"]["usage"]["input_tokens"] == 57


def test_server_tool_blocks_and_unknown_events_produce_nothing() -> None:
    stream = MessagesToResponsesStream("m", created_at=CREATED)
    stream.feed(*start())
    assert (
        stream.feed(
            *block(
                0,
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
            )
        )
        == []
    )
    assert stream.feed(*delta(0, {"type": "input_json_delta", "partial_json": '{"q":1}'})) == []
    assert stream.feed(*stop(0)) == []
    assert stream.feed("future_event", {"type": "future_event"}) == []


def test_unary_and_stream_agree_on_an_empty_thinking_block() -> None:
    """A thinking block without text gives a reasoning item with an empty summary."""
    _, events = run(
        [
            start(),
            block(0, {"type": "thinking", "thinking": "", "signature": ""}),
            delta(0, {"type": "signature_delta", "signature": "sig"}),
            stop(0),
            block(1, {"type": "text", "text": ""}),
            delta(1, {"type": "text_delta", "text": "ok"}),
            stop(1),
            message_delta("end_turn"),
            ev({"type": "message_stop"}),
        ]
    )
    final = events[-1][1]["response"]
    message = {
        **FULL_MESSAGE,
        "content": [
            {"type": "thinking", "thinking": "", "signature": "sig"},
            {"type": "text", "text": "ok"},
        ],
        "stop_reason": "end_turn",
        "usage": {
            "input_tokens": 377,
            "cache_creation_input_tokens": 20,
            "cache_read_input_tokens": 100,
            "output_tokens": 65,
            "service_tier": "standard",
        },
    }
    Message.model_validate(message)
    assert final == messages_response_to_responses(message, "claude-sonnet", created_at=CREATED)
    assert final["output"][0]["summary"] == []
