"""OpenAI client, Anthropic upstream: Chat request → Messages request, Message → ChatCompletion.

Every input fixture is validated against the official SDK's request/response types and
every output against the other SDK's, so a shape mistake on either side fails the test.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from anthropic.types import Message
from anthropic.types.message_create_params import (
    MessageCreateParamsNonStreaming,
    MessageCreateParamsStreaming,
)
from openai.types.chat import ChatCompletion
from openai.types.chat.completion_create_params import (
    CompletionCreateParamsNonStreaming,
    CompletionCreateParamsStreaming,
)
from pydantic import TypeAdapter

from tokenomy.errors import InvalidRequest
from tokenomy.providers.translate import chat_request_to_messages, messages_response_to_chat

PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5E"
    "rkJggg=="
)
PDF_B64 = "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg=="
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather for a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    },
}
TIME_TOOL = {"type": "function", "function": {"name": "get_time"}}


def _force(value: Any) -> Any:
    """Walk a pydantic-validated TypedDict; iterating lazy ``Iterable`` fields validates them."""
    if isinstance(value, dict):
        return {k: _force(v) for k, v in value.items()}
    if isinstance(value, list | tuple | Iterator):
        return [_force(v) for v in value]
    return value


# Module-level adapters: a lazily validated iterator must not outlive its validator.
OPENAI_STREAMING = TypeAdapter(CompletionCreateParamsStreaming)
OPENAI_UNARY = TypeAdapter(CompletionCreateParamsNonStreaming)
ANTHROPIC_STREAMING = TypeAdapter(MessageCreateParamsStreaming)
ANTHROPIC_UNARY = TypeAdapter(MessageCreateParamsNonStreaming)


def valid_openai_request(body: dict[str, Any]) -> None:
    _force((OPENAI_STREAMING if body.get("stream") else OPENAI_UNARY).validate_python(body))


def valid_anthropic_request(body: dict[str, Any]) -> None:
    adapter = ANTHROPIC_STREAMING if body.get("stream") else ANTHROPIC_UNARY
    _force(adapter.validate_python(body))


def translate(body: dict[str, Any], default_max_tokens: int = 4096) -> dict[str, Any]:
    valid_openai_request(body)
    before = copy.deepcopy(body)
    out = chat_request_to_messages(body, "claude-sonnet-4-5-20250929", default_max_tokens)
    assert body == before, "the client body must not be mutated"
    valid_anthropic_request(out)
    return out


def user(text: str) -> dict[str, Any]:
    return {"role": "user", "content": text}


# ---------------------------------------------------------------------------- requests


def test_multi_turn_agent_request_with_tools_images_system_and_stops() -> None:
    body = {
        "model": "sonnet",
        "messages": [
            {"role": "system", "content": "You are a weather agent."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What's the weather where these were taken?"},
                    {
                        "type": "image_url",
                        "image_url": {"url": f"data:image/png;base64,{PNG_B64}", "detail": "high"},
                    },
                    {"type": "image_url", "image_url": {"url": "https://example.com/paris.jpg"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Let me check both.",
                "tool_calls": [
                    {
                        "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                    },
                    {
                        "id": "call_9p4bRSKv1hRY0cmCM0KGrA2m",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": ""},
                    },
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                "content": "18°C, cloudy",
            },
            {
                "role": "tool",
                "tool_call_id": "call_9p4bRSKv1hRY0cmCM0KGrA2m",
                "content": [{"type": "text", "text": "14:05 CET"}],
            },
            {"role": "user", "content": "Thanks! And tomorrow?"},
        ],
        "max_completion_tokens": 512,
        "stop": ["\n\nObservation:", "END"],
        "temperature": 1.4,
        "top_p": 0.9,
        "tools": [WEATHER_TOOL, TIME_TOOL],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "user": "user-42",
        "stream": True,
        "stream_options": {"include_usage": True},
        "seed": 7,
        "frequency_penalty": 0.5,
    }
    assert translate(body) == {
        "model": "claude-sonnet-4-5-20250929",
        "system": [
            {"type": "text", "text": "You are a weather agent."},
            {"type": "text", "text": "Use metric units."},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What's the weather where these were taken?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
                    },
                    {
                        "type": "image",
                        "source": {"type": "url", "url": "https://example.com/paris.jpg"},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Let me check both."},
                    {
                        "type": "tool_use",
                        "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "call_9p4bRSKv1hRY0cmCM0KGrA2m",
                        "name": "get_time",
                        "input": {},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                        "content": "18°C, cloudy",
                    },
                    {
                        "type": "tool_result",
                        "tool_use_id": "call_9p4bRSKv1hRY0cmCM0KGrA2m",
                        "content": [{"type": "text", "text": "14:05 CET"}],
                    },
                    {"type": "text", "text": "Thanks! And tomorrow?"},
                ],
            },
        ],
        "max_tokens": 512,
        "stop_sequences": ["\n\nObservation:", "END"],
        "temperature": 1,
        "tools": [
            {
                "name": "get_weather",
                "description": "Current weather for a city.",
                "input_schema": WEATHER_TOOL["function"]["parameters"],
            },  # type: ignore[index]
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "metadata": {"user_id": "user-42"},
        "stream": True,
    }


def test_minimal_request_uses_defaults_and_a_plain_system_string() -> None:
    body = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Be brief."},
            user("Hi"),
        ],
    }
    assert translate(body, default_max_tokens=1024) == {
        "model": "claude-sonnet-4-5-20250929",
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}],
        "max_tokens": 1024,
    }


def test_system_messages_anywhere_are_hoisted_in_order() -> None:
    body = {
        "model": "m",
        "messages": [
            user("a"),
            {"role": "system", "content": "late rule"},
            user("b"),
        ],
    }
    out = translate(body)
    assert out["system"] == "late rule"
    # The two user turns around it merge: Anthropic wants strict alternation.
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}
    ]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"max_tokens": 100}, 100),
        ({"max_completion_tokens": 200}, 200),
        ({"max_tokens": 100, "max_completion_tokens": 200}, 200),
        ({"max_tokens": None}, 4096),
    ],
)
def test_max_tokens(fields: dict[str, Any], expected: int) -> None:
    assert translate({"model": "m", "messages": [user("x")], **fields})["max_tokens"] == expected


def test_stop_string_becomes_a_list() -> None:
    out = translate({"model": "m", "messages": [user("x")], "stop": "###"})
    assert out["stop_sequences"] == ["###"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"temperature": 0}, {"temperature": 0}),
        ({"temperature": 0.7}, {"temperature": 0.7}),
        ({"temperature": 2}, {"temperature": 1}),
        ({"top_p": 0.5}, {"top_p": 0.5}),
        ({"temperature": 0.2, "top_p": 0.5}, {"temperature": 0.2}),
    ],
)
def test_sampling(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    out = translate({"model": "m", "messages": [user("x")], **fields})
    assert {k: out[k] for k in ("temperature", "top_p") if k in out} == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, None),
        ({"tool_choice": "auto"}, {"type": "auto"}),
        ({"tool_choice": "none"}, {"type": "none"}),
        ({"tool_choice": "required"}, {"type": "any"}),
        (
            {"tool_choice": {"type": "function", "function": {"name": "get_time"}}},
            {"type": "tool", "name": "get_time"},
        ),
        ({"parallel_tool_calls": False}, {"type": "auto", "disable_parallel_tool_use": True}),
        ({"parallel_tool_calls": True}, None),
        ({"tool_choice": "none", "parallel_tool_calls": False}, {"type": "none"}),
        (
            {
                "tool_choice": {"type": "function", "function": {"name": "get_time"}},
                "parallel_tool_calls": False,
            },
            {"type": "tool", "name": "get_time", "disable_parallel_tool_use": True},
        ),
    ],
)
def test_tool_choice(fields: dict[str, Any], expected: dict[str, Any] | None) -> None:
    out = translate(
        {"model": "m", "messages": [user("x")], "tools": [WEATHER_TOOL, TIME_TOOL], **fields}
    )
    assert out.get("tool_choice") == expected
    assert [t["name"] for t in out["tools"]] == ["get_weather", "get_time"]


def test_allowed_tools_narrows_the_tool_list() -> None:
    out = translate(
        {
            "model": "m",
            "messages": [user("x")],
            "tools": [WEATHER_TOOL, TIME_TOOL],
            "tool_choice": {
                "type": "allowed_tools",
                "allowed_tools": {
                    "mode": "required",
                    "tools": [{"type": "function", "function": {"name": "get_time"}}],
                },
            },
        }
    )
    assert out["tools"] == [
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}}
    ]
    assert out["tool_choice"] == {"type": "any"}


def test_tool_choice_without_tools_is_dropped() -> None:
    out = chat_request_to_messages(
        {
            "model": "m",
            "messages": [user("x")],
            "tool_choice": "none",
            "parallel_tool_calls": False,
        },
        "claude",
        10,
    )
    assert "tool_choice" not in out and "tools" not in out


def test_tool_call_arguments_and_ids_are_made_anthropic_safe() -> None:
    # A Kimi/vLLM-style id with '.' and ':' and a model that emitted broken JSON earlier.
    body = {
        "model": "m",
        "messages": [
            user("go"),
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "functions.get_weather:0",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city": "Par'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '["Paris"]'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "bad args"},
            {"role": "tool", "tool_call_id": "call_2", "content": ""},
        ],
    }
    out = translate(body)
    assert out["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "functions_get_weather_0",
                    "name": "get_weather",
                    "input": {"_raw": '{"city": "Par'},
                },
                {
                    "type": "tool_use",
                    "id": "call_2",
                    "name": "get_weather",
                    "input": {"_raw": '["Paris"]'},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "functions_get_weather_0",
                    "content": "bad args",
                },
                {"type": "tool_result", "tool_use_id": "call_2"},
            ],
        },
    ]


def test_empty_assistant_text_is_dropped_and_refusal_parts_kept_as_text() -> None:
    body = {
        "model": "m",
        "messages": [
            user("a"),
            {"role": "assistant", "content": ""},
            user("b"),
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "I can't help."}]},
        ],
    }
    assert translate(body)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "I can't help."}]},
    ]


def test_cache_markers_pdf_files_and_structured_output() -> None:
    schema = {
        "type": "object",
        "properties": {"answer": {"type": "string"}},
        "required": ["answer"],
        "additionalProperties": False,
    }
    body = {
        "model": "m",
        "messages": [
            {
                "role": "system",
                "content": [
                    {
                        "type": "text",
                        "text": "Long policy...",
                        "prompt_cache_breakpoint": {"mode": "explicit", "ttl": "12h"},
                    }
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "file",
                        "file": {
                            "filename": "report.pdf",
                            "file_data": f"data:application/pdf;base64,{PDF_B64}",
                        },
                        "prompt_cache_breakpoint": {"mode": "explicit", "ttl": "30m"},
                    },
                    {"type": "text", "text": "Summarise."},
                ],
            },
        ],
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "summary", "schema": schema, "strict": True},
        },
        "safety_identifier": "hash-of-user",
    }
    assert translate(body) == {
        "model": "claude-sonnet-4-5-20250929",
        "system": [
            {
                "type": "text",
                "text": "Long policy...",
                "cache_control": {"type": "ephemeral", "ttl": "1h"},
            }
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "source": {
                            "type": "base64",
                            "media_type": "application/pdf",
                            "data": PDF_B64,
                        },
                        "title": "report.pdf",
                        "cache_control": {"type": "ephemeral"},
                    },
                    {"type": "text", "text": "Summarise."},
                ],
            }
        ],
        "max_tokens": 4096,
        "output_config": {"format": {"type": "json_schema", "schema": schema}},
        "metadata": {"user_id": "hash-of-user"},
    }


def test_anthropic_style_cache_control_on_openai_parts_passes_through() -> None:
    # LiteLLM-era clients put Anthropic's marker on OpenAI parts; the OpenAI SDK types
    # don't know it, so this body skips the input check.
    body = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "ctx", "cache_control": {"type": "ephemeral"}}
                ],
            }
        ],
    }
    out = chat_request_to_messages(body, "claude", 10)
    valid_anthropic_request(out)
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "ctx", "cache_control": {"type": "ephemeral"}}
    ]


def test_jpg_alias_is_normalised() -> None:
    body = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/jpg;base64,/9j/4AAQ"}}
                ],
            }
        ],
    }
    assert translate(body)["messages"][0]["content"][0]["source"] == {
        "type": "base64",
        "media_type": "image/jpeg",
        "data": "/9j/4AAQ",
    }


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"n": 2}, "n"),
        ({"logprobs": True}, "logprobs"),
        ({"top_logprobs": 3}, "top_logprobs"),
        ({"modalities": ["text", "audio"]}, "modalities"),
        ({"audio": {"voice": "alloy", "format": "wav"}}, "audio"),
        ({"functions": [{"name": "f"}]}, "functions"),
        ({"function_call": "auto"}, "function_call"),
        ({"web_search_options": {}}, "web_search_options"),
        ({"moderation": {"model": "omni-moderation-latest"}}, "moderation"),
        ({"tools": [{"type": "custom", "custom": {"name": "sql"}}]}, "tools[0]"),
        (
            {"tools": [WEATHER_TOOL], "tool_choice": {"type": "custom", "custom": {"name": "x"}}},
            "tool_choice",
        ),
        ({"max_tokens": "10"}, "max_tokens"),
        ({"temperature": "hot"}, "temperature"),
        ({"stop": 5}, "stop"),
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "system", "content": "only rules"}]}, "messages"),
        ({"messages": [{"role": "function", "name": "f", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "wizard", "content": "x"}]}, "messages[0].role"),
        ({"messages": [{"role": "tool", "content": "x"}]}, "messages[0].tool_call_id"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "file", "file": {"file_id": "file-abc"}}]}
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "file", "file": {"file_data": "data:text/csv;base64,YSxi"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image_url",
                                "image_url": {"url": "data:image/bmp;base64,Qk0="},
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "data:image/png,rawbytes"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "ftp://example.com/a.png"}}
                        ],
                    }
                ]
            },
            "messages[0].content[0]",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}
                ]
            },
            "messages[0].function_call",
        ),
    ],
)
def test_untranslatable_requests_are_rejected_with_param(
    fields: dict[str, Any], param: str
) -> None:
    body = {"model": "m", "messages": [user("x")], **fields}
    with pytest.raises(InvalidRequest) as info:
        chat_request_to_messages(body, "claude", 10)
    assert info.value.param == param
    assert info.value.status == 400
    assert info.value.message


# --------------------------------------------------------------------------- responses

# A real-shaped Message: text, then a client tool call, with prompt caching in play.
TOOL_MESSAGE = {
    "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4-5-20250929",
    "content": [
        {"type": "text", "text": "I'll check the weather in Paris."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"city": "Paris", "unit": "celsius"},
        },
    ],
    "stop_reason": "tool_use",
    "stop_sequence": None,
    "usage": {
        "input_tokens": 472,
        "cache_creation_input_tokens": 1024,
        "cache_read_input_tokens": 2048,
        "cache_creation": {"ephemeral_5m_input_tokens": 1024, "ephemeral_1h_input_tokens": 0},
        "output_tokens": 89,
        "service_tier": "standard",
    },
}


def to_chat(resp: dict[str, Any]) -> dict[str, Any]:
    Message.model_validate(resp)
    out = messages_response_to_chat(resp, "sonnet", created=1_700_000_000)
    ChatCompletion.model_validate(out)
    return out


def test_tool_use_message_with_cache_usage() -> None:
    assert to_chat(TOOL_MESSAGE) == {
        "id": "chatcmpl-msg_01XFDUDYJgAACzvnptvVoYEL",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "sonnet",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "I'll check the weather in Paris.",
                    "refusal": None,
                    "annotations": [],
                    "tool_calls": [
                        {
                            "id": "toolu_01A09q90qw90lq917835lq9",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"city":"Paris","unit":"celsius"}',
                            },
                        }
                    ],
                },
                "logprobs": None,
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 472 + 2048 + 1024,
            "completion_tokens": 89,
            "total_tokens": 472 + 2048 + 1024 + 89,
            "prompt_tokens_details": {"cached_tokens": 2048, "cache_write_tokens": 1024},
        },
    }


def test_the_openai_sdk_reads_the_translation() -> None:
    completion = ChatCompletion.model_validate(to_chat(TOOL_MESSAGE))
    assert completion.choices[0].message.tool_calls is not None
    call = completion.choices[0].message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert completion.usage is not None
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 2048


def test_thinking_becomes_reasoning_content_and_text_blocks_concatenate() -> None:
    resp = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-opus-4-1",
        "content": [
            {"type": "thinking", "thinking": "The user wants a haiku.", "signature": "EqQBCg"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy"},
            {"type": "text", "text": "Autumn moonlight—"},
            {"type": "text", "text": "\na worm digs silently"},
        ],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 30,
            "output_tokens": 120,
            "output_tokens_details": {"thinking_tokens": 90},
        },
    }
    out = to_chat(resp)
    assert out["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Autumn moonlight—\na worm digs silently",
        "refusal": None,
        "annotations": [],
        "reasoning_content": "The user wants a haiku.",
    }
    assert out["choices"][0]["finish_reason"] == "stop"
    assert out["usage"] == {
        "prompt_tokens": 30,
        "completion_tokens": 120,
        "total_tokens": 150,
        "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 90},
    }


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("refusal", "content_filter"),
        (None, "stop"),
    ],
)
def test_stop_reason_to_finish_reason(stop_reason: str | None, finish: str) -> None:
    resp = {**TOOL_MESSAGE, "content": [{"type": "text", "text": "x"}], "stop_reason": stop_reason}
    assert to_chat(resp)["choices"][0]["finish_reason"] == finish


def test_pure_tool_call_has_null_content_and_empty_answer_has_empty_string() -> None:
    tool_only = {**TOOL_MESSAGE, "content": TOOL_MESSAGE["content"][1:]}  # type: ignore[index]
    assert to_chat(tool_only)["choices"][0]["message"]["content"] is None
    empty = {**TOOL_MESSAGE, "content": [], "stop_reason": "max_tokens"}
    assert to_chat(empty)["choices"][0]["message"]["content"] == ""


def test_missing_usage_counts_zero() -> None:
    out = messages_response_to_chat({"id": "msg_x", "content": []}, "m", created=1)
    ChatCompletion.model_validate(out)
    assert out["usage"]["total_tokens"] == 0
