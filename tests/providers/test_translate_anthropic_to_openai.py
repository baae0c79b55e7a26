"""Anthropic client, OpenAI upstream: Messages request → Chat request, ChatCompletion → Message.

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
from tokenomy.providers.translate import chat_response_to_messages, messages_request_to_chat

PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5E"
    "rkJggg=="
)
PDF_B64 = "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg=="
READ_SCHEMA = {
    "type": "object",
    "properties": {"file_path": {"type": "string"}},
    "required": ["file_path"],
}
BASH_SCHEMA = {"type": "object", "properties": {"command": {"type": "string"}}}
READ_ID = "toolu_01D7FLrfh4GYq7yT1ULFeyMV"
BASH_ID = "toolu_01A09q90qw90lq917835lq9"

# Module-level adapters: a lazily validated iterator must not outlive its validator.
OPENAI_STREAMING = TypeAdapter(CompletionCreateParamsStreaming)
OPENAI_UNARY = TypeAdapter(CompletionCreateParamsNonStreaming)
ANTHROPIC_STREAMING = TypeAdapter(MessageCreateParamsStreaming)
ANTHROPIC_UNARY = TypeAdapter(MessageCreateParamsNonStreaming)


def _force(value: Any) -> Any:
    """Walk a pydantic-validated TypedDict; iterating lazy ``Iterable`` fields validates them."""
    if isinstance(value, dict):
        return {k: _force(v) for k, v in value.items()}
    if isinstance(value, list | tuple | Iterator):
        return [_force(v) for v in value]
    return value


def translate(body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    _force((ANTHROPIC_STREAMING if body.get("stream") else ANTHROPIC_UNARY).validate_python(body))
    before = copy.deepcopy(body)
    out = messages_request_to_chat(body, "gpt-4.1", **kw)
    assert body == before, "the client body must not be mutated"
    _force((OPENAI_STREAMING if out.get("stream") else OPENAI_UNARY).validate_python(out))
    return out


def base(**fields: Any) -> dict[str, Any]:
    return {
        "model": "claude",
        "max_tokens": 256,
        "messages": [{"role": "user", "content": "Hi"}],
        **fields,
    }


# ---------------------------------------------------------------------------- requests


def test_claude_code_style_request_with_tools_results_images_and_cache_markers() -> None:
    body = {
        "model": "claude-sonnet-4-5",
        "max_tokens": 32000,
        "system": [
            {
                "type": "text",
                "text": "You are Claude Code, Anthropic's official CLI for Claude.",
                "cache_control": {"type": "ephemeral"},
            },
            {"type": "text", "text": "Use the tools to answer."},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What's in this screenshot and in README.md?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
                    },
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "thinking",
                        "thinking": "I should read the file.",
                        "signature": "EqQBCkYIBxgCKkB",
                    },
                    {"type": "text", "text": "Let me read it."},
                    {
                        "type": "tool_use",
                        "id": READ_ID,
                        "name": "Read",
                        "input": {"file_path": "README.md"},
                    },
                    {"type": "tool_use", "id": BASH_ID, "name": "Bash", "input": {"command": "ls"}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": READ_ID,
                        "content": [
                            {"type": "text", "text": "# tokenomy"},
                            {
                                "type": "image",
                                "source": {"type": "url", "url": "https://example.com/logo.png"},
                            },
                        ],
                    },
                    {
                        "type": "tool_result",
                        "tool_use_id": BASH_ID,
                        "content": "ls: permission denied",
                        "is_error": True,
                    },
                    {"type": "text", "text": "Continue.", "cache_control": {"type": "ephemeral"}},
                ],
            },
        ],
        "stop_sequences": ["</answer>"],
        "top_k": 40,
        "tools": [
            {"name": "Read", "description": "Read a file.", "input_schema": READ_SCHEMA},
            {"name": "Bash", "input_schema": BASH_SCHEMA, "cache_control": {"type": "ephemeral"}},
        ],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "metadata": {"user_id": "user_abc_account_def_session_123"},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "stream": True,
    }
    assert translate(body) == {
        "model": "gpt-4.1",
        "messages": [
            {
                "role": "system",
                "content": "You are Claude Code, Anthropic's official CLI for "
                "Claude.\n\nUse the tools to answer.",
            },
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What's in this screenshot and in README.md?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Let me read it.",
                "tool_calls": [
                    {
                        "id": READ_ID,
                        "type": "function",
                        "function": {"name": "Read", "arguments": '{"file_path":"README.md"}'},
                    },
                    {
                        "id": BASH_ID,
                        "type": "function",
                        "function": {"name": "Bash", "arguments": '{"command":"ls"}'},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": READ_ID, "content": "# tokenomy"},
            {"role": "tool", "tool_call_id": BASH_ID, "content": "Error: ls: permission denied"},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": f"Images returned by tool call {READ_ID}:"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/logo.png"}},
                    {"type": "text", "text": "Continue."},
                ],
            },
        ],
        "max_tokens": 32000,
        "stop": ["</answer>"],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "Read",
                    "description": "Read a file.",
                    "parameters": READ_SCHEMA,
                },
            },
            {"type": "function", "function": {"name": "Bash", "parameters": BASH_SCHEMA}},
        ],
        "tool_choice": "required",
        "parallel_tool_calls": False,
        "user": "user_abc_account_def_session_123",
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def test_minimal_request() -> None:
    assert translate(base(system="Be brief.", temperature=0.2, top_p=0.8)) == {
        "model": "gpt-4.1",
        "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        "max_tokens": 256,
        "temperature": 0.2,
        "top_p": 0.8,
    }


def test_max_completion_tokens_for_reasoning_models() -> None:
    out = translate(base(), max_tokens_field="max_completion_tokens")
    assert out["max_completion_tokens"] == 256 and "max_tokens" not in out


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        (
            {"type": "tool", "name": "Read"},
            {"tool_choice": {"type": "function", "function": {"name": "Read"}}},
        ),
        (
            {"type": "auto", "disable_parallel_tool_use": True},
            {"tool_choice": "auto", "parallel_tool_calls": False},
        ),
        (None, {}),
    ],
)
def test_tool_choice(choice: dict[str, Any] | None, expected: dict[str, Any]) -> None:
    fields: dict[str, Any] = {"tools": [{"name": "Read", "input_schema": READ_SCHEMA}]}
    if choice is not None:
        fields["tool_choice"] = choice
    out = translate(base(**fields))
    assert {k: out[k] for k in ("tool_choice", "parallel_tool_calls") if k in out} == expected


def test_strict_tools_and_structured_output() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"type": "string"}},
        "required": ["a"],
        "additionalProperties": False,
    }
    out = translate(
        base(
            tools=[{"type": "custom", "name": "Read", "input_schema": READ_SCHEMA, "strict": True}],
            output_config={"format": {"type": "json_schema", "schema": schema}},
        )
    )
    assert out["tools"] == [
        {
            "type": "function",
            "function": {"name": "Read", "parameters": READ_SCHEMA, "strict": True},
        }
    ]
    assert out["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }


def test_documents_system_role_turns_and_thinking_only_turns() -> None:
    body = base(
        messages=[
            {
                "role": "user",
                "content": [
                    {
                        "type": "document",
                        "title": "Q3.pdf",
                        "source": {
                            "type": "base64",
                            "media_type": "application/pdf",
                            "data": PDF_B64,
                        },
                    },
                    {
                        "type": "document",
                        "source": {
                            "type": "text",
                            "media_type": "text/plain",
                            "data": "plain notes",
                        },
                    },
                    {"type": "text", "text": "Compare."},
                ],
            },
            {
                "role": "assistant",
                "content": [{"type": "redacted_thinking", "data": "EmwKAhgBEgy"}],
            },
            {"role": "system", "content": "Mid-conversation instruction."},
            {"role": "user", "content": "Go on."},
            {"role": "assistant", "content": "Sure"},
        ]
    )
    assert translate(body)["messages"] == [
        {
            "role": "user",
            "content": [
                {
                    "type": "file",
                    "file": {
                        "filename": "Q3.pdf",
                        "file_data": f"data:application/pdf;base64,{PDF_B64}",
                    },
                },
                {"type": "text", "text": "plain notes"},
                {"type": "text", "text": "Compare."},
            ],
        },
        {"role": "system", "content": "Mid-conversation instruction."},
        {"role": "user", "content": "Go on."},
        {"role": "assistant", "content": "Sure"},
    ]


def test_tool_result_variants() -> None:
    body = base(
        messages=[
            {"role": "user", "content": "run"},
            {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}},
                    {"type": "tool_use", "id": "toolu_2", "name": "Bash", "input": {}},
                    {"type": "tool_use", "id": "toolu_3", "name": "Bash", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1"},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "is_error": True},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_3",
                        "content": [
                            {"type": "text", "text": "line 1"},
                            {"type": "text", "text": "line 2"},
                        ],
                    },
                ],
            },
        ]
    )
    assert translate(body)["messages"][1:] == [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": f"toolu_{i}",
                    "type": "function",
                    "function": {"name": "Bash", "arguments": "{}"},
                }
                for i in (1, 2, 3)
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_1", "content": ""},
        {"role": "tool", "tool_call_id": "toolu_2", "content": "Error"},
        {"role": "tool", "tool_call_id": "toolu_3", "content": "line 1\nline 2"},
    ]


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role"),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
        ({"tools": [{"type": "bash_20250124", "name": "bash"}]}, "tools[0]"),
        (
            {
                "tool_choice": {"type": "sometimes"},
                "tools": [{"name": "Read", "input_schema": READ_SCHEMA}],
            },
            "tool_choice",
        ),
        ({"stop_sequences": "END"}, "stop_sequences"),
        ({"max_tokens": 1.5}, "max_tokens"),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "file",
                                    "file_id": "file_011CNha8iCJcU1wXNR6q4V8w",
                                },
                            },
                        ],
                    }
                ]
            },
            "messages[0].content[0].source",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "document",
                                "source": {"type": "url", "url": "https://example.com/a.pdf"},
                            },
                        ],
                    }
                ]
            },
            "messages[0].content[0].source",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "search_result",
                                "source": "https://example.com",
                                "title": "t",
                                "content": [{"type": "text", "text": "x"}],
                            },
                        ],
                    }
                ]
            },
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {"role": "user", "content": [{"type": "tool_result", "content": "no id"}]}
                ]
            },
            "messages[0].content[0].tool_use_id",
        ),
    ],
)
def test_untranslatable_requests_are_rejected_with_param(
    fields: dict[str, Any], param: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        messages_request_to_chat(base(**fields), "gpt-4.1")
    assert info.value.param == param
    assert info.value.message


# --------------------------------------------------------------------------- responses

# A real-shaped gpt-4.1 completion: text plus two parallel tool calls, prompt cache hit.
TOOL_COMPLETION = {
    "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
    "object": "chat.completion",
    "created": 1741569952,
    "model": "gpt-4.1-2025-04-14",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Checking both.",
                "tool_calls": [
                    {
                        "id": "call_DdmO9pD3xa9XTPNJ32zg2hcA",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "call_9p4bRSKv1hRY0cmCM0KGrA2m",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": "{}"},
                    },
                ],
                "refusal": None,
                "annotations": [],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 2006,
        "completion_tokens": 300,
        "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    },
    "service_tier": "default",
    "system_fingerprint": "fp_fc9f1d7035",
}


def to_message(resp: dict[str, Any]) -> dict[str, Any]:
    ChatCompletion.model_validate(resp)
    out = chat_response_to_messages(resp, "claude-sonnet-4-5")
    Message.model_validate(out)
    return out


def with_message(**message: Any) -> dict[str, Any]:
    resp = copy.deepcopy(TOOL_COMPLETION)
    resp["choices"][0]["message"] = {"role": "assistant", **message}  # type: ignore[index]
    return resp


def test_tool_call_completion_with_cached_prompt() -> None:
    assert to_message(TOOL_COMPLETION) == {
        "id": "msg_chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5",
        "content": [
            {"type": "text", "text": "Checking both."},
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
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 2006 - 1920,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 1920,
            "output_tokens": 300,
            "output_tokens_details": {"thinking_tokens": 0},
        },
    }


def test_the_anthropic_sdk_reads_the_translation() -> None:
    message = Message.model_validate(to_message(TOOL_COMPLETION))
    assert [b.type for b in message.content] == ["text", "tool_use", "tool_use"]
    assert message.usage.cache_read_input_tokens == 1920


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ('{"city": "Par', {"_raw": '{"city": "Par'}),
        ('["Paris"]', {"_raw": '["Paris"]'}),
        ("", {}),
        ('{"nested": {"a": [1, 2]}}', {"nested": {"a": [1, 2]}}),
    ],
)
def test_tool_call_arguments(arguments: str, expected: dict[str, Any]) -> None:
    resp = with_message(
        content=None,
        tool_calls=[
            {
                "id": "functions.lookup:0",
                "type": "function",
                "function": {"name": "lookup", "arguments": arguments},
            }
        ],
    )
    out = to_message(resp)
    assert out["content"] == [
        {"type": "tool_use", "id": "functions_lookup_0", "name": "lookup", "input": expected}
    ]


@pytest.mark.parametrize(
    ("finish", "tools", "stop_reason"),
    [
        ("stop", False, "end_turn"),
        ("length", False, "max_tokens"),
        ("tool_calls", True, "tool_use"),
        ("content_filter", False, "refusal"),
        ("stop", True, "tool_use"),  # compatible servers that mislabel a tool call
    ],
)
def test_finish_reason_to_stop_reason(finish: str, tools: bool, stop_reason: str) -> None:
    resp = copy.deepcopy(TOOL_COMPLETION)
    choice = resp["choices"][0]  # type: ignore[index]
    choice["finish_reason"] = finish
    if not tools:
        del choice["message"]["tool_calls"]
    assert to_message(resp)["stop_reason"] == stop_reason


def test_refusal() -> None:
    out = to_message(with_message(content=None, refusal="I can't help with that."))
    assert out["content"] == [{"type": "text", "text": "I can't help with that."}]
    assert out["stop_reason"] == "refusal"


def test_missing_usage_and_choices() -> None:
    out = chat_response_to_messages({"id": "x", "choices": []}, "claude")
    Message.model_validate(out)
    assert out["content"] == [] and out["stop_reason"] == "end_turn"
    assert out["usage"] == {
        "input_tokens": 0,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": 0,
    }


def test_cache_writes_reported_by_the_upstream_are_split_out() -> None:
    resp = copy.deepcopy(TOOL_COMPLETION)
    resp["usage"] = {
        "prompt_tokens": 5000,
        "completion_tokens": 10,
        "total_tokens": 5010,
        "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 3000},
    }
    assert to_message(resp)["usage"] == {
        "input_tokens": 1000,
        "cache_creation_input_tokens": 3000,
        "cache_read_input_tokens": 1000,
        "output_tokens": 10,
    }
