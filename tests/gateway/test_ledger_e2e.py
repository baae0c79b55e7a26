"""The ledger through the gateway, on SQLite and on PostgreSQL (``db_url`` runs both).

Many requests at once, of every shape (OpenAI and Anthropic clients, streamed and not,
two teams, some failing): exactly one event per request, and the usage report's totals per
team and model equal the sums of what the clients were told, priced by genai-prices itself.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import anthropic
import genai_prices
import openai
import pytest

from tests.fakes import FakeUsage
from tests.gateway.harness import Harness, running_gateway
from tokenomy.events import Usage
from tokenomy.ledger.reports import usage_report
from tokenomy.money import nanos_to_usd, usd_to_nanos
from tokenomy.pricing.catalog import ms_to_datetime

REQUEST_ID = "x-tokenomy-request-id"
CATALOG = {
    "gpt-4o-mini": ("gpt-4o-mini", "openai"),
    "gpt-4o": ("gpt-4o", "openai"),
    "claude-sonnet": ("claude-sonnet-4-20250514", "anthropic"),
}
ROUNDS = 6  # each round: 8 kinds of request, for each of 2 teams → 96 requests in flight


@dataclass
class Outcome:
    """One request as the client saw it."""

    request_id: str
    team: str
    model: str
    usage: Usage = field(default_factory=Usage)
    status: int = 200


def from_openai(u: Any) -> Usage:
    return Usage(
        input_tokens=u.prompt_tokens,
        cached_tokens=u.prompt_tokens_details.cached_tokens,
        output_tokens=u.completion_tokens,
        reasoning_tokens=u.completion_tokens_details.reasoning_tokens,
    )


def from_anthropic(u: Any) -> Usage:
    return Usage(
        input_tokens=u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens,
        cached_tokens=u.cache_read_input_tokens,
        cache_write_tokens=u.cache_creation_input_tokens,
        cache_write_1h_tokens=u.cache_creation.ephemeral_1h_input_tokens,
        output_tokens=u.output_tokens,
    )


def prompt(i: int) -> str:
    """A prompt whose length differs per request, so that every total is distinct."""
    return "Question " + " ".join(["please"] * (i % 7)) + f" number {i}?"


async def chat(c: openai.AsyncOpenAI, team: str, i: int, stream: bool) -> Outcome:
    messages: Any = [{"role": "user", "content": prompt(i)}]
    if stream:
        raw = await c.chat.completions.with_raw_response.create(
            model="gpt-4o",
            messages=messages,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [ch async for ch in raw.parse()]
        usage = from_openai(chunks[-1].usage)
        model = "gpt-4o"
    else:
        raw = await c.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=messages, max_tokens=64
        )
        usage = from_openai(raw.parse().usage)
        model = "gpt-4o-mini"
    return Outcome(raw.headers[REQUEST_ID], team, model, usage)


async def message(a: anthropic.AsyncAnthropic, team: str, i: int, stream: bool) -> Outcome:
    kwargs: Any = {
        "model": "claude-sonnet",
        "max_tokens": 128,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": prompt(i)}],
    }
    if stream:
        async with a.messages.stream(**kwargs) as s:
            final = await s.get_final_message()
            rid = s.response.headers[REQUEST_ID]
        return Outcome(rid, team, "claude-sonnet", from_anthropic(final.usage))
    raw = await a.messages.with_raw_response.create(**kwargs)
    return Outcome(
        raw.headers[REQUEST_ID], team, "claude-sonnet", from_anthropic((await raw.parse()).usage)
    )


async def failing(c: openai.AsyncOpenAI, team: str, i: int) -> Outcome:
    with pytest.raises(openai.NotFoundError) as info:
        await c.chat.completions.create(
            model="no-such-model", messages=[{"role": "user", "content": prompt(i)}]
        )
    return Outcome(info.value.response.headers[REQUEST_ID], team, "no-such-model", status=404)


async def run_all(h: Harness, keys: dict[str, str]) -> list[Outcome]:
    h.openai.usage = FakeUsage(cached_tokens=3, reasoning_tokens=2)
    h.anthropic.usage = FakeUsage(cached_tokens=5, cache_write_tokens=7, cache_write_1h_tokens=2)
    async with (
        openai.AsyncOpenAI(
            base_url=h.openai_base, api_key=keys["research"], max_retries=0
        ) as o_research,
        openai.AsyncOpenAI(base_url=h.openai_base, api_key=keys["ops"], max_retries=0) as o_ops,
        anthropic.AsyncAnthropic(
            base_url=h.url, api_key=keys["research"], max_retries=0
        ) as a_research,
        anthropic.AsyncAnthropic(base_url=h.url, api_key=keys["ops"], max_retries=0) as a_ops,
    ):
        clients = {"research": (o_research, a_research), "ops": (o_ops, a_ops)}
        calls = []
        for r in range(ROUNDS):
            for team, (o, a) in clients.items():
                base = r * 10 + (0 if team == "research" else 5)
                calls += [
                    chat(o, team, base, stream=False),
                    chat(o, team, base + 1, stream=True),
                    chat(o, team, base + 2, stream=False),
                    message(a, team, base + 3, stream=False),
                    message(a, team, base + 4, stream=True),
                    message(a, team, base + 5, stream=True),
                    chat(o, team, base + 6, stream=True),
                    failing(o, team, base + 7),
                ]
        return list(await asyncio.gather(*calls))


def catalog_nanos(model: str, u: Usage, ts_ms: int) -> int:
    ref, provider_id = CATALOG[model]
    calc = genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=u.input_tokens,
            cache_read_tokens=u.cached_tokens,
            cache_write_tokens=u.cache_write_tokens,
            cache_write_1h_tokens=u.cache_write_1h_tokens,
            output_tokens=u.output_tokens,
            output_reasoning_tokens=u.reasoning_tokens,
        ),
        ref,
        provider_id=provider_id,
        genai_request_timestamp=ms_to_datetime(ts_ms),
    )
    return usd_to_nanos(calc.total_price)


async def test_concurrent_requests_each_one_event_and_report_totals_match(
    db_url: str, upstream_keys: None
) -> None:
    async with running_gateway(db_url) as h:
        _, ops_key = h.store.create_key(org="acme", team="ops", user="carol", name="ops")
        outcomes = await run_all(h, {"research": h.key, "ops": ops_key})
        events = {ev.id: ev for ev in h.events()}

        # Exactly one event per request: none lost, none doubled.
        assert len(outcomes) == ROUNDS * 2 * 8
        assert len({o.request_id for o in outcomes}) == len(outcomes)
        assert set(events) == {o.request_id for o in outcomes}
        assert h.store.count_events() == len(outcomes)

        expected: dict[tuple[str, str], dict[str, Any]] = defaultdict(
            lambda: {"requests": 0, "usage": Usage(), "cost_nanos": 0}
        )
        for o in outcomes:
            ev = events[o.request_id]
            assert (ev.team, ev.model, ev.status) == (o.team, o.model, o.status)
            assert ev.usage == o.usage and not ev.estimated
            row = expected[(o.team, o.model)]
            row["requests"] += 1
            row["usage"] += o.usage
            if o.status == 200:
                row["cost_nanos"] += catalog_nanos(o.model, o.usage, ev.ts_ms)

        report = usage_report(h.store, by=["team", "model"])
        assert [(r["team"], r["model"]) for r in report] == sorted(expected)
        for r in report:
            want = expected[(r["team"], r["model"])]
            u: Usage = want["usage"]
            assert r["requests"] == want["requests"]
            assert (
                r["input_tokens"],
                r["cached_tokens"],
                r["cache_write_tokens"],
                r["output_tokens"],
                r["reasoning_tokens"],
            ) == (
                u.input_tokens,
                u.cached_tokens,
                u.cache_write_tokens,
                u.output_tokens,
                u.reasoning_tokens,
            )
            assert isinstance(r["cost_usd"], Decimal)
            assert r["cost_usd"] == nanos_to_usd(want["cost_nanos"])
            assert (r["estimated_requests"], r["unpriced_requests"]) == (0, 0)
        # The failed requests are in the report too, with no tokens and no cost.
        failed = [r for r in report if r["model"] == "no-such-model"]
        assert [r["requests"] for r in failed] == [ROUNDS, ROUNDS]
        assert all(r["input_tokens"] == 0 and r["cost_usd"] == 0 for r in failed)

        # Grand totals agree with the per-group report and with every event.
        (total,) = usage_report(h.store)
        assert total["requests"] == len(outcomes)
        assert total["input_tokens"] == sum(o.usage.input_tokens for o in outcomes)
        assert total["output_tokens"] == sum(o.usage.output_tokens for o in outcomes)
        assert total["cost_usd"] == sum((r["cost_usd"] for r in report), Decimal(0))
        assert total["cost_usd"] == nanos_to_usd(sum(ev.cost_nanos or 0 for ev in events.values()))


async def test_report_filters_and_groups_by_key_user_and_provider(
    db_url: str, upstream_keys: None
) -> None:
    async with running_gateway(db_url) as h:
        _, ops_key = h.store.create_key(org="acme", team="ops", user="carol", name="ops")
        async with (
            openai.AsyncOpenAI(base_url=h.openai_base, api_key=h.key, max_retries=0) as alice,
            anthropic.AsyncAnthropic(base_url=h.url, api_key=ops_key, max_retries=0) as carol,
        ):
            a = await asyncio.gather(*(chat(alice, "research", i, stream=False) for i in range(5)))
            c = await asyncio.gather(*(message(carol, "ops", i, stream=True) for i in range(3)))
        h.flush()
        rows = usage_report(h.store, by=["user", "provider"])
        assert [(r["user"], r["provider"], r["requests"]) for r in rows] == [
            ("alice", "oai", 5),
            ("carol", "ant", 3),
        ]
        assert rows[0]["output_tokens"] == sum(o.usage.output_tokens for o in a)
        assert rows[1]["cache_write_tokens"] == sum(o.usage.cache_write_tokens for o in c)
        (only_ops,) = usage_report(h.store, by=["team"], filters={"team": "ops"})
        assert (only_ops["team"], only_ops["requests"]) == ("ops", 3)
        assert only_ops["input_tokens"] == sum(o.usage.input_tokens for o in c)
