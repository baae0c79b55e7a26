"""Cross-format serving end to end: each official SDK against a deployment of the other kind.

``gpt-via-anthropic`` serves OpenAI chat clients from the (fake) Anthropic Messages API;
``claude-via-openai`` serves Anthropic clients from the (fake) OpenAI Chat Completions API.
Each test checks three things: what the upstream received (the translated body), what the
client got (its own wire format, parsed by its own SDK), and the usage and cost on the event.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import anthropic
import genai_prices
import openai
import pytest

from tests.fakes import FakeAnthropic, FakeOpenAI, FakeUsage
from tests.gateway.harness import Harness, config_for, running_gateway
from tokenomy.events import Usage, UsageEvent
from tokenomy.money import usd_to_nanos
from tokenomy.pricing.catalog import ms_to_datetime
from tokenomy.wire import DEFAULT_OUTPUT_CAP

SYSTEM = "You are terse."
QUESTION = "What is the capital of France?"
PROMPT_WORDS = 9  # the fakes count one word as one token
REPLY = "This is a fake reply to: You are terse. What is the capital of France?"
REPLY_WORDS = 15
REQUEST_ID = "x-tokenomy-request-id"
COST = "x-tokenomy-cost-usd"
WEATHER_PARAMS = {
    "type": "object",
    "properties": {
        "city": {"type": "string"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
    },
    "required": ["city"],
}
# The fakes fill a string argument with the last three prompt words, an enum with its first.
WEATHER_ARGS = {"city": "capital of France?", "unit": "celsius"}
OPENAI_TOOL: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": WEATHER_PARAMS,
    },
}
ANTHROPIC_TOOL: Any = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": WEATHER_PARAMS,
}
CLAUDE = "claude-sonnet-4-20250514"


@pytest.fixture
async def oai_client(gw: Harness) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=gw.openai_base, api_key=gw.key, max_retries=0) as c:
        yield c


@pytest.fixture
async def ant_client(gw: Harness) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=gw.url, api_key=gw.key, max_retries=0) as c:
        yield c


def assert_priced(ev: UsageEvent, expected: Usage, model: str, provider_id: str) -> Decimal:
    """The event's cost is genai-prices' for ``expected`` at the request's time."""
    calc = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=expected.input_tokens,
            cache_read_tokens=expected.cached_tokens,
            cache_write_tokens=expected.cache_write_tokens,
            cache_write_1h_tokens=expected.cache_write_1h_tokens,
            output_tokens=expected.output_tokens,
            output_reasoning_tokens=expected.reasoning_tokens,
        ),
        model,
        provider_id=provider_id,
        genai_request_timestamp=ms_to_datetime(ev.ts_ms),
    )
    assert ev.cost_nanos is not None and ev.cost_nanos == usd_to_nanos(calc.total_price)
    assert ev.price_source.endswith(f":{calc.provider.id}/{calc.model.id}")
    return calc.total_price


def text_of(blocks: Any) -> str:
    """All text of an Anthropic ``content`` value (string or list of blocks)."""
    if isinstance(blocks, str):
        return blocks
    return " ".join(b["text"] for b in blocks if b.get("type") == "text")


# ====================================================== OpenAI client → Anthropic upstream


async def test_openai_chat_served_by_anthropic_non_stream(
    gw: Harness, oai_client: openai.AsyncOpenAI
) -> None:
    gw.anthropic.usage = FakeUsage(cached_tokens=40, cache_write_tokens=12)
    raw = await oai_client.chat.completions.with_raw_response.create(
        model="gpt-via-anthropic",
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": QUESTION},
        ],
        max_tokens=200,
        temperature=0.25,
        stop=["END", "STOP"],
        user="end-user-1",
    )
    resp = raw.parse()

    up = gw.anthropic.last
    assert up.path == "/v1/messages"
    assert up.headers["x-api-key"] == "sk-ant-upstream" and up.headers["anthropic-version"]
    body = up.json
    assert body["model"] == CLAUDE
    assert body["system"] == SYSTEM
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert text_of(body["messages"][0]["content"]) == QUESTION
    assert body["max_tokens"] == 200
    assert body["temperature"] == 0.25
    assert body["stop_sequences"] == ["END", "STOP"]
    assert body["metadata"] == {"user_id": "end-user-1"}
    assert "stream" not in body

    assert resp.object == "chat.completion" and resp.model == "gpt-via-anthropic"
    choice = resp.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == REPLY
    assert choice.finish_reason == "stop"
    assert resp.usage is not None and resp.usage.prompt_tokens_details is not None
    # OpenAI's convention on the way out: prompt_tokens include the cache parts.
    assert resp.usage.prompt_tokens == PROMPT_WORDS + 40 + 12
    assert resp.usage.prompt_tokens_details.cached_tokens == 40
    assert resp.usage.completion_tokens == REPLY_WORDS

    ev = gw.event(raw.headers[REQUEST_ID])
    expected = Usage(
        input_tokens=PROMPT_WORDS + 52,
        cached_tokens=40,
        cache_write_tokens=12,
        output_tokens=REPLY_WORDS,
    )
    assert ev.usage == expected and not ev.estimated
    assert (ev.api_format, ev.endpoint, ev.model) == (
        "openai",
        "chat.completions",
        "gpt-via-anthropic",
    )
    assert (ev.provider, ev.upstream_model, ev.status) == ("ant", CLAUDE, 200)
    total = assert_priced(ev, expected, CLAUDE, "anthropic")
    assert Decimal(raw.headers[COST]) == total


async def test_openai_client_without_max_tokens_gets_the_default_cap_upstream(
    gw: Harness, oai_client: openai.AsyncOpenAI
) -> None:
    """Anthropic requires max_tokens; an OpenAI client need not send it."""
    await oai_client.chat.completions.create(
        model="gpt-via-anthropic",
        messages=[{"role": "user", "content": QUESTION}],
        top_p=0.9,
    )
    body = gw.anthropic.last.json
    assert body["max_tokens"] == DEFAULT_OUTPUT_CAP
    assert body["top_p"] == 0.9 and "temperature" not in body
    assert "system" not in body and "stop_sequences" not in body


async def test_configured_max_output_tokens_is_the_default_cap_upstream(
    sqlite_url: str, upstream_keys: None
) -> None:
    """README: ``max_output_tokens`` is the default max_tokens when an OpenAI client is
    served by Anthropic."""
    async with FakeOpenAI() as oai_up, FakeAnthropic() as ant_up:
        config = config_for(oai_up.base_url, ant_up.base_url)
        (model,) = [m for m in config["models"] if m["name"] == "gpt-via-anthropic"]
        model["max_output_tokens"] = 777
        async with (
            running_gateway(sqlite_url, config=config) as h,
            openai.AsyncOpenAI(base_url=h.openai_base, api_key=h.key, max_retries=0) as c,
        ):
            await c.chat.completions.create(
                model="gpt-via-anthropic", messages=[{"role": "user", "content": QUESTION}]
            )
            await c.chat.completions.create(
                model="gpt-via-anthropic",
                messages=[{"role": "user", "content": QUESTION}],
                max_completion_tokens=55,
            )
        assert [r.json["max_tokens"] for r in ant_up.requests] == [777, 55]


async def test_openai_tool_call_served_by_anthropic_and_tool_result_round_trip(
    gw: Harness, oai_client: openai.AsyncOpenAI
) -> None:
    gw.anthropic.next_scenario.append("tool-call")
    messages: list[Any] = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": QUESTION},
    ]
    raw = await oai_client.chat.completions.with_raw_response.create(
        model="gpt-via-anthropic", messages=messages, tools=[OPENAI_TOOL], max_tokens=100
    )
    resp = raw.parse()
    sent = gw.anthropic.last.json
    assert sent["tools"] == [ANTHROPIC_TOOL]

    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None and len(choice.message.tool_calls) == 1
    call = choice.message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == WEATHER_ARGS
    ev = gw.event(raw.headers[REQUEST_ID])
    assert resp.usage is not None
    assert ev.usage == Usage(
        input_tokens=resp.usage.prompt_tokens, output_tokens=resp.usage.completion_tokens
    )
    assert ev.usage.output_tokens > 0 and not ev.estimated
    assert_priced(ev, ev.usage, CLAUDE, "anthropic")

    # Next turn: the assistant's call and the tool's answer become tool_use / tool_result.
    followup = [
        *messages,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": call.id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": call.function.arguments},
                }
            ],
        },
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 21 C"},
    ]
    second = await oai_client.chat.completions.create(
        model="gpt-via-anthropic", messages=followup, tools=[OPENAI_TOOL], max_tokens=100
    )
    assert second.choices[0].finish_reason == "stop"
    turns = gw.anthropic.last.json["messages"]
    assert [t["role"] for t in turns] == ["user", "assistant", "user"]
    (tool_use,) = [b for b in turns[1]["content"] if b["type"] == "tool_use"]
    assert tool_use["name"] == "get_weather" and tool_use["input"] == WEATHER_ARGS
    (result,) = [b for b in turns[2]["content"] if b["type"] == "tool_result"]
    assert result["tool_use_id"] == tool_use["id"]
    assert text_of(result["content"]) == "Sunny, 21 C"


@pytest.mark.parametrize("client_asks", [False, True])
async def test_openai_chat_stream_served_by_anthropic(
    gw: Harness, oai_client: openai.AsyncOpenAI, client_asks: bool
) -> None:
    gw.anthropic.usage = FakeUsage(cached_tokens=30, cache_write_tokens=10, cache_write_1h_tokens=4)
    options: Any = {"include_usage": True} if client_asks else openai.omit
    raw = await oai_client.chat.completions.with_raw_response.create(
        model="gpt-via-anthropic",
        messages=[
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": QUESTION},
        ],
        max_tokens=300,
        temperature=0.5,
        stop=["END"],
        stream=True,
        stream_options=options,
    )
    chunks = [c async for c in raw.parse()]
    body = gw.anthropic.last.json
    assert body["stream"] is True and body["model"] == CLAUDE
    assert (body["max_tokens"], body["temperature"], body["stop_sequences"]) == (300, 0.5, ["END"])
    assert body["system"] == SYSTEM

    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY
    reasons = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert reasons[-1] == "stop" and reasons.count("stop") == 1
    expected = Usage(
        input_tokens=PROMPT_WORDS + 40,
        cached_tokens=30,
        cache_write_tokens=10,
        cache_write_1h_tokens=4,
        output_tokens=REPLY_WORDS,
    )
    usage_chunks = [c for c in chunks if c.usage is not None]
    if client_asks:
        assert len(usage_chunks) == 1
        u = usage_chunks[0].usage
        assert u is not None and u.prompt_tokens_details is not None
        assert (u.prompt_tokens, u.completion_tokens) == (PROMPT_WORDS + 40, REPLY_WORDS)
        assert u.prompt_tokens_details.cached_tokens == 30
    else:
        assert usage_chunks == []

    ev = gw.event(raw.headers[REQUEST_ID])
    assert ev.usage == expected and not ev.estimated
    assert (ev.stream, ev.status, ev.provider) == (True, 200, "ant")
    assert_priced(ev, expected, CLAUDE, "anthropic")


async def test_openai_tool_call_stream_served_by_anthropic(
    gw: Harness, oai_client: openai.AsyncOpenAI
) -> None:
    gw.anthropic.next_scenario.append("tool-call")
    raw = await oai_client.chat.completions.with_raw_response.create(
        model="gpt-via-anthropic",
        messages=[{"role": "user", "content": QUESTION}],
        tools=[OPENAI_TOOL],
        stream=True,
        stream_options={"include_usage": True},
    )
    names: list[str] = []
    args = ""
    reasons: list[str] = []
    usage = None
    async for chunk in raw.parse():
        if chunk.usage is not None:
            usage = chunk.usage
        for choice in chunk.choices:
            for tc in choice.delta.tool_calls or ():
                assert tc.index == 0
                if tc.function and tc.function.name:
                    names.append(tc.function.name)
                args += (tc.function.arguments or "") if tc.function else ""
            if choice.finish_reason:
                reasons.append(choice.finish_reason)
    assert names == ["get_weather"] and reasons == ["tool_calls"]
    assert json.loads(args) == {"city": "capital of France?", "unit": "celsius"}
    assert gw.anthropic.last.json["tools"] == [ANTHROPIC_TOOL]
    ev = gw.event(raw.headers[REQUEST_ID])
    assert usage is not None
    assert ev.usage == Usage(
        input_tokens=usage.prompt_tokens, output_tokens=usage.completion_tokens
    )
    assert not ev.estimated


# ====================================================== Anthropic client → OpenAI upstream


async def test_anthropic_messages_served_by_openai_non_stream(
    gw: Harness, ant_client: anthropic.AsyncAnthropic
) -> None:
    gw.openai.usage = FakeUsage(cached_tokens=64, reasoning_tokens=6)
    raw = await ant_client.messages.with_raw_response.create(
        model="claude-via-openai",
        system=SYSTEM,
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=123,
        stop_sequences=["END"],
        # This SDK release has no ``temperature`` argument; older clients send it.
        extra_body={"temperature": 0.7},
        metadata={"user_id": "end-user-2"},
    )
    msg = await raw.parse()

    up = gw.openai.last
    assert up.path == "/v1/chat/completions"
    assert up.headers["authorization"] == "Bearer sk-upstream-openai"
    body = up.json
    assert body["model"] == "gpt-4o"
    assert body["messages"][0] == {"role": "system", "content": SYSTEM}
    assert body["messages"][1]["role"] == "user"
    content = body["messages"][1]["content"]
    assert (content if isinstance(content, str) else content[0]["text"]) == QUESTION
    assert len(body["messages"]) == 2
    assert body["max_tokens"] == 123
    assert body["temperature"] == 0.7
    assert body["stop"] == ["END"]
    assert body["user"] == "end-user-2"

    assert msg.type == "message" and msg.role == "assistant" and msg.model == "claude-via-openai"
    assert [b.type for b in msg.content] == ["text"]
    assert msg.content[0].type == "text" and msg.content[0].text == REPLY
    assert msg.stop_reason == "end_turn"
    # Anthropic's convention on the way out: input_tokens exclude cache reads.
    assert msg.usage.input_tokens == PROMPT_WORDS
    assert msg.usage.cache_read_input_tokens == 64
    assert msg.usage.output_tokens == REPLY_WORDS + 6

    ev = gw.event(raw.headers[REQUEST_ID])
    expected = Usage(
        input_tokens=PROMPT_WORDS + 64,
        cached_tokens=64,
        output_tokens=REPLY_WORDS + 6,
        reasoning_tokens=6,
    )
    assert ev.usage == expected and not ev.estimated
    assert (ev.api_format, ev.endpoint, ev.model) == ("anthropic", "messages", "claude-via-openai")
    assert (ev.provider, ev.upstream_model, ev.end_user) == ("oai", "gpt-4o", "end-user-2")
    total = assert_priced(ev, expected, "gpt-4o", "openai")
    assert Decimal(raw.headers[COST]) == total


async def test_anthropic_tool_use_served_by_openai_and_tool_result_round_trip(
    gw: Harness, ant_client: anthropic.AsyncAnthropic
) -> None:
    gw.openai.next_scenario.append("tool-call")
    first_turn: list[Any] = [{"role": "user", "content": QUESTION}]
    msg = await ant_client.messages.create(
        model="claude-via-openai",
        system=SYSTEM,
        messages=first_turn,
        max_tokens=100,
        tools=[ANTHROPIC_TOOL],
    )
    sent = gw.openai.last.json
    assert sent["tools"] == [OPENAI_TOOL]

    assert msg.stop_reason == "tool_use"
    (tool_use,) = [b for b in msg.content if b.type == "tool_use"]
    assert tool_use.name == "get_weather" and tool_use.input == WEATHER_ARGS
    assert tool_use.id

    await ant_client.messages.create(
        model="claude-via-openai",
        system=SYSTEM,
        max_tokens=100,
        tools=[ANTHROPIC_TOOL],
        messages=[
            *first_turn,
            {"role": "assistant", "content": [tool_use.model_dump(exclude_none=True)]},
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": tool_use.id, "content": "Sunny, 21 C"}
                ],
            },
        ],
    )
    msgs = gw.openai.last.json["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "tool"]
    (call,) = msgs[2]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == WEATHER_ARGS
    assert msgs[3]["tool_call_id"] == call["id"]
    content = msgs[3]["content"]
    assert (content if isinstance(content, str) else content[0]["text"]) == "Sunny, 21 C"


async def test_anthropic_messages_stream_served_by_openai(
    gw: Harness, ant_client: anthropic.AsyncAnthropic
) -> None:
    gw.openai.usage = FakeUsage(cached_tokens=16)
    async with ant_client.messages.stream(
        model="claude-via-openai",
        system=SYSTEM,
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=321,
        stop_sequences=["END"],
        extra_body={"temperature": 0.1},
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
        rid = stream.response.headers[REQUEST_ID]
    body = gw.openai.last.json
    assert body["stream"] is True and body["model"] == "gpt-4o"
    # The gateway always asks the OpenAI upstream for stream usage.
    assert body["stream_options"] == {"include_usage": True}
    assert (body["max_tokens"], body["temperature"], body["stop"]) == (321, 0.1, ["END"])

    assert text == REPLY
    assert final.stop_reason == "end_turn" and final.model == "claude-via-openai"
    assert final.usage.input_tokens + final.usage.cache_read_input_tokens == PROMPT_WORDS + 16
    assert final.usage.cache_read_input_tokens == 16
    assert final.usage.output_tokens == REPLY_WORDS

    ev = gw.event(rid)
    expected = Usage(input_tokens=PROMPT_WORDS + 16, cached_tokens=16, output_tokens=REPLY_WORDS)
    assert ev.usage == expected and not ev.estimated
    assert (ev.api_format, ev.stream, ev.status, ev.provider) == ("anthropic", True, 200, "oai")
    assert_priced(ev, expected, "gpt-4o", "openai")


async def test_anthropic_tool_use_stream_served_by_openai(
    gw: Harness, ant_client: anthropic.AsyncAnthropic
) -> None:
    gw.openai.next_scenario.append("tool-call")
    async with ant_client.messages.stream(
        model="claude-via-openai",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=100,
        tools=[ANTHROPIC_TOOL],
    ) as stream:
        final = await stream.get_final_message()
        rid = stream.response.headers[REQUEST_ID]
    assert final.stop_reason == "tool_use"
    (tool_use,) = [b for b in final.content if b.type == "tool_use"]
    assert tool_use.name == "get_weather" and tool_use.input == WEATHER_ARGS
    ev = gw.event(rid)
    assert ev.usage.input_tokens == final.usage.input_tokens + final.usage.cache_read_input_tokens
    assert ev.usage.output_tokens == final.usage.output_tokens > 0
    assert not ev.estimated


async def test_non_chat_endpoint_on_anthropic_deployment_is_a_400_that_says_so(
    gw: Harness, oai_client: openai.AsyncOpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await oai_client.completions.create(model="gpt-via-anthropic", prompt="hello there")
    assert info.value.status_code == 400
    assert "Anthropic" in info.value.message
    assert gw.anthropic.requests == []
    ev = gw.event(info.value.response.headers[REQUEST_ID])
    assert (ev.status, ev.error_kind, ev.model) == (
        400,
        "invalid_request_error",
        "gpt-via-anthropic",
    )
