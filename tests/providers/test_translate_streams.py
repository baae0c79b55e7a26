"""Stream translation both ways, fed with full real-shaped provider streams.

Every event the translators consume is validated with the upstream's SDK types and every
event they produce with the client's SDK types; the produced streams are also run through
each SDK's own stream accumulator, so a client library sees a coherent message.
"""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message, RawMessageStreamEvent
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk
from pydantic import TypeAdapter

from tokenomy.errors import UpstreamError
from tokenomy.providers.translate import ChatToMessagesStream, MessagesToChatStream

ANTHROPIC_EVENT: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
CREATED = 1_700_000_000


def ev(data: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """An SSE event as the gateway's parser hands it over: (event name, parsed data)."""
    return data["type"], data


def delta_ev(index: int, delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ev({"type": "content_block_delta", "index": index, "delta": delta})


# ------------------------------------------------------------ Anthropic → OpenAI chunks

# Shaped like Anthropic's wire stream: text, then a client tool call with its input
# streamed as JSON fragments; a ping; input counted at message_start, output at
# message_delta.
TOOL_STREAM = [
    ev(
        {
            "type": "message_start",
            "message": {
                "id": "msg_01Wx3PKm7zQfh9eTtAqT7RLs",
                "type": "message",
                "role": "assistant",
                "model": "claude-sonnet-4-5-20250929",
                "content": [],
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 377,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 1,
                    "service_tier": "standard",
                },
            },
        }
    ),
    ev({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
    ev({"type": "ping"}),
    delta_ev(0, {"type": "text_delta", "text": "I"}),
    delta_ev(0, {"type": "text_delta", "text": "'ll look up Lyon."}),
    ev({"type": "content_block_stop", "index": 0}),
    ev(
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "name": "get_weather",
                "caller": {"type": "direct"},
                "input": {},
            },
        }
    ),
    delta_ev(1, {"type": "input_json_delta", "partial_json": ""}),
    delta_ev(1, {"type": "input_json_delta", "partial_json": '{"ci'}),
    delta_ev(1, {"type": "input_json_delta", "partial_json": 'ty": "Ly'}),
    delta_ev(1, {"type": "input_json_delta", "partial_json": 'on"}'}),
    ev({"type": "content_block_stop", "index": 1}),
    ev(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 65},
        }
    ),
    ev({"type": "message_stop"}),
]

# Extended thinking and prompt caching; message_delta repeats final cumulative counts.
THINKING_STREAM = [
    ev(
        {
            "type": "message_start",
            "message": {
                "id": "msg_01ThinkCache",
                "type": "message",
                "role": "assistant",
                "content": [],
                "model": "claude-opus-4-1",
                "stop_reason": None,
                "stop_sequence": None,
                "usage": {
                    "input_tokens": 25,
                    "cache_creation_input_tokens": 10,
                    "cache_read_input_tokens": 5,
                    "cache_creation": {
                        "ephemeral_5m_input_tokens": 10,
                        "ephemeral_1h_input_tokens": 0,
                    },
                    "output_tokens": 1,
                    "service_tier": "standard",
                },
            },
        }
    ),
    ev(
        {
            "type": "content_block_start",
            "index": 0,
            "content_block": {"type": "thinking", "thinking": "", "signature": ""},
        }
    ),
    delta_ev(0, {"type": "thinking_delta", "thinking": "Two plus two."}),
    delta_ev(0, {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxB"}),
    ev({"type": "content_block_stop", "index": 0}),
    ev({"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
    delta_ev(1, {"type": "text_delta", "text": "4"}),
    ev({"type": "content_block_stop", "index": 1}),
    ev(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": None},
            "usage": {
                "input_tokens": 40,
                "cache_creation_input_tokens": 12,
                "cache_read_input_tokens": 7,
                "output_tokens": 8,
                "output_tokens_details": {"thinking_tokens": 3},
            },
        }
    ),
    ev({"type": "message_stop"}),
]


def run_anthropic(
    events: list[tuple[str, dict[str, Any]]], include_usage: bool
) -> tuple[MessagesToChatStream, list[dict[str, Any]]]:
    stream = MessagesToChatStream("sonnet", include_usage, created=CREATED)
    chunks: list[dict[str, Any]] = []
    for name, data in events:
        if name != "ping":
            ANTHROPIC_EVENT.validate_python(data)
        chunks.extend(stream.feed(name, data))
    chunks.extend(stream.finish())
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk)
    return stream, chunks


def chunk(
    delta: dict[str, Any],
    finish: str | None = None,
    *,
    usage: bool = True,
    cid: str = "chatcmpl-msg_01Wx3PKm7zQfh9eTtAqT7RLs",
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": CREATED,
        "model": "sonnet",
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    if usage:
        out["usage"] = None
    return out


def test_tool_stream_with_usage() -> None:
    stream, chunks = run_anthropic(TOOL_STREAM, include_usage=True)
    assert chunks == [
        chunk({"role": "assistant", "content": "", "refusal": None}),
        chunk({"content": "I"}),
        chunk({"content": "'ll look up Lyon."}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Ly'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'on"}'}}]}),
        chunk({}, "tool_calls"),
        {
            "id": "chatcmpl-msg_01Wx3PKm7zQfh9eTtAqT7RLs",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": "sonnet",
            "choices": [],
            "usage": {
                "prompt_tokens": 377,
                "completion_tokens": 65,
                "total_tokens": 442,
                "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            },
        },
    ]
    assert stream.finished
    assert stream.usage() == {
        "input_tokens": 377,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 65,
        "service_tier": "standard",
    }


def test_the_openai_sdk_accumulates_the_translated_stream() -> None:
    _, chunks = run_anthropic(TOOL_STREAM, include_usage=True)
    state: ChatCompletionStreamState[Any] = ChatCompletionStreamState()
    for c in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(c))
    completion = state.get_final_completion()
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content == "I'll look up Lyon."
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city": "Lyon"}'
    assert completion.usage is not None and completion.usage.total_tokens == 442


def test_without_include_usage_there_is_no_usage_anywhere() -> None:
    _, chunks = run_anthropic(TOOL_STREAM, include_usage=False)
    assert all("usage" not in c for c in chunks)
    assert chunks[-1] == chunk({}, "tool_calls", usage=False)


def test_thinking_and_cache_usage_merge_across_events() -> None:
    stream, chunks = run_anthropic(THINKING_STREAM, include_usage=True)
    cid = "chatcmpl-msg_01ThinkCache"
    assert chunks == [
        chunk({"role": "assistant", "content": "", "refusal": None}, cid=cid),
        chunk({"reasoning_content": "Two plus two."}, cid=cid),
        chunk({"content": "4"}, cid=cid),
        chunk({}, "stop", cid=cid),
        {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": "sonnet",
            "choices": [],
            # message_delta's cumulative counts overwrite message_start's.
            "usage": {
                "prompt_tokens": 40 + 7 + 12,
                "completion_tokens": 8,
                "total_tokens": 40 + 7 + 12 + 8,
                "prompt_tokens_details": {"cached_tokens": 7, "cache_write_tokens": 12},
                "completion_tokens_details": {"reasoning_tokens": 3},
            },
        },
    ]
    usage = stream.usage()
    assert usage is not None
    # The 5m/1h split only comes with message_start; it survives the merge.
    assert usage["cache_creation"] == {
        "ephemeral_5m_input_tokens": 10,
        "ephemeral_1h_input_tokens": 0,
    }
    assert usage["input_tokens"] == 40


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("refusal", "content_filter"),
        ("model_context_window_exceeded", "length"),
    ],
)
def test_finish_reasons(stop_reason: str, finish: str) -> None:
    events = [e for e in THINKING_STREAM]
    name, delta = events[-2]
    events[-2] = (name, {**delta, "delta": {"stop_reason": stop_reason, "stop_sequence": None}})
    _, chunks = run_anthropic(events, include_usage=False)
    assert chunks[-1]["choices"][0]["finish_reason"] == finish


def test_error_event_raises_upstream_error_and_keeps_usage() -> None:
    stream = MessagesToChatStream("sonnet", True, created=CREATED)
    for name, data in TOOL_STREAM[:4]:
        stream.feed(name, data)
    error = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(UpstreamError) as info:
        stream.feed("error", error)
    assert info.value.upstream_status == 529
    assert "overloaded_error" in info.value.message and "Overloaded" in info.value.message
    assert info.value.upstream_body == error
    assert stream.usage() is not None and stream.usage()["input_tokens"] == 377  # type: ignore[index]


def test_cut_streams() -> None:
    # Cut before message_delta: no finish_reason can be invented.
    stream = MessagesToChatStream("sonnet", True, created=CREATED)
    for name, data in TOOL_STREAM[:6]:
        stream.feed(name, data)
    assert stream.finish() == [] and not stream.finished
    # Cut after message_delta: the usage chunk is still owed, once.
    stream = MessagesToChatStream("sonnet", True, created=CREATED)
    for name, data in TOOL_STREAM[:-1]:
        stream.feed(name, data)
    tail = stream.finish()
    assert [c["choices"] for c in tail] == [[]]
    assert stream.finish() == []
    assert stream.feed(*TOOL_STREAM[-1]) == []


# ------------------------------------------------------------ OpenAI chunks → Anthropic


def oc(
    delta: dict[str, Any] | None, finish: str | None = None, usage: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A gpt-4.1 stream chunk as the API sends it with include_usage."""
    return {
        "id": "chatcmpl-BX2p7fsJ8nD4uTkVfbGe",
        "object": "chat.completion.chunk",
        "created": 1747000000,
        "model": "gpt-4.1-2025-04-14",
        "service_tier": "default",
        "system_fingerprint": "fp_b3f1157249",
        "choices": []
        if delta is None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        "usage": usage,
    }


OPENAI_USAGE: dict[str, Any] = {
    "prompt_tokens": 2006,
    "completion_tokens": 31,
    "total_tokens": 2037,
    "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
    "completion_tokens_details": {
        "reasoning_tokens": 0,
        "audio_tokens": 0,
        "accepted_prediction_tokens": 0,
        "rejected_prediction_tokens": 0,
    },
}
ANTHROPIC_USAGE = {
    "input_tokens": 86,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 1920,
    "output_tokens": 31,
    "output_tokens_details": {"thinking_tokens": 0},
}
MESSAGE_START = (
    "message_start",
    {
        "type": "message_start",
        "message": {
            "id": "msg_chatcmpl-BX2p7fsJ8nD4uTkVfbGe",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        },
    },
)


def block_start(index: int, block: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return (
        "content_block_start",
        {"type": "content_block_start", "index": index, "content_block": block},
    )


def block_delta(index: int, delta: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def block_stop(index: int) -> tuple[str, dict[str, Any]]:
    return ("content_block_stop", {"type": "content_block_stop", "index": index})


def text(index: int, value: str) -> tuple[str, dict[str, Any]]:
    return block_delta(index, {"type": "text_delta", "text": value})


def args(index: int, value: str) -> tuple[str, dict[str, Any]]:
    return block_delta(index, {"type": "input_json_delta", "partial_json": value})


def ending(stop_reason: str, usage: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                "usage": usage,
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]


def run_openai(chunks: list[dict[str, Any]]) -> tuple[ChatToMessagesStream, list[Any], Message]:
    """Feed chunks then finish(); validate everything; accumulate like the Anthropic SDK."""
    stream = ChatToMessagesStream("claude-sonnet-4-5")
    events: list[tuple[str, dict[str, Any]]] = []
    for c in chunks:
        ChatCompletionChunk.model_validate(c)
        events.extend(stream.feed(c))
    events.extend(stream.finish())
    snapshot = None
    json_bufs: dict[int, bytes] = {}
    for name, data in events:
        assert name == data["type"]
        event = ANTHROPIC_EVENT.validate_python(data)
        snapshot = accumulate_event(event=event, current_snapshot=snapshot, json_bufs=json_bufs)
    assert snapshot is not None
    return stream, events, Message.model_validate(snapshot.model_dump())


TEXT_CHUNKS = [
    oc({"role": "assistant", "content": "", "refusal": None}),
    oc({"content": "Hello"}),
    oc({"content": " there!"}),
    oc({}, "stop"),
]


@pytest.mark.parametrize("placement", ["separate chunk", "finish chunk", "every chunk", "never"])
def test_text_stream_with_usage_anywhere(placement: str) -> None:
    chunks = [dict(c) for c in TEXT_CHUNKS]
    if placement == "separate chunk":
        chunks.append(oc(None, usage=OPENAI_USAGE))
    elif placement == "finish chunk":
        chunks[-1]["usage"] = OPENAI_USAGE
    elif placement == "every chunk":
        # Some compatible servers repeat cumulative usage on every chunk.
        for i, c in enumerate(chunks):
            c["usage"] = {
                **OPENAI_USAGE,
                "completion_tokens": i,
                "total_tokens": OPENAI_USAGE["prompt_tokens"] + i,
            }
        chunks.append(oc(None, usage=OPENAI_USAGE))
    stream, events, message = run_openai(chunks)
    usage = ANTHROPIC_USAGE if placement != "never" else {"output_tokens": 0}
    assert events == [
        MESSAGE_START,
        block_start(0, {"type": "text", "text": ""}),
        text(0, "Hello"),
        text(0, " there!"),
        block_stop(0),
        *ending("end_turn", usage),
    ]
    assert message.content[0].type == "text" and message.content[0].text == "Hello there!"
    assert stream.usage() == (OPENAI_USAGE if placement != "never" else None)
    assert stream.stopped and stream.finish() == []


def test_parallel_tool_call_stream() -> None:
    chunks = [
        oc({"role": "assistant", "content": "Checking.", "refusal": None}),
        oc(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        oc({"tool_calls": [{"index": 0, "function": {"arguments": '{"ci'}}]}),
        oc({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Paris"}'}}]}),
        oc(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_9p4bRSKv1hRY0cmCM0KGrA2m",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": ""},
                    }
                ]
            }
        ),
        oc({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
        oc({}, "tool_calls"),
        oc(None, usage=OPENAI_USAGE),
    ]
    _, events, message = run_openai(chunks)
    assert events == [
        MESSAGE_START,
        block_start(0, {"type": "text", "text": ""}),
        text(0, "Checking."),
        block_stop(0),
        block_start(
            1,
            {
                "type": "tool_use",
                "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                "name": "get_weather",
                "input": {},
            },
        ),
        args(1, '{"ci'),
        args(1, 'ty": "Paris"}'),
        block_stop(1),
        block_start(
            2,
            {
                "type": "tool_use",
                "id": "call_9p4bRSKv1hRY0cmCM0KGrA2m",
                "name": "get_time",
                "input": {},
            },
        ),
        args(2, "{}"),
        block_stop(2),
        *ending("tool_use", ANTHROPIC_USAGE),
    ]
    assert [(b.type, getattr(b, "input", None)) for b in message.content] == [
        ("text", None),
        ("tool_use", {"city": "Paris"}),
        ("tool_use", {}),
    ]
    assert message.stop_reason == "tool_use"
    assert message.usage.input_tokens == 86
    assert message.usage.cache_read_input_tokens == 1920


def test_whole_tool_calls_without_index_and_ids_needing_repair() -> None:
    # Gemini/Ollama-style: complete calls in one delta, no index, odd ids, object args.
    chunks = [
        oc(
            {
                "role": "assistant",
                "tool_calls": [
                    {
                        "id": "functions.search:0",
                        "type": "function",
                        "function": {"name": "search", "arguments": '{"q":"tokenomy"}'},
                    },
                    {
                        "id": "functions.search:1",
                        "type": "function",
                        "function": {"name": "search", "arguments": {"q": "gateway"}},
                    },
                ],
            }
        ),
        oc({}, "stop"),  # mislabelled: a tool call ends with "stop"
    ]
    stream = ChatToMessagesStream("claude-sonnet-4-5")
    events = [e for c in chunks for e in stream.feed(c)] + stream.finish()
    for _, data in events:
        ANTHROPIC_EVENT.validate_python(data)
    assert events[1:] == [
        block_start(
            0, {"type": "tool_use", "id": "functions_search_0", "name": "search", "input": {}}
        ),
        args(0, '{"q":"tokenomy"}'),
        block_stop(0),
        block_start(
            1, {"type": "tool_use", "id": "functions_search_1", "name": "search", "input": {}}
        ),
        args(1, '{"q":"gateway"}'),
        block_stop(1),
        *ending("tool_use", {"output_tokens": 0}),
    ]


def test_refusal_stream() -> None:
    chunks = [
        oc({"role": "assistant", "content": None, "refusal": ""}),
        oc({"refusal": "I can't help with that."}),
        oc({}, "stop"),
        oc(None, usage=OPENAI_USAGE),
    ]
    _, events, message = run_openai(chunks)
    assert message.stop_reason == "refusal"
    assert message.content[0].type == "text"
    assert message.content[0].text == "I can't help with that."
    assert events[-2][1]["delta"]["stop_reason"] == "refusal"


def test_stream_that_ends_without_finish_reason() -> None:
    _, events, message = run_openai([oc({"role": "assistant", "content": "partial"})])
    assert events[-3:] == [block_stop(0), *ending("end_turn", {"output_tokens": 0})]
    assert message.content[0].type == "text"


def test_length_finish() -> None:
    _, events, _ = run_openai([*TEXT_CHUNKS[:-1], oc({}, "length"), oc(None, usage=OPENAI_USAGE)])
    assert events[-2][1]["delta"]["stop_reason"] == "max_tokens"


def test_chunks_after_stop_only_update_usage() -> None:
    stream = ChatToMessagesStream("claude")
    for c in TEXT_CHUNKS:
        stream.feed(c)
    stream.finish()
    assert stream.feed(oc({"content": "late"}, usage=OPENAI_USAGE)) == []
    assert stream.usage() == OPENAI_USAGE


def test_nothing_fed_means_nothing_to_finish() -> None:
    stream = ChatToMessagesStream("claude")
    assert stream.finish() == [] and not stream.started


def test_error_chunk_raises() -> None:
    stream = ChatToMessagesStream("claude")
    stream.feed(TEXT_CHUNKS[0])
    error = {
        "error": {
            "message": "The server had an error while processing your request.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    with pytest.raises(UpstreamError) as info:
        stream.feed(error)
    assert "server_error" in info.value.message
    assert "The server had an error" in info.value.message
    assert info.value.upstream_body == error


def test_interleaved_tool_fragments_raise() -> None:
    stream = ChatToMessagesStream("claude")
    stream.feed(
        oc(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "a", "arguments": ""},
                    }
                ]
            }
        )
    )
    stream.feed(
        oc(
            {
                "tool_calls": [
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "b", "arguments": ""},
                    }
                ]
            }
        )
    )
    with pytest.raises(UpstreamError):
        stream.feed(oc({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}))
