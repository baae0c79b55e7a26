"""pydantic-ai agents on ``OpenAIChatModel``, ``OpenAIResponsesModel`` and ``AnthropicModel``:
a run, a streamed run and a run that calls a tool (two model calls)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anthropic
import openai
import pytest
from pydantic_ai import Agent
from pydantic_ai.models import Model
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.anthropic import AnthropicProvider
from pydantic_ai.providers.openai import OpenAIProvider

from tests.clients.conftest import Ledger, weather
from tests.gateway.harness import Harness

CASES = [
    ("chat", "openai", "gpt-4o-mini"),
    ("chat", "openai", "claude-sonnet"),
    ("responses", "openai", "gpt-4o-mini"),
    ("responses", "openai", "claude-sonnet"),
    ("anthropic", "anthropic", "claude-sonnet"),
    ("anthropic", "anthropic", "claude-via-openai"),
]
IDS = [f"{kind}-{model}" for kind, _, model in CASES]


@asynccontextmanager
async def make(kind: str, model: str, h: Harness) -> AsyncIterator[Model]:
    """A fresh SDK client per test: each async test runs on an event loop of its own."""
    if kind == "anthropic":
        async with anthropic.AsyncAnthropic(base_url=h.url, api_key=h.key, max_retries=0) as a:
            yield AnthropicModel(model, provider=AnthropicProvider(anthropic_client=a))
        return
    async with openai.AsyncOpenAI(base_url=h.openai_base, api_key=h.key, max_retries=0) as o:
        provider = OpenAIProvider(openai_client=o)
        if kind == "responses":
            yield OpenAIResponsesModel(model, provider=provider)
        else:
            yield OpenAIChatModel(model, provider=provider)


@pytest.mark.parametrize(("kind", "fmt", "model"), CASES, ids=IDS)
async def test_run(gateway: Harness, ledger: Ledger, kind: str, fmt: str, model: str) -> None:
    async with make(kind, model, gateway) as m:
        result = await Agent(m).run("Hello there")
    assert result.output
    usage = result.usage
    assert (usage.input_tokens, usage.output_tokens) == (
        ledger.usage.input_tokens,
        ledger.usage.output_tokens,
    )
    ledger.check(1, api_format=fmt)


@pytest.mark.parametrize(("kind", "fmt", "model"), CASES, ids=IDS)
async def test_run_stream(
    gateway: Harness, ledger: Ledger, kind: str, fmt: str, model: str
) -> None:
    async with (
        make(kind, model, gateway) as m,
        Agent(m).run_stream("Hello there") as result,
    ):
        text = await result.get_output()
    assert text
    assert result.usage.output_tokens == ledger.usage.output_tokens
    ledger.check(1, api_format=fmt)


@pytest.mark.parametrize(("kind", "fmt", "model"), CASES, ids=IDS)
async def test_tool_round_trip(
    gateway: Harness, ledger: Ledger, kind: str, fmt: str, model: str
) -> None:
    ledger.tool_call_next()
    async with make(kind, model, gateway) as m:
        result = await Agent(m, tools=[weather]).run("What is the weather in Paris?")
    assert result.output
    calls = [p for m in result.all_messages() for p in m.parts if p.part_kind == "tool-call"]
    assert [c.tool_name for c in calls] == ["weather"]
    assert result.usage.input_tokens == 2 * ledger.usage.input_tokens
    ledger.check(2, api_format=fmt)
