"""The OpenAI Agents SDK (``openai-agents``) on ``OpenAIChatCompletionsModel`` and
``OpenAIResponsesModel``: a run, a streamed run and a run that calls a function tool."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import openai
import pytest
from agents import (
    Agent,
    Model,
    ModelSettings,
    OpenAIChatCompletionsModel,
    OpenAIResponsesModel,
    Runner,
    function_tool,
    set_tracing_disabled,
)

from tests.clients.conftest import Ledger, weather
from tests.gateway.harness import Harness

set_tracing_disabled(True)  # traces would go to api.openai.com

CASES = [
    ("chat", "gpt-4o-mini"),
    ("chat", "claude-sonnet"),
    ("responses", "gpt-4o-mini"),
    ("responses", "claude-sonnet"),
]
IDS = [f"{kind}-{model}" for kind, model in CASES]


@asynccontextmanager
async def make(kind: str, model: str, h: Harness) -> AsyncIterator[Model]:
    async with openai.AsyncOpenAI(base_url=h.openai_base, api_key=h.key, max_retries=0) as c:
        if kind == "responses":
            yield OpenAIResponsesModel(model, openai_client=c)
        else:
            yield OpenAIChatCompletionsModel(model, openai_client=c)


@pytest.mark.parametrize(("kind", "model"), CASES, ids=IDS)
async def test_run(gateway: Harness, ledger: Ledger, kind: str, model: str) -> None:
    async with make(kind, model, gateway) as m:
        result = await Runner.run(Agent(name="a", model=m), "Hello there")
    assert result.final_output
    usage = result.context_wrapper.usage
    assert (usage.input_tokens, usage.output_tokens) == (
        ledger.usage.input_tokens,
        ledger.usage.output_tokens,
    )
    ledger.check(1, api_format="openai")


@pytest.mark.parametrize("include_usage", [None, True])
@pytest.mark.parametrize(("kind", "model"), CASES, ids=IDS)
async def test_run_streamed(
    gateway: Harness, ledger: Ledger, kind: str, model: str, include_usage: bool | None
) -> None:
    """Off api.openai.com the SDK asks a chat stream for usage only with ``include_usage``;
    the ledger is exact either way (the gateway asks upstream itself)."""
    settings = ModelSettings(include_usage=include_usage)
    async with make(kind, model, gateway) as m:
        agent = Agent(name="a", model=m, model_settings=settings)
        result = Runner.run_streamed(agent, "Hello there")
        async for _ in result.stream_events():
            pass
    assert result.final_output
    told = result.context_wrapper.usage.output_tokens
    if kind == "chat" and include_usage is None:
        assert told == 0  # the client did not ask: the gateway must not add a usage chunk
    else:
        assert told == ledger.usage.output_tokens
    ledger.check(1, api_format="openai")


@pytest.mark.parametrize(("kind", "model"), CASES, ids=IDS)
async def test_tool_round_trip(gateway: Harness, ledger: Ledger, kind: str, model: str) -> None:
    ledger.tool_call_next()
    async with make(kind, model, gateway) as m:
        agent = Agent(name="a", model=m, tools=[function_tool(weather)])
        result = await Runner.run(agent, "What is the weather in Paris?")
    assert result.final_output
    kinds = [item.type for item in result.new_items]
    assert kinds == ["tool_call_item", "tool_call_output_item", "message_output_item"]
    assert result.context_wrapper.usage.requests == 2
    ledger.check(2, api_format="openai")
