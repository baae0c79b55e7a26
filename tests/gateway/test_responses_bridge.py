"""The Responses ⇄ Messages bridge end to end: the official ``openai`` SDK's Responses API
(what Codex CLI speaks) against ``gpt-via-anthropic``, a deployment on the (fake)
Anthropic Messages API. Each test checks what the upstream received, what the SDK parsed,
and the exact usage on the ledger.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from tests.fakes import FakeUsage
from tests.gateway.harness import Harness
from tests.gateway.test_secrets import assert_clean
from tokenomy.events import Usage

MODEL = "gpt-via-anthropic"
CLAUDE = "claude-sonnet-4-20250514"
QUESTION = "What is the capital of France?"
INSTRUCTIONS = "You are terse."
PROMPT_WORDS = 9  # the fakes count one word as one token
REPLY = "This is a fake reply to: You are terse. What is the capital of France?"
REPLY_WORDS = 15
REQUEST_ID = "x-tokenomy-request-id"
WEATHER_TOOL: Any = {
    "type": "function",
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
}


@pytest.fixture
async def client(gw: Harness) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=gw.openai_base, api_key=gw.key, max_retries=0) as c:
        yield c


async def test_responses_create_served_by_anthropic(
    gw: Harness, client: openai.AsyncOpenAI
) -> None:
    gw.anthropic.usage = FakeUsage(cached_tokens=40, cache_write_tokens=12)
    raw = await client.responses.with_raw_response.create(
        model=MODEL,
        instructions=INSTRUCTIONS,
        input=QUESTION,
        max_output_tokens=200,
        store=False,
    )
    resp = raw.parse()

    up = gw.anthropic.last
    assert up.path == "/v1/messages"
    assert up.json["model"] == CLAUDE and up.json["system"] == INSTRUCTIONS
    assert up.json["max_tokens"] == 200 and "stream" not in up.json

    assert resp.status == "completed" and resp.model == MODEL
    assert resp.output_text == REPLY
    assert resp.usage is not None
    assert resp.usage.input_tokens == PROMPT_WORDS + 40 + 12
    assert resp.usage.output_tokens == REPLY_WORDS

    ev = gw.event(raw.headers[REQUEST_ID])
    assert ev.usage == Usage(
        input_tokens=PROMPT_WORDS + 52,
        cached_tokens=40,
        cache_write_tokens=12,
        output_tokens=REPLY_WORDS,
    )
    assert not ev.estimated and ev.cost_nanos and ev.cost_nanos > 0
    assert (ev.api_format, ev.endpoint, ev.model, ev.provider, ev.status) == (
        "openai",
        "responses",
        MODEL,
        "ant",
        200,
    )


async def test_responses_stream_served_by_anthropic(
    gw: Harness, client: openai.AsyncOpenAI
) -> None:
    gw.anthropic.usage = FakeUsage(cached_tokens=30)
    async with client.responses.stream(
        model=MODEL, instructions=INSTRUCTIONS, input=QUESTION, store=False
    ) as stream:
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        final = await stream.get_final_response()
    assert gw.anthropic.last.json["stream"] is True
    assert "".join(deltas) == REPLY == final.output_text
    assert final.status == "completed" and final.usage is not None
    assert (final.usage.input_tokens, final.usage.output_tokens) == (
        PROMPT_WORDS + 30,
        REPLY_WORDS,
    )
    (ev,) = gw.events()
    assert ev.usage == Usage(
        input_tokens=PROMPT_WORDS + 30, cached_tokens=30, output_tokens=REPLY_WORDS
    )
    assert (ev.endpoint, ev.stream, ev.status, ev.estimated) == ("responses", True, 200, False)


async def test_responses_tool_call_and_result_round_trip(
    gw: Harness, client: openai.AsyncOpenAI
) -> None:
    """Codex-shaped: a function tool, the hosted web search it sends by default (dropped),
    a streamed tool call, then its output sent back in ``input``."""
    gw.anthropic.next_scenario.append("tool-call")
    tools: Any = [WEATHER_TOOL, {"type": "web_search"}]
    async with client.responses.stream(
        model=MODEL, input=QUESTION, tools=tools, store=False
    ) as stream:
        final = await stream.get_final_response()
    sent = gw.anthropic.last.json
    assert [t["name"] for t in sent["tools"]] == ["get_weather"]
    (call,) = [item for item in final.output if item.type == "function_call"]
    assert call.name == "get_weather"
    assert json.loads(call.arguments) == {"city": "capital of France?", "unit": "celsius"}
    assert final.usage is not None
    ev = gw.events()[-1]
    assert ev.usage == Usage(
        input_tokens=final.usage.input_tokens, output_tokens=final.usage.output_tokens
    )
    assert ev.usage.output_tokens > 0 and not ev.estimated

    resp = await client.responses.create(
        model=MODEL,
        input=[
            {"role": "user", "content": QUESTION},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"},
        ],
        tools=[WEATHER_TOOL],
        store=False,
    )
    messages = gw.anthropic.last.json["messages"]
    assert [m["role"] for m in messages] == ["user", "assistant", "user"]
    assert messages[1]["content"][0]["type"] == "tool_use"
    result = messages[2]["content"][0]
    assert result["type"] == "tool_result" and result["tool_use_id"] == call.call_id
    assert resp.status == "completed"


async def test_responses_stream_cut_short_ends_in_response_failed(
    gw: Harness, client: openai.AsyncOpenAI
) -> None:
    gw.anthropic.next_scenario.append("drop-mid-stream")
    failed: list[Any] = []
    async with client.responses.stream(model=MODEL, input=QUESTION, store=False) as stream:
        async for event in stream:
            if event.type == "response.failed":
                failed.append(event.response)
    assert len(failed) == 1 and failed[0].status == "failed"
    assert failed[0].error is not None and failed[0].error.code == "server_error"
    (ev,) = gw.events()
    # The input count came in message_start (exact); the output is counted from the text.
    assert ev.error_kind == "upstream_unavailable" and ev.estimated
    assert ev.usage.input_tokens == len(QUESTION.split()) and ev.usage.output_tokens > 0


async def test_responses_forcing_a_hosted_tool_is_refused(
    gw: Harness, client: openai.AsyncOpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.responses.create(
            model=MODEL,
            input=QUESTION,
            tools=[{"type": "web_search"}],
            tool_choice="required",
            store=False,
        )
    assert "hosted" in str(info.value)
    assert gw.anthropic.requests == []


async def test_responses_stream_upstream_error_is_scrubbed_and_fails_the_response(
    gw: Harness, client: openai.AsyncOpenAI
) -> None:
    gw.anthropic.next_scenario.append("error-mid-stream+echo-key")
    failed: list[Any] = []
    async with client.responses.stream(model=MODEL, input=QUESTION, store=False) as stream:
        async for event in stream:
            if event.type == "response.failed":
                failed.append(event.response)
    assert len(failed) == 1 and failed[0].error is not None
    message = failed[0].error.message
    assert "Incorrect API key provided" in message
    (ev,) = gw.events()
    for text in (message, ev.error_message):
        assert_clean(text)
