"""The fakes are faithful: the official SDKs, pointed straight at them, parse everything."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import anthropic
import httpx2
import openai
import pytest

from tokenomy.events import Usage
from tokenomy.metering import (
    AnthropicStreamMeter,
    OpenAIStreamMeter,
    ResponsesStreamMeter,
    anthropic_usage,
    openai_usage,
)

from . import FakeAnthropic, FakeOpenAI, FakeUsage, Scenario, refused_url, unused_port
from .openai_server import embedding_vector

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the capital of France?"},
]
# 3 system words + 6 user words; the reply echoes the last user words after 6 fixed ones.
PROMPT_WORDS = 9
REPLY = "This is a fake reply to: You are terse. What is the capital of France?"
REPLY_WORDS = 15  # one word, one fake token
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            },
            "required": ["city"],
        },
    },
}


@pytest.fixture
async def oai() -> AsyncIterator[tuple[FakeOpenAI, openai.AsyncOpenAI]]:
    async with FakeOpenAI() as up:
        client = openai.AsyncOpenAI(base_url=up.base_url, api_key="sk-test", max_retries=0)
        async with client:
            yield up, client


@pytest.fixture
async def ant() -> AsyncIterator[tuple[FakeAnthropic, anthropic.AsyncAnthropic]]:
    async with FakeAnthropic() as up:
        client = anthropic.AsyncAnthropic(base_url=up.base_url, api_key="sk-ant", max_retries=0)
        async with client:
            yield up, client


async def _raw_post(url: str, body: Any, headers: dict[str, str]) -> tuple[int, bytes]:
    async with (
        aiohttp.ClientSession() as s,
        s.post(url, data=json.dumps(body), headers=headers) as r,
    ):
        return r.status, await r.read()


# ==================================================================== OpenAI: chat


async def test_chat_non_stream(oai: tuple[FakeOpenAI, openai.AsyncOpenAI]) -> None:
    up, client = oai
    up.usage = FakeUsage(cached_tokens=4, reasoning_tokens=2)
    resp = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        user="alice",
    )
    assert resp.choices[0].message.content == REPLY
    assert resp.choices[0].finish_reason == "stop"
    assert resp.object == "chat.completion" and resp.model == "gpt-4o-mini"
    u = resp.usage
    assert u is not None and u.prompt_tokens_details and u.completion_tokens_details
    assert (u.prompt_tokens, u.prompt_tokens_details.cached_tokens) == (PROMPT_WORDS + 4, 4)
    assert (u.completion_tokens, u.completion_tokens_details.reasoning_tokens) == (
        REPLY_WORDS + 2,
        2,
    )
    assert openai_usage(u.model_dump()) == Usage(
        input_tokens=13, cached_tokens=4, output_tokens=REPLY_WORDS + 2, reasoning_tokens=2
    )
    rec = up.last
    assert rec.path == "/v1/chat/completions" and rec.method == "POST"
    assert rec.headers["authorization"] == "Bearer sk-test"
    assert rec.json["user"] == "alice" and rec.json["messages"] == MESSAGES


async def test_chat_stream_usage_in_final_empty_chunk(
    oai: tuple[FakeOpenAI, openai.AsyncOpenAI],
) -> None:
    _, client = oai
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == REPLY
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == PROMPT_WORDS
    assert chunks[-1].usage.completion_tokens == REPLY_WORDS


async def test_chat_stream_usage_with_choices_and_no_usage(
    oai: tuple[FakeOpenAI, openai.AsyncOpenAI],
) -> None:
    _, client = oai
    stream = await client.chat.completions.create(
        model="fake-usage-with-choices",
        messages=MESSAGES,
        stream=True,
    )
    chunks = [c async for c in stream]
    last = chunks[-1]
    assert last.choices and last.choices[0].finish_reason == "stop"
    assert last.usage is not None and last.usage.total_tokens == PROMPT_WORDS + REPLY_WORDS
    for model, opts in (("fake-no-usage", {"include_usage": True}), ("gpt-4o", None)):
        stream = await client.chat.completions.create(
            model=model,
            messages=MESSAGES,
            stream=True,
            stream_options=opts,
        )
        assert [c.usage async for c in stream if c.usage is not None] == []


async def test_chat_max_tokens_cuts_reply(oai: tuple[FakeOpenAI, openai.AsyncOpenAI]) -> None:
    _, client = oai
    resp = await client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        max_completion_tokens=3,
    )
    assert resp.choices[0].message.content == "This is a"
    assert resp.choices[0].finish_reason == "length"
    assert resp.usage is not None and resp.usage.completion_tokens == 3


async def test_chat_tool_calls(oai: tuple[FakeOpenAI, openai.AsyncOpenAI]) -> None:
    _, client = oai
    resp = await client.chat.completions.create(
        model="fake-tool-call",
        messages=MESSAGES,
        tools=[WEATHER_TOOL],
    )
    msg = resp.choices[0].message
    assert resp.choices[0].finish_reason == "tool_calls" and msg.content is None
    assert msg.tool_calls is not None
    call = msg.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "capital of France?", "unit": "celsius"}

    stream = await client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        tools=[WEATHER_TOOL],
        tool_choice="required",
        stream=True,
        stream_options={"include_usage": True},
    )
    args, names, reasons = "", [], []
    async for chunk in stream:
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or ():
                assert tc.index == 0
                if tc.function and tc.function.name:
                    names.append(tc.function.name)
                args += (tc.function.arguments or "") if tc.function else ""
            if choice.finish_reason:
                reasons.append(choice.finish_reason)
    assert names == ["get_weather"] and reasons == ["tool_calls"]
    assert json.loads(args) == json.loads(call.function.arguments)

    plain = await client.chat.completions.create(
        model="gpt-4o",
        messages=MESSAGES,
        tools=[WEATHER_TOOL],
    )
    assert plain.choices[0].message.tool_calls is None  # tools alone do not force a call


async def test_chat_stream_meters_exactly(oai: tuple[FakeOpenAI, openai.AsyncOpenAI]) -> None:
    up, _ = oai
    up.usage = FakeUsage(input_tokens=100, cached_tokens=60, output_tokens=7)
    for model in ("gpt-4o", "fake-usage-with-choices"):
        meter = OpenAIStreamMeter()
        async with (
            aiohttp.ClientSession() as s,
            s.post(
                up.base_url + "/chat/completions",
                json={
                    "model": model,
                    "messages": MESSAGES,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                },
                headers={"Authorization": "Bearer k"},
            ) as r,
        ):
            assert r.headers["Content-Type"].startswith("text/event-stream")
            async for chunk in r.content.iter_any():
                meter.feed_bytes(chunk)
        assert meter.done and meter.output_text() == REPLY
        assert meter.usage() == Usage(input_tokens=100, cached_tokens=60, output_tokens=7)


# ============================================================ OpenAI: other endpoints


async def test_completions(oai: tuple[FakeOpenAI, openai.AsyncOpenAI]) -> None:
    _, client = oai
    resp = await client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt="Say this is a test", max_tokens=50
    )
    assert resp.object == "text_completion"
    assert resp.choices[0].text == "This is a fake reply to: Say this is a test"
    assert resp.usage is not None and resp.usage.prompt_tokens == 5
    stream = await client.completions.create(
        model="gpt-3.5-turbo-instruct",
        prompt=[[1, 2, 3]],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 3  # token-id prompts count their ids


async def test_embeddings_float_and_base64(oai: tuple[FakeOpenAI, openai.AsyncOpenAI]) -> None:
    up, client = oai
    as_float = await client.embeddings.create(
        model="text-embedding-3-small", input=["hello world", "bye"], encoding_format="float"
    )
    assert up.last.json["encoding_format"] == "float"
    # Without encoding_format the SDK asks for base64 and decodes it itself.
    decoded = await client.embeddings.create(
        model="text-embedding-3-small", input=["hello world", "bye"], dimensions=8
    )
    assert up.last.json["encoding_format"] == "base64"
    assert [d.embedding for d in decoded.data] == [d.embedding for d in as_float.data]
    assert as_float.data[0].embedding == embedding_vector(b'"hello world"', 8)
    assert as_float.usage.prompt_tokens == 3 == as_float.usage.total_tokens
    assert openai_usage(as_float.usage.model_dump()) == Usage(input_tokens=3)


async def test_responses_non_stream_and_stream(
    oai: tuple[FakeOpenAI, openai.AsyncOpenAI],
) -> None:
    up, client = oai
    up.usage = FakeUsage(cached_tokens=2, reasoning_tokens=5)
    resp = await client.responses.create(
        model="gpt-4.1", instructions="You are terse.", input="What is the capital of France?"
    )
    assert resp.output_text == REPLY and resp.status == "completed"
    assert resp.usage is not None
    assert resp.usage.input_tokens_details.cached_tokens == 2
    assert resp.usage.output_tokens_details.reasoning_tokens == 5
    expected = Usage(input_tokens=11, cached_tokens=2, output_tokens=20, reasoning_tokens=5)
    assert openai_usage(resp.usage.model_dump()) == expected

    stream = await client.responses.create(
        model="gpt-4.1",
        instructions="You are terse.",
        input="What is the capital of France?",
        stream=True,
    )
    events = [e async for e in stream]
    kinds = [e.type for e in events]
    assert kinds[:3] == ["response.created", "response.in_progress", "response.output_item.added"]
    assert kinds[-1] == "response.completed"
    assert "".join(e.delta for e in events if e.type == "response.output_text.delta") == REPLY
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1]
    assert final.type == "response.completed" and final.response.usage is not None
    assert openai_usage(final.response.usage.model_dump()) == expected

    meter = ResponsesStreamMeter()
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            up.base_url + "/responses",
            headers={"Authorization": "Bearer k"},
            json={
                "model": "gpt-4.1",
                "input": "What is the capital of France?",
                "instructions": "You are terse.",
                "stream": True,
            },
        ) as r,
    ):
        async for chunk in r.content.iter_any():
            meter.feed_bytes(chunk)
    assert meter.usage() == expected and meter.done and meter.output_text() == REPLY


async def test_responses_function_call(oai: tuple[FakeOpenAI, openai.AsyncOpenAI]) -> None:
    _, client = oai
    tool = {
        "type": "function",
        "name": "get_weather",
        "description": "Weather",
        "parameters": WEATHER_TOOL["function"]["parameters"],
        "strict": False,
    }
    resp = await client.responses.create(
        model="fake-tool-call",
        input="Weather in Paris?",
        tools=[tool],
    )
    call = resp.output[-1]
    assert call.type == "function_call" and call.name == "get_weather"
    assert json.loads(call.arguments)["unit"] == "celsius"
    stream = await client.responses.create(
        model="fake-tool-call",
        input="Weather in Paris?",
        tools=[tool],
        stream=True,
    )
    deltas = [e.delta async for e in stream if e.type == "response.function_call_arguments.delta"]
    assert "".join(deltas) == call.arguments


async def test_models(oai: tuple[FakeOpenAI, openai.AsyncOpenAI]) -> None:
    up, client = oai
    page = await client.models.list()
    assert [m.id for m in page.data] == up.models
    assert (await client.models.retrieve("gpt-4o")).id == "gpt-4o"
    with pytest.raises(openai.NotFoundError):
        await client.models.retrieve("nope")


# ================================================================= OpenAI: faults


@pytest.mark.parametrize(
    ("status", "exc", "etype"),
    [
        (400, openai.BadRequestError, "invalid_request_error"),
        (401, openai.AuthenticationError, "invalid_request_error"),
        (403, openai.PermissionDeniedError, "invalid_request_error"),
        (404, openai.NotFoundError, "invalid_request_error"),
        (429, openai.RateLimitError, "requests"),
        (500, openai.InternalServerError, "server_error"),
        (503, openai.InternalServerError, "server_error"),
        (529, openai.InternalServerError, "server_error"),
    ],
)
async def test_openai_error_statuses(
    oai: tuple[FakeOpenAI, openai.AsyncOpenAI], status: int, exc: type[Exception], etype: str
) -> None:
    up, client = oai
    with pytest.raises(exc) as info:
        await client.chat.completions.create(
            model=f"fake-error-{status}",
            messages=MESSAGES,
        )
    err = info.value
    assert isinstance(err, openai.APIStatusError) and err.status_code == status
    assert err.type == etype and isinstance(err.body, dict) and err.body["message"]
    assert set(err.body) == {"message", "type", "param", "code"}
    # The queue selects a scenario for the next request regardless of the model.
    up.next_scenario.append(f"error-{status}")
    with pytest.raises(exc):
        await client.embeddings.create(model="text-embedding-3-small", input="x")
    assert (await client.embeddings.create(model="text-embedding-3-small", input="x")).data


async def test_openai_auth_and_validation(oai: tuple[FakeOpenAI, openai.AsyncOpenAI]) -> None:
    up, _ = oai
    status, body = await _raw_post(
        up.base_url + "/chat/completions", {"model": "gpt-4o", "messages": MESSAGES}, {}
    )
    assert status == 401 and json.loads(body)["error"]["type"] == "invalid_request_error"
    status, body = await _raw_post(
        up.base_url + "/chat/completions", {"model": "gpt-4o"}, {"Authorization": "Bearer k"}
    )
    assert status == 400
    assert json.loads(body)["error"]["code"] == "missing_required_parameter"
    up.api_key = "sk-right"
    client = openai.AsyncOpenAI(base_url=up.base_url, api_key="sk-wrong", max_retries=0)
    async with client:
        with pytest.raises(openai.AuthenticationError) as info:
            await client.models.list()
    assert info.value.code == "invalid_api_key"


async def test_openai_drop_mid_stream(oai: tuple[FakeOpenAI, openai.AsyncOpenAI]) -> None:
    up, client = oai
    stream = await client.chat.completions.create(
        model="fake-drop-mid-stream",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    got: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            got.extend(c.delta.content or "" for c in chunk.choices)
    assert 0 < len("".join(got)) < len(REPLY)
    with pytest.raises(openai.APIConnectionError):  # non-stream: truncated body
        await client.chat.completions.create(
            model="fake-drop-mid-stream",
            messages=MESSAGES,
        )
    meter = OpenAIStreamMeter()
    with pytest.raises(aiohttp.ClientPayloadError):
        async with (
            aiohttp.ClientSession() as s,
            s.post(
                up.base_url + "/chat/completions",
                headers={"Authorization": "Bearer k"},
                json={
                    "model": "fake-drop-mid-stream",
                    "messages": MESSAGES,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                },
            ) as r,
        ):
            async for chunk in r.content.iter_any():
                meter.feed_bytes(chunk)
    assert meter.usage() is None and not meter.done and meter.output_text()


async def test_openai_slow_stall_and_refused(oai: tuple[FakeOpenAI, openai.AsyncOpenAI]) -> None:
    up, client = oai
    with pytest.raises(openai.APITimeoutError):
        await client.chat.completions.create(
            model="fake-slow-5s",
            messages=MESSAGES,
            timeout=0.2,
        )
    resp = await client.chat.completions.create(
        model="fake-slow-50ms+stall-50ms",
        messages=MESSAGES,
    )
    assert resp.choices[0].message.content == REPLY
    assert up.last.scenario.slow_s == 0.05 and up.last.scenario.stall_s == 0.05
    refused = openai.AsyncOpenAI(base_url=refused_url(), api_key="k", max_retries=0)
    async with refused:
        with pytest.raises(openai.APIConnectionError):
            await refused.models.list()


async def test_openai_malformed_and_mid_stream_error(
    oai: tuple[FakeOpenAI, openai.AsyncOpenAI],
) -> None:
    _, client = oai
    with pytest.raises(json.JSONDecodeError):  # what the SDK raises on a broken body
        await client.chat.completions.create(
            model="fake-malformed-json",
            messages=MESSAGES,
        )
    stream = await client.chat.completions.create(
        model="fake-malformed-json",
        messages=MESSAGES,
        stream=True,
    )
    with pytest.raises(json.JSONDecodeError):
        async for _ in stream:
            pass
    stream = await client.chat.completions.create(
        model="fake-error-mid-stream",
        messages=MESSAGES,
        stream=True,
    )
    with pytest.raises(openai.APIError, match="server had an error"):
        async for _ in stream:
            pass


def test_unknown_scenario_is_an_error() -> None:
    with pytest.raises(ValueError, match="unknown fake scenario"):
        Scenario.parse(["slow-fast"])
    assert Scenario.parse(["error-429+no-usage", ""]).names == ("error-429", "no-usage")


async def test_routing_scenarios_and_the_request_log(
    oai: tuple[FakeOpenAI, openai.AsyncOpenAI],
) -> None:
    """The faults routing tests rely on, and the log each fake keeps (bodies, times)."""
    up, _ = oai
    url, h = up.base_url + "/chat/completions", {"Authorization": "Bearer sk-test"}
    body: dict[str, Any] = {"model": "gpt-4o", "messages": MESSAGES}
    up.next_scenario.append("error-503+retry-after-7")
    async with aiohttp.ClientSession() as s:
        async with s.post(url, json=body, headers=h) as r:
            assert r.status == 503 and r.headers["retry-after"] == "7"
        faults = (("context-length", "maximum context length"), ("content-policy", "safety"))
        for name, needle in faults:
            async with s.post(url, json={**body, "model": f"fake-{name}"}, headers=h) as r:
                assert r.status == 400 and needle in (await r.json())["error"]["message"]
        stream = {**body, "stream": True}
        failing = {**stream, "model": "fake-fail-before-content"}
        async with s.post(url, json=failing, headers=h) as r:
            events = (await r.read()).split(b"\n\n")
            assert b'"role":"assistant"' in events[0] and b'"error"' in events[1]
        async with s.post(url, json={**stream, "model": "fake-end-before-content"}, headers=h) as r:
            assert (await r.read()).count(b"data:") == 1
        async with s.post(url, json={**stream, "model": "fake-non-stream-body"}, headers=h) as r:
            assert r.content_type == "application/json"
        async with s.post(url, json={**stream, "model": "fake-garbage"}, headers=h) as r:
            assert b"data:" not in await r.read()
        started = asyncio.get_running_loop().time()
        async with s.post(url, json={**stream, "model": "fake-hang-300ms"}, headers=h) as r:
            first = await r.content.readany()
            assert b'"role":"assistant"' in first and b"[DONE]" not in first
            await r.read()
        assert asyncio.get_running_loop().time() - started >= 0.3
    assert [r.json["model"] for r in up.requests][:2] == ["gpt-4o", "fake-context-length"]
    assert all(a.at <= b.at for a, b in zip(up.requests, up.requests[1:], strict=False))


# ============================================================== Anthropic: messages


ANT_MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]
ANT_REPLY = "This is a fake reply to: What is the capital of France?"
ANT_USAGE = FakeUsage(cached_tokens=1000, cache_write_tokens=300, cache_write_1h_tokens=100)
ANT_EXPECTED = Usage(
    input_tokens=1306,
    cached_tokens=1000,
    cache_write_tokens=300,
    cache_write_1h_tokens=100,
    output_tokens=12,
)


async def test_messages_non_stream(ant: tuple[FakeAnthropic, anthropic.AsyncAnthropic]) -> None:
    up, client = ant
    up.usage = ANT_USAGE
    msg = await client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        messages=ANT_MESSAGES,
    )
    assert msg.type == "message" and msg.role == "assistant" and msg.stop_reason == "end_turn"
    assert msg.content[0].type == "text" and msg.content[0].text == ANT_REPLY
    u = msg.usage
    assert (u.input_tokens, u.cache_read_input_tokens, u.cache_creation_input_tokens) == (
        6,
        1000,
        300,
    )
    assert u.cache_creation is not None
    assert u.cache_creation.ephemeral_1h_input_tokens == 100
    assert u.cache_creation.ephemeral_5m_input_tokens == 200
    assert anthropic_usage(u.model_dump()) == ANT_EXPECTED
    rec = up.last
    assert rec.path == "/v1/messages"
    # SDK 2.x sends the API key as a bearer token (the fake accepts x-api-key too).
    assert rec.headers["authorization"] == "Bearer sk-ant" and rec.headers["anthropic-version"]
    assert rec.json["max_tokens"] == 100


async def test_messages_stream(ant: tuple[FakeAnthropic, anthropic.AsyncAnthropic]) -> None:
    up, client = ant
    up.usage = ANT_USAGE
    stream = await client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=100,
        messages=ANT_MESSAGES,
        stream=True,
    )
    events = [e async for e in stream]
    kinds = [e.type for e in events]
    assert kinds[0] == "message_start" and kinds[-2:] == ["message_delta", "message_stop"]
    assert kinds[1] == "content_block_start" and "content_block_stop" in kinds
    start = events[0]
    assert start.type == "message_start" and start.message.usage.output_tokens == 1
    # The helper accumulates message_delta usage like a real client would.
    async with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=100,
        messages=ANT_MESSAGES,
    ) as helper:
        text = "".join([t async for t in helper.text_stream])
        final = await helper.get_final_message()
    assert text == ANT_REPLY
    assert anthropic_usage(final.usage.model_dump()) == ANT_EXPECTED

    meter = AnthropicStreamMeter()
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            up.url + "/v1/messages",
            headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
            json={
                "model": "claude-sonnet-4-6",
                "max_tokens": 100,
                "messages": ANT_MESSAGES,
                "stream": True,
            },
        ) as r,
    ):
        async for chunk in r.content.iter_any():
            meter.feed_bytes(chunk)
    assert meter.usage() == ANT_EXPECTED and meter.done and meter.output_text() == ANT_REPLY


async def test_messages_thinking_and_tool_use(
    ant: tuple[FakeAnthropic, anthropic.AsyncAnthropic],
) -> None:
    _, client = ant
    tools = [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": WEATHER_TOOL["function"]["parameters"],
        }
    ]
    kwargs: dict[str, Any] = {
        "model": "claude-sonnet-4-6",
        "max_tokens": 2000,
        "messages": ANT_MESSAGES,
        "tools": tools,
        "tool_choice": {"type": "any"},
        "thinking": {"type": "enabled", "budget_tokens": 1024},
    }
    msg = await client.messages.create(**kwargs)
    assert [b.type for b in msg.content] == ["thinking", "tool_use"]
    assert msg.stop_reason == "tool_use"
    tool_use = msg.content[1]
    assert tool_use.type == "tool_use" and tool_use.name == "get_weather"
    assert tool_use.input == {"city": "capital of France?", "unit": "celsius"}
    assert msg.usage.output_tokens_details is not None
    assert msg.usage.output_tokens_details.thinking_tokens == 9
    async with client.messages.stream(**kwargs) as helper:
        final = await helper.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "tool_use"]
    assert final.content[1].type == "tool_use" and final.content[1].input == tool_use.input
    thinking = final.content[0]
    assert thinking.type == "thinking" and thinking.signature and thinking.thinking


async def test_count_tokens_and_models(
    ant: tuple[FakeAnthropic, anthropic.AsyncAnthropic],
) -> None:
    up, client = ant
    counted = await client.messages.count_tokens(
        model="claude-sonnet-4-6",
        messages=ANT_MESSAGES,
    )
    assert counted.input_tokens == 6
    page = await client.models.list()
    assert [m.id for m in page.data] == up.models


@pytest.mark.parametrize(
    ("status", "exc", "etype"),
    [
        (400, anthropic.BadRequestError, "invalid_request_error"),
        (401, anthropic.AuthenticationError, "authentication_error"),
        (403, anthropic.PermissionDeniedError, "permission_error"),
        (404, anthropic.NotFoundError, "not_found_error"),
        (413, anthropic.ContentTooLargeError, "request_too_large"),
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (500, anthropic.InternalServerError, "api_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
    ],
)
async def test_anthropic_error_statuses(
    ant: tuple[FakeAnthropic, anthropic.AsyncAnthropic],
    status: int,
    exc: type[Exception],
    etype: str,
) -> None:
    _, client = ant
    with pytest.raises(exc) as info:
        await client.messages.create(
            model=f"fake-error-{status}",
            max_tokens=10,
            messages=ANT_MESSAGES,
        )
    err = info.value
    assert isinstance(err, anthropic.APIStatusError) and err.status_code == status
    assert isinstance(err.body, dict) and err.body["type"] == "error"
    assert err.body["error"]["type"] == etype and err.request_id


async def test_anthropic_headers_checked(
    ant: tuple[FakeAnthropic, anthropic.AsyncAnthropic],
) -> None:
    up, _ = ant
    body = {"model": "claude-sonnet-4-6", "max_tokens": 10, "messages": ANT_MESSAGES}
    status, raw = await _raw_post(
        up.url + "/v1/messages", body, {"anthropic-version": "2023-06-01"}
    )
    assert status == 401
    assert json.loads(raw)["error"] == {
        "type": "authentication_error",
        "message": "x-api-key header is required",
    }
    status, raw = await _raw_post(up.url + "/v1/messages", body, {"x-api-key": "k"})
    assert status == 400 and "anthropic-version" in json.loads(raw)["error"]["message"]
    status, raw = await _raw_post(
        up.url + "/v1/messages",
        {**body, "max_tokens": None} | {},
        {"x-api-key": "k", "anthropic-version": "2023-06-01"},
    )
    no_max = {k: v for k, v in body.items() if k != "max_tokens"}
    status, raw = await _raw_post(
        up.url + "/v1/messages", no_max, {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    )
    assert status == 400 and json.loads(raw)["error"]["message"] == "max_tokens: Field required"


async def test_anthropic_stream_faults(
    ant: tuple[FakeAnthropic, anthropic.AsyncAnthropic],
) -> None:
    up, client = ant
    stream = await client.messages.create(
        model="fake-error-mid-stream",
        max_tokens=100,
        messages=ANT_MESSAGES,
        stream=True,
    )
    with pytest.raises(anthropic.APIStatusError, match="overloaded_error"):
        async for _ in stream:
            pass
    stream = await client.messages.create(
        model="fake-drop-mid-stream",
        max_tokens=100,
        messages=ANT_MESSAGES,
        stream=True,
    )
    # The anthropic SDK does not wrap transport errors raised while iterating a stream.
    with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
        async for _ in stream:
            pass
    up.next_scenario.append("drop-mid-stream")
    meter = AnthropicStreamMeter()
    with pytest.raises(aiohttp.ClientPayloadError):
        async with (
            aiohttp.ClientSession() as s,
            s.post(
                up.url + "/v1/messages",
                headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
                json={
                    "model": "claude-sonnet-4-6",
                    "max_tokens": 100,
                    "messages": ANT_MESSAGES,
                    "stream": True,
                },
            ) as r,
        ):
            async for chunk in r.content.iter_any():
                meter.feed_bytes(chunk)
    usage = meter.usage()
    assert usage is not None and usage.input_tokens == 6  # message_start arrived
    assert not meter.usage_complete and not meter.done
    msg = await client.messages.create(
        model="fake-no-usage",
        max_tokens=100,
        messages=ANT_MESSAGES,
    )
    assert anthropic_usage(getattr(msg, "usage", None)) is None
    with pytest.raises(anthropic.APITimeoutError):
        await client.messages.create(
            model="fake-slow-5s",
            max_tokens=10,
            messages=ANT_MESSAGES,
            timeout=0.2,
        )


# ================================================================ standalone process


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_standalone_process_in_fast_mode(provider: str) -> None:
    port = unused_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.fakes.serve",
            "--provider",
            provider,
            "--port",
            str(port),
            "--fast",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), 20)
        assert f"127.0.0.1:{port}" in line.decode()
        if provider == "openai":
            url, headers = (
                f"http://127.0.0.1:{port}/v1/chat/completions",
                {"Authorization": "Bearer k"},
            )
            body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES}
            meter: Any = OpenAIStreamMeter()
            parse = openai_usage
        else:
            url, headers = (
                f"http://127.0.0.1:{port}/v1/messages",
                {"x-api-key": "k", "anthropic-version": "2023-06-01"},
            )
            body = {"model": "claude-sonnet-4-6", "max_tokens": 50, "messages": ANT_MESSAGES}
            meter = AnthropicStreamMeter()
            parse = anthropic_usage
        async with aiohttp.ClientSession() as s:
            async with s.post(url, json=body, headers=headers) as r:
                reply = await r.json()
            assert r.status == 200 and parse(reply["usage"]) is not None
            async with s.post(
                url,
                json={**body, "stream": True, "stream_options": {"include_usage": True}},
                headers=headers,
            ) as r:
                async for chunk in r.content.iter_any():
                    meter.feed_bytes(chunk)
            assert meter.done and meter.usage() is not None
            # Scenarios still work in fast mode (they take the full path).
            async with s.post(url, json={**body, "model": "fake-error-429"}, headers=headers) as r:
                assert r.status == 429
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
