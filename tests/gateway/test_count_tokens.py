"""``POST /v1/messages/count_tokens`` through the official ``anthropic`` SDK.

Forwarded to an Anthropic deployment (its exact count relayed); counted locally with the
offline tokenizer for an OpenAI-compatible deployment (flagged as an estimate). Either
way it is authenticated and rate-limited like any call, on the ledger, and never billed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest

from tests.gateway.harness import Harness
from tokenomy.budgets import storage
from tokenomy.budgets.model import BUDGET, RATE_LIMIT
from tokenomy.events import Usage
from tokenomy.metering.tokenizer import estimate_messages_input

MESSAGES: Any = [{"role": "user", "content": "What is the capital of France?"}]
SYSTEM = "You are terse."
REQUEST_ID = "x-tokenomy-request-id"
ESTIMATED = "x-tokenomy-estimated"


@pytest.fixture
async def client(gw: Harness) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=gw.url, api_key=gw.key, max_retries=0) as c:
        yield c


async def test_count_tokens_forwarded_to_anthropic(
    gw: Harness, client: anthropic.AsyncAnthropic
) -> None:
    raw = await client.messages.with_raw_response.count_tokens(
        model="claude-sonnet", system=SYSTEM, messages=MESSAGES
    )
    count = await raw.parse()
    up = gw.anthropic.last
    assert up.path == "/v1/messages/count_tokens"
    assert up.json["model"] == "claude-sonnet-4-20250514" and up.json["system"] == SYSTEM
    assert count.input_tokens == 9  # the fake counts one word as one token
    assert ESTIMATED not in raw.headers

    ev = gw.event(raw.headers[REQUEST_ID])
    assert (ev.api_format, ev.endpoint, ev.model, ev.provider, ev.status) == (
        "anthropic",
        "messages.count_tokens",
        "claude-sonnet",
        "ant",
        200,
    )
    assert ev.cost_nanos == 0 and ev.usage == Usage()


@pytest.mark.parametrize("model", ["claude-via-openai", "gpt-4o"])
async def test_count_tokens_estimated_locally_for_openai_deployments(
    gw: Harness, client: anthropic.AsyncAnthropic, model: str
) -> None:
    raw = await client.messages.with_raw_response.count_tokens(
        model=model, system=SYSTEM, messages=MESSAGES
    )
    count = await raw.parse()
    assert raw.headers[ESTIMATED] == "true"
    expected = estimate_messages_input({"system": SYSTEM, "messages": MESSAGES})
    assert count.input_tokens == expected > 0
    assert gw.openai.requests == []  # nothing went upstream
    ev = gw.event(raw.headers[REQUEST_ID])
    assert (ev.endpoint, ev.provider, ev.status, ev.cost_nanos) == (
        "messages.count_tokens",
        "oai",
        200,
        0,
    )


async def test_count_tokens_needs_a_valid_key(gw: Harness) -> None:
    async with anthropic.AsyncAnthropic(base_url=gw.url, api_key="tk-wrong", max_retries=0) as c:
        with pytest.raises(anthropic.AuthenticationError):
            await c.messages.count_tokens(model="claude-sonnet", messages=MESSAGES)
    assert gw.anthropic.requests == []


async def test_count_tokens_is_rate_limited_but_not_billed(
    gw: Harness, client: anthropic.AsyncAnthropic
) -> None:
    storage.set_budget(
        gw.store,
        kind=RATE_LIMIT,
        scope="team:research",
        unit="requests",
        limit=2,
        period="total",
        hard=True,
    )
    # A USD budget with nothing left: a billed call would be refused, a count is not.
    storage.set_budget(
        gw.store, kind=BUDGET, scope="user:alice", unit="usd", limit=1, period="day", hard=True
    )
    await gw.gateway.budgets.refresh()
    with pytest.raises(anthropic.RateLimitError) as refused:
        await client.messages.create(model="claude-sonnet", max_tokens=10, messages=MESSAGES)
    assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert "Budget exceeded" in str(refused.value)
    for model in ("claude-sonnet", "claude-via-openai"):
        await client.messages.count_tokens(model=model, messages=MESSAGES)
    with pytest.raises(anthropic.RateLimitError) as info:
        await client.messages.count_tokens(model="claude-sonnet", messages=MESSAGES)
    assert info.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    events = gw.events()
    assert [(e.endpoint, e.status) for e in events] == [
        ("messages", 429),
        ("messages.count_tokens", 200),
        ("messages.count_tokens", 200),
        ("messages.count_tokens", 429),
    ]
    assert events[-1].error_kind == "rate_limited"
    assert all(e.cost_nanos == 0 for e in events)
