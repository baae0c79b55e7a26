"""The Anthropic wire format through the gateway, driven by the official ``anthropic`` SDK.

Anthropic reports ``input_tokens`` *without* cache reads and writes; the ledger records all
input (uncached + cache reads + cache writes), keeps the 1-hour part of the writes, and
prices each bucket once, exactly as genai-prices does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import anthropic
import genai_prices
import httpx2
import pytest

from tests.fakes import FakeUsage
from tests.gateway.harness import Harness
from tokenomy.events import Usage, UsageEvent
from tokenomy.money import usd_to_nanos
from tokenomy.pricing.catalog import ms_to_datetime

SYSTEM = "You are terse."
MESSAGES: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]
PROMPT_WORDS = 9  # system + user words; the fakes count one word as one token
REPLY = "This is a fake reply to: You are terse. What is the capital of France?"
REPLY_WORDS = 15
UPSTREAM_MODEL = "claude-sonnet-4-20250514"
REQUEST_ID = "x-tokenomy-request-id"
COST = "x-tokenomy-cost-usd"
# 100 cache reads, 60 cache writes of which 25 with the 1-hour TTL, 9 uncached.
CACHE = FakeUsage(cached_tokens=100, cache_write_tokens=60, cache_write_1h_tokens=25)


@pytest.fixture
async def client(gw: Harness) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with anthropic.AsyncAnthropic(base_url=gw.url, api_key=gw.key, max_retries=0) as c:
        yield c


def normalised(u: Any) -> Usage:
    """What the client was told, in tokenomy's convention (all input, caches as parts)."""
    creation = u.cache_creation
    return Usage(
        input_tokens=u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens,
        cached_tokens=u.cache_read_input_tokens,
        cache_write_tokens=u.cache_creation_input_tokens,
        cache_write_1h_tokens=creation.ephemeral_1h_input_tokens if creation else 0,
        output_tokens=u.output_tokens,
    )


def assert_catalog_priced(ev: UsageEvent, expected: Usage) -> genai_prices.types.PriceCalculation:
    calc = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=expected.input_tokens,
            cache_read_tokens=expected.cached_tokens,
            cache_write_tokens=expected.cache_write_tokens,
            cache_write_1h_tokens=expected.cache_write_1h_tokens,
            output_tokens=expected.output_tokens,
        ),
        UPSTREAM_MODEL,
        provider_id="anthropic",
        genai_request_timestamp=ms_to_datetime(ev.ts_ms),
    )
    assert ev.cost_nanos is not None and ev.cost_nanos > 0
    assert ev.cost_nanos == usd_to_nanos(calc.total_price)
    assert ev.price_source == (
        f"genai-prices {genai_prices.__version__}:{calc.provider.id}/{calc.model.id}"
    )
    return calc


def expected_cache_usage() -> Usage:
    return Usage(
        input_tokens=PROMPT_WORDS + 100 + 60,
        cached_tokens=100,
        cache_write_tokens=60,
        cache_write_1h_tokens=25,
        output_tokens=REPLY_WORDS,
    )


async def test_messages_non_stream_with_cache_reads_and_5m_1h_writes(
    gw: Harness, client: anthropic.AsyncAnthropic
) -> None:
    gw.anthropic.usage = CACHE
    raw = await client.messages.with_raw_response.create(
        model="claude-sonnet",
        max_tokens=256,
        system=SYSTEM,
        messages=MESSAGES,
        metadata={"user_id": "end-user-3"},
        extra_headers={"X-Tokenomy-Agent": "critic", "X-Tokenomy-Step": "observe"},
    )
    msg = await raw.parse()
    assert msg.content[0].type == "text" and msg.content[0].text == REPLY
    # The client gets Anthropic's own convention untouched: input excludes the caches.
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens) == (PROMPT_WORDS, 100)
    assert msg.usage.cache_creation_input_tokens == 60
    assert msg.usage.cache_creation is not None
    assert msg.usage.cache_creation.ephemeral_5m_input_tokens == 35
    assert msg.usage.cache_creation.ephemeral_1h_input_tokens == 25

    rid = raw.headers[REQUEST_ID]
    ev = gw.event(rid)
    expected = expected_cache_usage()
    assert normalised(msg.usage) == expected
    assert ev.usage == expected and not ev.estimated
    assert ev.usage.uncached_input_tokens == PROMPT_WORDS
    (key,) = gw.store.list_keys()
    assert (ev.org, ev.team, ev.user, ev.key_id) == ("acme", "research", "alice", key.key_id)
    assert (ev.agent, ev.step, ev.end_user) == ("critic", "observe", "end-user-3")
    assert (ev.api_format, ev.endpoint, ev.model, ev.stream, ev.status) == (
        "anthropic",
        "messages",
        "claude-sonnet",
        False,
        200,
    )
    assert (ev.provider, ev.upstream_model, ev.location) == ("ant", UPSTREAM_MODEL, "cloud")

    calc = assert_catalog_priced(ev, expected)
    header = raw.headers[COST]
    assert "e" not in header.lower()
    assert Decimal(header) * 1_000_000_000 == ev.cost_nanos
    assert Decimal(header) == calc.total_price

    up = gw.anthropic.last
    assert up.path == "/v1/messages"
    assert up.headers["x-api-key"] == "sk-ant-upstream"
    assert gw.key not in up.body.decode() and gw.key not in str(dict(up.headers))
    assert up.json["model"] == UPSTREAM_MODEL
    assert up.json["system"] == SYSTEM and up.json["messages"] == MESSAGES
    assert up.json["max_tokens"] == 256


async def test_messages_stream_with_cache_reads_and_5m_1h_writes(
    gw: Harness, client: anthropic.AsyncAnthropic
) -> None:
    gw.anthropic.usage = CACHE
    async with client.messages.stream(
        model="claude-sonnet", max_tokens=256, system=SYSTEM, messages=MESSAGES
    ) as stream:
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
        rid = stream.response.headers[REQUEST_ID]
        assert COST not in stream.response.headers
    assert text == REPLY
    assert final.stop_reason == "end_turn"
    expected = expected_cache_usage()
    assert normalised(final.usage) == expected
    assert gw.anthropic.last.json["stream"] is True

    ev = gw.event(rid)
    assert ev.usage == expected and not ev.estimated
    assert (ev.stream, ev.status, ev.error_kind) == (True, 200, "")
    assert ev.ttft_ms is not None
    assert_catalog_priced(ev, expected)


async def test_thinking_tokens_are_recorded_as_reasoning_inside_output(
    gw: Harness, client: anthropic.AsyncAnthropic
) -> None:
    raw = await client.messages.with_raw_response.create(
        model="claude-sonnet",
        max_tokens=2048,
        system=SYSTEM,
        messages=MESSAGES,
        thinking={"type": "enabled", "budget_tokens": 1024},
    )
    msg = await raw.parse()
    assert [b.type for b in msg.content] == ["thinking", "text"]
    ev = gw.event(raw.headers[REQUEST_ID])
    thinking_words = 9  # the fake's fixed thinking text
    assert ev.usage.output_tokens == msg.usage.output_tokens == REPLY_WORDS + thinking_words
    assert ev.usage.reasoning_tokens == thinking_words
    assert ev.usage.input_tokens == PROMPT_WORDS
    assert_catalog_priced(
        ev, Usage(input_tokens=PROMPT_WORDS, output_tokens=ev.usage.output_tokens)
    )


async def test_key_in_x_api_key_header(gw: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Older Anthropic clients send ``x-api-key`` and no ``Authorization`` at all."""
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    sent: list[httpx2.Headers] = []

    async def record(request: httpx2.Request) -> None:
        sent.append(request.headers)

    async with (
        httpx2.AsyncClient(event_hooks={"request": [record]}) as http,
        anthropic.AsyncAnthropic(
            base_url=gw.url,
            default_headers={"x-api-key": gw.key},
            http_client=http,
            max_retries=0,
        ) as c,
    ):
        raw = await c.messages.with_raw_response.create(
            model="claude-sonnet", max_tokens=64, messages=MESSAGES
        )
    assert sent[0]["x-api-key"] == gw.key and "authorization" not in sent[0]
    assert (await raw.parse()).content[0].type == "text"
    ev = gw.event(raw.headers[REQUEST_ID])
    assert (ev.org, ev.user, ev.status) == ("acme", "alice", 200)


async def test_key_as_bearer_auth_token(gw: Harness) -> None:
    sent: list[httpx2.Headers] = []

    async def record(request: httpx2.Request) -> None:
        sent.append(request.headers)

    async with (
        httpx2.AsyncClient(event_hooks={"request": [record]}) as http,
        anthropic.AsyncAnthropic(
            base_url=gw.url, auth_token=gw.key, http_client=http, max_retries=0
        ) as c,
    ):
        raw = await c.messages.with_raw_response.create(
            model="claude-sonnet", max_tokens=64, messages=MESSAGES
        )
    assert sent[0]["authorization"] == f"Bearer {gw.key}" and "x-api-key" not in sent[0]
    ev = gw.event(raw.headers[REQUEST_ID])
    assert (ev.org, ev.team, ev.user, ev.status) == ("acme", "research", "alice", 200)


async def test_models_list_in_anthropic_shape(
    gw: Harness, client: anthropic.AsyncAnthropic
) -> None:
    page = await client.models.list()
    ids = [m.id async for m in page]
    assert ids == list(gw.settings.models)
    assert all(m.type == "model" and m.display_name == m.id for m in page.data)
    assert page.has_more is False
    assert page.first_id == ids[0] and page.last_id == ids[-1]
    assert gw.anthropic.requests == []


async def test_models_list_with_x_api_key_is_anthropic_shaped(gw: Harness) -> None:
    """README: the Anthropic shape is chosen by ``anthropic-version`` *or* ``x-api-key``."""
    async with httpx2.AsyncClient() as http:
        r = await http.get(gw.url + "/v1/models", headers={"x-api-key": gw.key})
    assert r.status_code == 200
    body = r.json()
    assert [m["id"] for m in body["data"]] == list(gw.settings.models)
    assert body["data"][0]["type"] == "model" and "object" not in body
