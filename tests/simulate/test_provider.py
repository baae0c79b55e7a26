"""The simulated token factory (``kind = "simulated"``) through the gateway, with the official SDKs.

Every answer is checked against the ledger: what the SDK saw is what was recorded and billed.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest

from tests.gateway.harness import Harness, running_gateway
from tests.ports import unused_port
from tokenomy.metering.tokenizer import count_text
from tokenomy.money import nanos_str
from tokenomy.simulated import answers

PRICE = {"input": "2.50", "output": "10.00"}


def sim_config() -> dict[str, Any]:
    return {
        "gateway": {"ledger_flush_interval_s": 0.02},
        "providers": {
            "sim": {"kind": "simulated", "tokens_per_s": 0, "ttft_ms": 0, "answer_tokens": 40},
            "slow": {"kind": "simulated", "tokens_per_s": 100, "ttft_ms": 200, "answer_tokens": 50},
            "broken": {"kind": "simulated", "ttft_ms": 0, "failure_rate": 1.0},
        },
        "models": [
            {"name": "sim", "deployments": [{"provider": "sim", "model": "sim-1", "price": "p"}]},
            {"name": "slow", "deployments": [{"provider": "slow", "model": "s", "price": "p"}]},
            {"name": "broken", "deployments": [{"provider": "broken", "model": "b", "price": "p"}]},
        ],
        "prices": {"p": PRICE},
    }


@pytest.fixture
async def gw(sqlite_url: str) -> AsyncIterator[Harness]:
    async with running_gateway(sqlite_url, config=sim_config()) as h:
        yield h


def oai(gw: Harness) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gw.openai_base, api_key=gw.key, max_retries=0)


def ant(gw: Harness) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=gw.url, api_key=gw.key, max_retries=0)


def cost_of(input_tokens: int, output_tokens: int) -> int:
    """nano-USD at PRICE."""
    usd = (input_tokens * Decimal(PRICE["input"]) + output_tokens * Decimal(PRICE["output"])) / (
        10**6
    )
    return int(usd * 10**9)


MESSAGES: list[Any] = [
    {"role": "system", "content": "You are a travel agent."},
    {"role": "user", "content": "Plan a three-day trip to Lisbon with a budget of 900 euros."},
]


async def test_chat_unary_usage_is_exact_on_the_ledger_and_matches_the_text(gw: Harness) -> None:
    async with oai(gw) as client:
        raw = await client.chat.completions.with_raw_response.create(model="sim", messages=MESSAGES)
    done = raw.parse()
    assert done.usage is not None and done.choices[0].message.content
    text = done.choices[0].message.content
    assert done.usage.completion_tokens == 40 == count_text(text)
    assert done.choices[0].finish_reason == "stop"
    ev = gw.event(raw.headers["x-tokenomy-request-id"])
    assert ev.status == 200 and not ev.estimated and ev.provider == "sim"
    assert ev.usage.input_tokens == done.usage.prompt_tokens > 10
    assert ev.usage.output_tokens == 40
    assert ev.cost_nanos == cost_of(done.usage.prompt_tokens, 40)
    assert raw.headers["x-tokenomy-cost-usd"] == nanos_str(ev.cost_nanos)


async def test_chat_stream_usage_equals_unary_and_ledger(gw: Harness) -> None:
    async with oai(gw) as client:
        unary = await client.chat.completions.create(model="sim", messages=MESSAGES, max_tokens=25)
        stream = await client.chat.completions.create(
            model="sim",
            messages=MESSAGES,
            max_tokens=25,
            stream=True,
            stream_options={"include_usage": True},
        )
        text, usage, finish = "", None, None
        async for chunk in stream:
            usage = chunk.usage or usage
            for c in chunk.choices:
                text += c.delta.content or ""
                finish = c.finish_reason or finish
        # Without include_usage the client sees no usage, the ledger still has it.
        quiet = await client.chat.completions.create(
            model="sim", messages=MESSAGES, max_tokens=25, stream=True
        )
        assert [chunk.usage async for chunk in quiet if chunk.usage is not None] == []
    assert unary.usage is not None and usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        unary.usage.prompt_tokens,
        unary.usage.completion_tokens,
    )
    assert usage.completion_tokens == 25 == count_text(text) and finish == "length"
    assert text == unary.choices[0].message.content
    events = gw.events()
    assert len(events) == 3
    for ev in events:
        assert (ev.usage.input_tokens, ev.usage.output_tokens) == (usage.prompt_tokens, 25)
        assert not ev.estimated and ev.cost_nanos == cost_of(usage.prompt_tokens, 25)
    assert [ev.stream for ev in events] == [False, True, True]


async def test_tool_calls_act_then_observe(gw: Harness) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "search_flights",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    async with oai(gw) as client:
        act = await client.chat.completions.create(model="sim", messages=MESSAGES, tools=tools)
        (call,) = act.choices[0].message.tool_calls or []
        assert act.choices[0].finish_reason == "tool_calls"
        assert call.function.name == "search_flights"
        assert "city" in call.function.arguments
        assert act.usage is not None
        assert act.usage.completion_tokens == count_text("search_flights") + count_text(
            call.function.arguments
        )
        history = [
            *MESSAGES,
            act.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "TP123 09:40 EUR 120"},
        ]
        observe = await client.chat.completions.create(
            model="sim", messages=history, tools=tools, stream=True
        )
        kinds = set()
        async for chunk in observe:
            for c in chunk.choices:
                kinds |= {"text"} if c.delta.content else set()
                kinds |= {"tool"} if c.delta.tool_calls else set()
        # Same question again: the same call (a looping agent repeats itself exactly).
        again = await client.chat.completions.create(model="sim", messages=MESSAGES, tools=tools)
    assert kinds == {"text"}
    (call2,) = again.choices[0].message.tool_calls or []
    assert call2.function.arguments == call.function.arguments


async def test_anthropic_messages_unary_and_stream(gw: Harness) -> None:
    async with ant(gw) as client:
        msg = await client.messages.create(
            model="sim", max_tokens=512, system="Be brief.", messages=MESSAGES[1:]
        )
        async with client.messages.stream(
            model="sim", max_tokens=512, system="Be brief.", messages=MESSAGES[1:]
        ) as stream:
            text = "".join([t async for t in stream.text_stream])
            final = await stream.get_final_message()
        counted = await client.messages.count_tokens(
            model="sim", system="Be brief.", messages=MESSAGES[1:]
        )
    assert msg.stop_reason == "end_turn" and msg.content[0].type == "text"
    assert msg.usage.output_tokens == 40 == count_text(text)
    assert text == msg.content[0].text
    assert final.usage.input_tokens == msg.usage.input_tokens == counted.input_tokens
    assert final.usage.output_tokens == 40
    billed = [ev for ev in gw.events() if ev.endpoint == "messages"]
    assert len(billed) == 2
    for ev in billed:
        assert ev.api_format == "anthropic" and not ev.estimated
        assert (ev.usage.input_tokens, ev.usage.output_tokens) == (msg.usage.input_tokens, 40)
        assert ev.cost_nanos == cost_of(msg.usage.input_tokens, 40)


async def test_completions_embeddings_and_responses(gw: Harness) -> None:
    async with oai(gw) as client:
        comp = await client.completions.create(model="sim", prompt="Once upon a time", max_tokens=7)
        emb = await client.embeddings.create(model="sim", input=["a", "b c"])
        resp = await client.responses.create(model="sim", input="Summarize the trip.")
        streamed = await client.responses.create(
            model="sim", input="Summarize the trip.", stream=True
        )
        final = None
        async for event in streamed:
            if event.type == "response.completed":
                final = event.response
    assert comp.usage is not None and comp.usage.completion_tokens == 7
    assert comp.choices[0].finish_reason == "length" and count_text(comp.choices[0].text) == 7
    assert len(emb.data) == 2 and len(emb.data[0].embedding) == answers.EMBEDDING_DIMENSIONS
    assert resp.usage is not None and resp.usage.output_tokens == 40
    assert count_text(resp.output_text) == 40
    assert final is not None and final.usage is not None
    assert final.usage.input_tokens == resp.usage.input_tokens
    assert final.output_text == resp.output_text
    by_endpoint = {ev.endpoint: ev for ev in gw.events()}
    assert by_endpoint["completions"].usage.output_tokens == 7
    assert by_endpoint["embeddings"].usage.input_tokens == emb.usage.prompt_tokens > 0
    assert by_endpoint["embeddings"].usage.output_tokens == 0
    assert by_endpoint["responses"].usage.input_tokens == resp.usage.input_tokens
    assert all(not ev.estimated for ev in by_endpoint.values())


async def test_failure_rate_injects_real_provider_errors_and_they_are_recorded(
    gw: Harness,
) -> None:
    seen: list[int] = []
    async with oai(gw) as client:
        for _ in range(4):
            with pytest.raises(openai.APIStatusError) as err:
                await client.chat.completions.create(model="broken", messages=MESSAGES)
            seen.append(err.value.status_code)
        assert isinstance(err.value, openai.InternalServerError)
    with pytest.raises(anthropic.RateLimitError):
        async with ant(gw) as aclient:
            await aclient.messages.create(model="broken", max_tokens=10, messages=MESSAGES[1:])
    assert seen == [429, 500, 429, 503]
    events = gw.events()
    assert [ev.status for ev in events] == [429, 500, 429, 503, 429]
    assert all(ev.provider == "broken" and ev.cost_nanos == 0 for ev in events)
    assert all(ev.error_kind for ev in events)


async def test_speed_and_time_to_first_token_are_honoured(gw: Harness) -> None:
    # 50 tokens at 100 tokens/s after 200 ms: not answered in a blink (a loose lower bound).
    async with oai(gw) as client:
        t0 = time.perf_counter()
        done = await client.chat.completions.create(model="slow", messages=MESSAGES)
        unary_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        stream = await client.chat.completions.create(model="slow", messages=MESSAGES, stream=True)
        first = None
        async for chunk in stream:
            if first is None and chunk.choices and chunk.choices[0].delta.content:
                first = time.perf_counter() - t0
    assert done.usage is not None and done.usage.completion_tokens == 50
    assert unary_s >= 0.6
    assert first is not None and first >= 0.15


async def test_the_factory_runs_on_its_own_for_any_client() -> None:
    port = unused_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "tokenomy.simulated", "--port", str(port), "--answer-tokens", "9"),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line.decode().strip() == f"listening on http://127.0.0.1:{port}/sim"
        base = f"http://127.0.0.1:{port}/sim"
        async with openai.AsyncOpenAI(base_url=base + "/v1", api_key="none") as client:
            done = await client.chat.completions.create(model="any", messages=MESSAGES)
        async with anthropic.AsyncAnthropic(base_url=base, api_key="none") as aclient:
            msg = await aclient.messages.create(model="any", max_tokens=50, messages=MESSAGES[1:])
        assert done.usage is not None and done.usage.completion_tokens == 9
        assert msg.usage.output_tokens == 9
    finally:
        proc.terminate()
        await proc.wait()
