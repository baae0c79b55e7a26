"""Responses client, Anthropic upstream: Responses request → Messages request, Message → response.

Every client request fixture is validated against the official ``openai`` SDK's Responses
request types and every translated request against the ``anthropic`` SDK's Messages request
types; every translated response is parsed by the ``openai`` SDK, both with
``Response.model_validate`` and through a real ``OpenAI`` client (in-process transport).
"""

from __future__ import annotations

import base64
import copy
import json
import logging
from collections.abc import Iterator
from typing import Any

import httpx2
import openai
import pytest
from anthropic.types import Message
from anthropic.types.message_create_params import (
    MessageCreateParamsNonStreaming,
    MessageCreateParamsStreaming,
)
from openai.types.responses import FunctionToolParam, Response
from openai.types.responses.response_create_params import (
    ResponseCreateParamsNonStreaming,
    ResponseCreateParamsStreaming,
)
from pydantic import TypeAdapter

from tokenomy.errors import InvalidRequest
from tokenomy.providers.translate_responses_to_messages import (
    messages_response_to_responses,
    responses_request_to_messages,
)

PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGA"
    "hKmMIQAAAABJRU5ErkJggg=="
)
PDF_B64 = "JVBERi0xLjQKJcOkw7zDtsOfCjIgMCBvYmoKPDwvTGVuZ3RoIDMgMCBSPj4Kc3RyZWFtCg=="
UPSTREAM = "claude-sonnet-4-5-20250929"
CREATED = 1_700_000_000

SHELL_TOOL: FunctionToolParam = {
    "type": "function",
    "name": "shell",
    "description": "Runs a shell command and returns its output.",
    "strict": False,
    "parameters": {
        "type": "object",
        "properties": {"command": {"type": "array", "items": {"type": "string"}}},
        "required": ["command"],
        "additionalProperties": False,
    },
}
SHELL_SCHEMA = SHELL_TOOL["parameters"]
TIME_TOOL: FunctionToolParam = {
    "type": "function",
    "name": "get_time",
    "parameters": None,
    "strict": True,
}


def _force(value: Any) -> Any:
    """Walk a pydantic-validated TypedDict; iterating lazy ``Iterable`` fields validates them."""
    if isinstance(value, dict):
        return {k: _force(v) for k, v in value.items()}
    if isinstance(value, list | tuple | Iterator):
        return [_force(v) for v in value]
    return value


# Module-level adapters: a lazily validated iterator must not outlive its validator.
OPENAI_STREAMING = TypeAdapter(ResponseCreateParamsStreaming)
OPENAI_UNARY = TypeAdapter(ResponseCreateParamsNonStreaming)
ANTHROPIC_STREAMING = TypeAdapter(MessageCreateParamsStreaming)
ANTHROPIC_UNARY = TypeAdapter(MessageCreateParamsNonStreaming)


def translate(body: dict[str, Any], default_max_tokens: int = 4096) -> dict[str, Any]:
    _force((OPENAI_STREAMING if body.get("stream") else OPENAI_UNARY).validate_python(body))
    before = copy.deepcopy(body)
    out = responses_request_to_messages(body, UPSTREAM, default_max_tokens)
    assert body == before, "the client body must not be mutated"
    _force((ANTHROPIC_STREAMING if out.get("stream") else ANTHROPIC_UNARY).validate_python(out))
    return out


def req(input_: Any, **fields: Any) -> dict[str, Any]:
    return {"model": "claude-sonnet", "input": input_, **fields}


def user(content: Any) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": content}


def text(value: str) -> dict[str, Any]:
    return {"type": "input_text", "text": value}


# ---------------------------------------------------------------------------- requests


def test_codex_shaped_multi_turn_request() -> None:
    """What Codex CLI sends (store: false, full history in input, reasoning, shell tool)."""
    body = req(
        [
            {
                "type": "message",
                "role": "developer",
                "content": [text("<permissions>workspace-write</permissions>")],
            },
            user([text("<environment_context>cwd: /repo</environment_context>")]),
            user([text("list the files")]),
            {
                "type": "reasoning",
                "id": "rs_68c0",
                "summary": [{"type": "summary_text", "text": "Run ls."}],
                "encrypted_content": "gAAAAABoZ3...",
            },
            {
                "type": "function_call",
                "call_id": "call_Xy12",
                "name": "shell",
                "arguments": '{"command":["ls"]}',
            },
            {"type": "function_call_output", "call_id": "call_Xy12", "output": "a.txt\nb.txt"},
            {
                "type": "message",
                "role": "assistant",
                "id": "msg_68c1",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Two files.", "annotations": []}],
            },
            user([text("and hidden ones?")]),
        ],
        instructions="You are Codex, a coding agent.",
        tools=[SHELL_TOOL],
        tool_choice="auto",
        parallel_tool_calls=False,
        reasoning={"effort": "medium", "summary": "auto"},
        store=False,
        stream=True,
        include=["reasoning.encrypted_content"],
        prompt_cache_key="0199b2c4-conversation",
        text={"verbosity": "medium"},
    )
    assert translate(body) == {
        "model": UPSTREAM,
        "max_tokens": 4096,
        "system": [
            {"type": "text", "text": "You are Codex, a coding agent."},
            {"type": "text", "text": "<permissions>workspace-write</permissions>"},
        ],
        "messages": [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": "<environment_context>cwd: /repo</environment_context>",
                    },
                    {"type": "text", "text": "list the files"},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {
                        "type": "tool_use",
                        "id": "call_Xy12",
                        "name": "shell",
                        "input": {"command": ["ls"]},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "call_Xy12", "content": "a.txt\nb.txt"},
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "Two files."}]},
            {"role": "user", "content": [{"type": "text", "text": "and hidden ones?"}]},
        ],
        "tools": [
            {
                "name": "shell",
                "description": "Runs a shell command and returns its output.",
                "input_schema": SHELL_SCHEMA,
            },
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "stream": True,
    }


def test_string_input_and_instructions_become_a_plain_system_string() -> None:
    assert translate(req("Hello", instructions="Be brief.")) == {
        "model": UPSTREAM,
        "max_tokens": 4096,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Hello"}]}],
    }


def test_system_and_developer_messages_anywhere_are_hoisted_in_order() -> None:
    out = translate(
        req(
            [
                {"role": "system", "content": "first"},
                {"role": "user", "content": "hi"},
                {"role": "developer", "content": [text("second")]},
                {"role": "assistant", "content": "hello"},
                {
                    "type": "message",
                    "role": "assistant",
                    "id": "msg_1",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": " again", "annotations": []}],
                },
                {"role": "user", "content": "bye"},
            ]
        )
    )
    assert out["system"] == [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {
            "role": "assistant",
            "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": " again"}],
        },
        {"role": "user", "content": [{"type": "text", "text": "bye"}]},
    ]


def test_parallel_calls_and_results_merge_into_one_turn_each() -> None:
    out = translate(
        req(
            [
                user("weather in Lyon and Paris?"),
                {
                    "type": "function_call",
                    "call_id": "call_1",
                    "name": "w",
                    "arguments": '{"city":"Lyon"}',
                    "id": "fc_1",
                    "status": "completed",
                },
                {"type": "function_call", "call_id": "functions.w:1", "name": "w", "arguments": ""},
                {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
                {"type": "function_call_output", "call_id": "functions.w:1", "output": ""},
                user("thanks"),
            ]
        )
    )
    assert out["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "weather in Lyon and Paris?"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "tool_use", "id": "call_1", "name": "w", "input": {"city": "Lyon"}},
                # Ids are made Anthropic-safe on both the call and its result; no arguments = {}.
                {"type": "tool_use", "id": "functions_w_1", "name": "w", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"},
                {"type": "tool_result", "tool_use_id": "functions_w_1"},
                {"type": "text", "text": "thanks"},
            ],
        },
    ]


def test_arguments_that_are_not_a_json_object_are_kept_raw() -> None:
    out = translate(
        req(
            [
                user("go"),
                {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{not json"},
            ]
        )
    )
    assert out["messages"][1]["content"][0]["input"] == {"_raw": "{not json"}


def test_function_call_output_with_content_parts() -> None:
    out = translate(
        req(
            [
                user("screenshot please"),
                {"type": "function_call", "call_id": "c1", "name": "shot", "arguments": "{}"},
                {
                    "type": "function_call_output",
                    "call_id": "c1",
                    "output": [
                        {"type": "input_text", "text": "Here it is"},
                        {
                            "type": "input_image",
                            "image_url": f"data:image/png;base64,{PNG_B64}",
                            "detail": "auto",
                        },
                    ],
                },
            ]
        )
    )
    assert out["messages"][2] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "c1",
                "content": [
                    {"type": "text", "text": "Here it is"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64},
                    },
                ],
            }
        ],
    }


def test_images_and_files() -> None:
    notes = base64.b64encode("line one\nligne deux é".encode()).decode()
    out = translate(
        req(
            [
                user(
                    [
                        text("Compare these"),
                        {
                            "type": "input_image",
                            "image_url": f"data:image/jpg;base64,{PNG_B64}",
                            "detail": "high",
                        },
                        {
                            "type": "input_image",
                            "image_url": "https://example.com/cat.png",
                            "detail": "auto",
                        },
                        {
                            "type": "input_file",
                            "filename": "report.pdf",
                            "file_data": f"data:application/pdf;base64,{PDF_B64}",
                        },
                        {"type": "input_file", "file_data": PDF_B64},
                        {
                            "type": "input_file",
                            "filename": "notes.txt",
                            "file_data": f"data:text/plain;base64,{notes}",
                        },
                        {"type": "input_file", "file_url": "https://example.com/paper.pdf"},
                    ]
                )
            ]
        )
    )
    assert out["messages"][0]["content"] == [
        {"type": "text", "text": "Compare these"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/jpeg", "data": PNG_B64},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.png"}},
        {
            "type": "document",
            "title": "report.pdf",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
        },
        {
            "type": "document",
            "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64},
        },
        {
            "type": "document",
            "title": "notes.txt",
            "source": {
                "type": "text",
                "media_type": "text/plain",
                "data": "line one\nligne deux é",
            },
        },
        {"type": "document", "source": {"type": "url", "url": "https://example.com/paper.pdf"}},
    ]


def test_empty_texts_are_dropped() -> None:
    out = translate(
        req([user([text(""), text("x")]), {"role": "assistant", "content": ""}, user("")])
    )
    assert out["messages"] == [{"role": "user", "content": [{"type": "text", "text": "x"}]}]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, {"max_tokens": 4096}),
        ({"max_output_tokens": 300}, {"max_tokens": 300}),
        ({"temperature": 1.5}, {"max_tokens": 4096, "temperature": 1}),
        ({"temperature": 0.2, "top_p": 0.9}, {"max_tokens": 4096, "temperature": 0.2}),
        ({"top_p": 0.9}, {"max_tokens": 4096, "top_p": 0.9}),
        ({"user": "u-1"}, {"max_tokens": 4096, "metadata": {"user_id": "u-1"}}),
        ({"safety_identifier": "hash-9"}, {"max_tokens": 4096, "metadata": {"user_id": "hash-9"}}),
        (
            {
                "store": True,
                "metadata": {"k": "v"},
                "truncation": "auto",
                "service_tier": "flex",
                "prompt_cache_key": "p",
                "max_tool_calls": 3,
                "include": ["reasoning.encrypted_content"],
                "stream": False,
                "reasoning": {"effort": "high"},
                "text": {"format": {"type": "json_object"}},
                "top_logprobs": 0,
            },
            {"max_tokens": 4096},
        ),
    ],
)
def test_settings(fields: dict[str, Any], expected: dict[str, Any]) -> None:
    out = translate(req("hi", **fields))
    out.pop("messages")
    assert out == {"model": UPSTREAM, **expected}


def test_structured_output() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    out = translate(
        req(
            "count",
            text={
                "format": {"type": "json_schema", "name": "count", "schema": schema, "strict": True}
            },
        )
    )
    assert out["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({}, None),
        ({"tool_choice": "auto"}, {"type": "auto"}),
        ({"tool_choice": "none"}, {"type": "none"}),
        ({"tool_choice": "required"}, {"type": "any"}),
        ({"tool_choice": {"type": "function", "name": "shell"}}, {"type": "tool", "name": "shell"}),
        ({"parallel_tool_calls": False}, {"type": "auto", "disable_parallel_tool_use": True}),
        (
            {"tool_choice": "required", "parallel_tool_calls": False},
            {"type": "any", "disable_parallel_tool_use": True},
        ),
        ({"tool_choice": "none", "parallel_tool_calls": False}, {"type": "none"}),
        ({"parallel_tool_calls": True}, None),
    ],
)
def test_tool_choice(fields: dict[str, Any], expected: dict[str, Any] | None) -> None:
    out = translate(req("hi", tools=[SHELL_TOOL, TIME_TOOL], **fields))
    assert out["tools"] == [
        {
            "name": "shell",
            "description": "Runs a shell command and returns its output.",
            "input_schema": SHELL_SCHEMA,
        },
        {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
    ]
    assert out.get("tool_choice") == expected


def test_allowed_tools_narrows_the_tool_list() -> None:
    out = translate(
        req(
            "hi",
            tools=[SHELL_TOOL, TIME_TOOL],
            tool_choice={
                "type": "allowed_tools",
                "mode": "required",
                "tools": [{"type": "function", "name": "get_time"}],
            },
        )
    )
    assert [t["name"] for t in out["tools"]] == ["get_time"]
    assert out["tool_choice"] == {"type": "any"}


def test_tool_choice_without_tools_is_dropped() -> None:
    assert "tool_choice" not in translate(req("hi", tool_choice="required"))


STATELESS = "the gateway keeps no conversation state"


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        (req("hi", previous_response_id="resp_123"), "previous_response_id", STATELESS),
        (req("hi", conversation="conv_123"), "conversation", STATELESS),
        (req("hi", background=True), "background", "background"),
        (req("hi", prompt={"id": "pmpt_1"}), "prompt", "stored prompt"),
        (req("hi", top_logprobs=3), "top_logprobs", "logprobs"),
        (req("hi", include=["message.output_text.logprobs"]), "include", "logprobs"),
        (
            req("hi", tools=[{"type": "web_search"}], tool_choice="required"),
            "tool_choice",
            "hosted",
        ),
        (
            req(
                "hi", tools=[SHELL_TOOL, {"type": "web_search"}], tool_choice={"type": "web_search"}
            ),
            "tool_choice",
            "hosted",
        ),
        (
            req("hi", tools=[SHELL_TOOL, {"type": "file_search", "vector_store_ids": ["vs_1"]}]),
            "tools[1]",
            "'file_search'",
        ),
        (
            req(
                "hi",
                tools=[
                    {
                        "type": "computer_use_preview",
                        "display_height": 1,
                        "display_width": 1,
                        "environment": "linux",
                    }
                ],
            ),
            "tools[0]",
            "'computer_use_preview'",
        ),
        (
            req("hi", tools=[{"type": "code_interpreter", "container": "cntr_1"}]),
            "tools[0]",
            "'code_interpreter'",
        ),
        (
            req("hi", tools=[{"type": "mcp", "server_label": "x", "server_url": "https://x.test"}]),
            "tools[0]",
            "'mcp'",
        ),
        (req("hi", tools=[{"type": "custom", "name": "apply_patch"}]), "tools[0]", "'custom'"),
        (req("hi", tools=[{"type": "local_shell"}]), "tools[0]", "'local_shell'"),
        (
            req("hi", tools=[SHELL_TOOL], tool_choice={"type": "web_search_preview"}),
            "tool_choice",
            "hosted",
        ),
        (
            req(
                "hi",
                tools=[SHELL_TOOL],
                tool_choice={
                    "type": "allowed_tools",
                    "mode": "auto",
                    "tools": [{"type": "function", "name": "x"}],
                },
            ),
            "tool_choice",
            "none of the tools",
        ),
        (req([{"type": "item_reference", "id": "msg_1"}]), "input[0]", "no stored items"),
        (
            req(
                [{"type": "custom_tool_call", "call_id": "c", "name": "apply_patch", "input": "x"}]
            ),
            "input[0].type",
            "only function calls",
        ),
        (
            req(
                [
                    {
                        "type": "local_shell_call",
                        "id": "l",
                        "call_id": "c",
                        "status": "completed",
                        "action": {"type": "exec", "command": ["ls"], "env": {}},
                    }
                ]
            ),
            "input[0].type",
            "only function calls",
        ),
        (
            req([user([{"type": "input_image", "file_id": "file-1", "detail": "auto"}])]),
            "input[0].content[0]",
            "file ids",
        ),
        (
            req([user([{"type": "input_file", "file_id": "file-1"}])]),
            "input[0].content[0]",
            "file ids",
        ),
        (
            req([user([{"type": "input_file", "file_data": "data:application/zip;base64,UEs="}])]),
            "input[0].content[0]",
            "'application/zip'",
        ),
        (
            req(
                [
                    user(
                        [
                            {
                                "type": "input_image",
                                "image_url": "data:image/tiff;base64,SUk=",
                                "detail": "auto",
                            }
                        ]
                    )
                ]
            ),
            "input[0].content[0]",
            "'image/tiff'",
        ),
        (
            req([user([{"type": "input_image", "image_url": "ftp://x/y.png", "detail": "auto"}])]),
            "input[0].content[0]",
            "http(s)",
        ),
        (
            req([user([{"type": "input_audio", "input_audio": {"data": "AAA", "format": "wav"}}])]),
            "input[0].content[0]",
            "audio",
        ),
        (
            req(
                [
                    {
                        "role": "assistant",
                        "content": [
                            {
                                "type": "input_image",
                                "image_url": "https://x/y.png",
                                "detail": "auto",
                            }
                        ],
                    }
                ]
            ),
            "input[0].content[0]",
            "text part",
        ),
        (req([{"type": "function_call_output", "output": "x"}]), "input[0].call_id", "call_id"),
        (req([{"type": "function_call", "call_id": "c", "arguments": "{}"}]), "input[0]", "name"),
        (req([{"role": "system", "content": "only system"}]), "input", "at least one"),
        (req(""), "input", "at least one"),
        (req("hi", text={"format": {"type": "json_schema", "name": "x"}}), "text.format", "schema"),
        (req("hi", max_output_tokens=1.5), "max_output_tokens", "integer"),
        (req("hi", temperature="hot"), "temperature", "number"),
    ],
)
def test_untranslatable_requests_are_rejected_with_param(
    body: dict[str, Any], param: str, words: str
) -> None:
    with pytest.raises(InvalidRequest) as info:
        responses_request_to_messages(body, UPSTREAM, 1024)
    assert info.value.param == param
    assert words in info.value.message


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "m"}, "input"),
        (req(7), "input"),
        (req([7]), "input[0]"),
        (req("hi", instructions=["x"]), "instructions"),
        (req([{"role": "tool", "content": "x"}]), "input[0].role"),
        (req([{"type": "mystery"}]), "input[0].type"),
        (req([user(5)]), "input[0].content"),
        (req([user([{"type": "input_text"}])]), "input[0].content[0].text"),
        (
            req([{"type": "function_call_output", "call_id": "c", "output": {"x": 1}}]),
            "input[0].output",
        ),
        (req("hi", tools={"type": "function"}), "tools"),
        (req("hi", tools=[{"type": "function"}]), "tools[0].name"),
        (req("hi", tools=[SHELL_TOOL], tool_choice="sometimes"), "tool_choice"),
        (req("hi", text="json"), "text"),
    ],
)
def test_malformed_requests_name_the_field(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        responses_request_to_messages(body, UPSTREAM, 1024)
    assert info.value.param == param


# --------------------------------------------------------------------------- responses

TOOL_MESSAGE: dict[str, Any] = {
    "id": "msg_01Wx3PKm7zQfh9eTtAqT7RLs",
    "type": "message",
    "role": "assistant",
    "model": UPSTREAM,
    "content": [
        {"type": "thinking", "thinking": "The user wants Lyon.", "signature": "EqQBCgIYAh"},
        {"type": "text", "text": "I'll look up ", "citations": None},
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

ID = "01Wx3PKm7zQfh9eTtAqT7RLs"


def to_responses(message: dict[str, Any], **kw: Any) -> dict[str, Any]:
    Message.model_validate(message)
    before = copy.deepcopy(message)
    out = messages_response_to_responses(message, "claude-sonnet", created_at=CREATED, **kw)
    assert message == before
    Response.model_validate(out)
    return out


def test_tool_use_message_with_thinking_and_cache_usage() -> None:
    out = to_responses(TOOL_MESSAGE)
    assert out == {
        "id": "resp_msg_01Wx3PKm7zQfh9eTtAqT7RLs",
        "object": "response",
        "created_at": CREATED,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": "claude-sonnet",
        "output": [
            {
                "type": "reasoning",
                "id": f"rs_{ID}_0",
                "status": "completed",
                "summary": [{"type": "summary_text", "text": "The user wants Lyon."}],
            },
            {
                "type": "message",
                "id": f"msg_{ID}_1",
                "role": "assistant",
                "status": "completed",
                "content": [
                    {
                        "type": "output_text",
                        "text": "I'll look up ",
                        "annotations": [],
                        "logprobs": [],
                    },
                    {"type": "output_text", "text": "Lyon.", "annotations": [], "logprobs": []},
                ],
            },
            {
                "type": "function_call",
                "id": f"fc_{ID}_2",
                "call_id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "name": "get_weather",
                "arguments": '{"city":"Lyon","unit":"c"}',
                "status": "completed",
            },
            {
                "type": "function_call",
                "id": f"fc_{ID}_3",
                "call_id": "toolu_02",
                "name": "get_time",
                "arguments": "{}",
                "status": "completed",
            },
        ],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": None,
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": None,
        "truncation": "disabled",
        "usage": {
            "input_tokens": 497,
            "input_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 20},
            "output_tokens": 65,
            "output_tokens_details": {"reasoning_tokens": 12},
            "total_tokens": 562,
        },
        "metadata": {},
        "user": None,
    }


def test_the_request_settings_are_echoed() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    request = req(
        "hi",
        instructions="Be brief.",
        max_output_tokens=100,
        tools=[SHELL_TOOL, TIME_TOOL],
        tool_choice={"type": "function", "name": "shell"},
        parallel_tool_calls=False,
        temperature=0.5,
        top_p=0.9,
        metadata={"k": "v"},
        user="u-1",
        text={"format": {"type": "json_schema", "name": "n", "schema": schema}},
    )
    out = to_responses(TOOL_MESSAGE, request=request)
    assert {
        k: out[k]
        for k in (
            "instructions",
            "max_output_tokens",
            "parallel_tool_calls",
            "temperature",
            "top_p",
            "tool_choice",
            "metadata",
            "user",
            "text",
        )
    } == {
        "instructions": "Be brief.",
        "max_output_tokens": 100,
        "parallel_tool_calls": False,
        "temperature": 0.5,
        "top_p": 0.9,
        "tool_choice": {"type": "function", "name": "shell"},
        "metadata": {"k": "v"},
        "user": "u-1",
        "text": {"format": {"type": "json_schema", "name": "n", "schema": schema}},
    }
    assert out["tools"] == [
        {
            "type": "function",
            "name": "shell",
            "description": SHELL_TOOL["description"],
            "parameters": SHELL_SCHEMA,
            "strict": False,
        },
        {
            "type": "function",
            "name": "get_time",
            "description": None,
            "parameters": None,
            "strict": True,
        },
    ]


@pytest.mark.parametrize(
    ("stop_reason", "status", "reason"),
    [
        ("end_turn", "completed", None),
        ("stop_sequence", "completed", None),
        ("pause_turn", "completed", None),
        ("tool_use", "completed", None),
        (None, "completed", None),
        ("max_tokens", "incomplete", "max_output_tokens"),
        ("model_context_window_exceeded", "incomplete", "max_output_tokens"),
        ("refusal", "incomplete", "content_filter"),
    ],
)
def test_stop_reason_to_status(stop_reason: str | None, status: str, reason: str | None) -> None:
    message = {
        **TOOL_MESSAGE,
        "stop_reason": stop_reason,
        "content": [{"type": "text", "text": "Partial"}],
    }
    out = to_responses(message)
    assert out["status"] == status
    assert out["incomplete_details"] == ({"reason": reason} if reason else None)
    parsed = Response.model_validate(out)
    assert parsed.output_text == "Partial"


def test_missing_id_and_usage() -> None:
    out = messages_response_to_responses({"content": [{"type": "text", "text": "x"}]}, "m")
    Response.model_validate(out)
    assert out["id"].startswith("resp_msg_") and len(out["id"]) > len("resp_msg_")
    assert out["usage"] == {
        "input_tokens": 0,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": 0,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 0,
    }


def test_the_openai_client_reads_the_translation() -> None:
    """Through the real SDK client: HTTP body in, typed Response and output_text out."""
    seen: list[dict[str, Any]] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        seen.append(body)
        message = {
            **TOOL_MESSAGE,
            "content": [{"type": "text", "text": "Lyon: sunny."}],
            "stop_reason": "end_turn",
        }
        return httpx2.Response(
            200, json=messages_response_to_responses(message, body["model"], request=body)
        )

    client = openai.OpenAI(
        api_key="sk-test",
        base_url="http://gateway.test/v1",
        http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
    )
    response = client.responses.create(
        model="claude-sonnet", input="Weather in Lyon?", tools=[SHELL_TOOL], store=False
    )
    assert responses_request_to_messages(seen[0], UPSTREAM, 64)["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Lyon?"}]}
    ]
    assert response.output_text == "Lyon: sunny."
    assert response.status == "completed"
    assert response.usage is not None
    assert response.usage.input_tokens == 497
    assert response.usage.input_tokens_details.cached_tokens == 100
    assert response.tools[0].type == "function"


def test_echoing_odd_request_settings_never_raises() -> None:
    request = {
        "model": "m",
        "input": "x",
        "temperature": "hot",
        "max_output_tokens": 1.5,
        "top_p": True,
        "tools": [{"type": "web_search"}, "junk"],
        "metadata": {"k": 1},
        "instructions": ["not", "a", "string"],
    }
    out = to_responses(TOOL_MESSAGE, request=request)
    assert (out["temperature"], out["max_output_tokens"], out["top_p"]) == (None, None, None)
    assert (out["tools"], out["metadata"], out["instructions"]) == ([], {}, None)


@pytest.mark.parametrize("choice", [None, "auto", "none"])
def test_optional_hosted_web_search_is_dropped(
    choice: str | None, caplog: pytest.LogCaptureFixture
) -> None:
    """Codex CLI sends a hosted web search by default; unforced, it is dropped (and logged)."""
    extra: dict[str, Any] = {} if choice is None else {"tool_choice": choice}
    with caplog.at_level(logging.DEBUG, logger="tokenomy.providers"):
        only = responses_request_to_messages(
            req("hi", tools=[{"type": "web_search"}], **extra), UPSTREAM, 100
        )
        both = responses_request_to_messages(
            req("hi", tools=[{"type": "web_search_preview_2025_03_11"}, SHELL_TOOL], **extra),
            UPSTREAM,
            100,
        )
    assert "tools" not in only and "tool_choice" not in only
    assert [t["name"] for t in both["tools"]] == [SHELL_TOOL["name"]]
    assert "web_search" in caplog.text
