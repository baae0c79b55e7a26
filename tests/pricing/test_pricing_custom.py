"""Custom prices, factory costs, rounding, bad usage and worst-case reservations."""

from __future__ import annotations

import logging
import random
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from tokenomy.config import Deployment, PriceSection, Provider, parse_config
from tokenomy.events import Usage
from tokenomy.money import usd_to_nanos
from tokenomy.pricing import PriceBook, Priced

TS = int(datetime(2026, 11, 28, 12, tzinfo=UTC).timestamp() * 1000)


def provider(
    name: str = "p",
    *,
    factory: str | None = None,
    catalog_provider: str | None = None,
    kind: str = "openai",
) -> Provider:
    return Provider(
        name,
        kind,
        "http://127.0.0.1:9/v1",
        None,
        "local",  # type: ignore[arg-type]
        catalog_provider,
        factory,
        {},
    )


def dep(
    model: str = "m",
    *,
    price: str | None = None,
    factory: str | None = None,
    provider_factory: str | None = None,
    catalog_provider: str | None = None,
) -> Deployment:
    return Deployment(
        provider(factory=provider_factory, catalog_provider=catalog_provider), model, price, factory
    )


def section(**kw: Any) -> PriceSection:
    return PriceSection(**{k: Decimal(str(v)) for k, v in kw.items()})


# -- custom prices ------------------------------------------------------------------------------


def test_custom_price_from_toml_exact_nanos() -> None:
    settings = parse_config(
        {
            "providers": {"corp": {"kind": "openai", "base_url": "https://llm.corp.example/v1"}},
            "models": [
                {
                    "name": "neg",
                    "deployments": [{"provider": "corp", "model": "gpt-4o", "price": "negotiated"}],
                }
            ],
            # TOML floats; the config goes through repr so 0.3 stays 0.3.
            "prices": {"negotiated": {"input": 3, "output": 15, "cache_read": 0.3}},
        }
    )
    book = PriceBook.from_settings(settings)
    usage = Usage(input_tokens=1_234_567, cached_tokens=200_000, output_tokens=5_000)
    priced = book.price(settings.models["neg"].deployments[0], usage, TS)
    # 1,034,567 uncached x $3 + 200,000 cached x $0.30 + 5,000 out x $15, per million:
    # $3.103701 + $0.06 + $0.075 = $3.238701
    assert priced == Priced(3_238_701_000, "custom:negotiated")
    assert priced.cost_usd == Decimal("3.238701")


def test_custom_price_every_bucket_once() -> None:
    book = PriceBook(
        {
            "anthropic-deal": section(
                input=3,
                output=15,
                cache_read="0.3",
                cache_write="3.75",
                cache_write_1h=6,
                per_request="0.001",
            )
        }
    )
    usage = Usage(
        input_tokens=100_000,
        cached_tokens=40_000,
        cache_write_tokens=30_000,
        cache_write_1h_tokens=10_000,
        output_tokens=2_000,
        reasoning_tokens=1_500,
        audio_input_tokens=5_000,
    )
    # uncached 30,000 x 3 = 90,000 µ$; reads 40,000 x 0.3 = 12,000; 5-minute writes
    # 20,000 x 3.75 = 75,000; 1-hour writes 10,000 x 6 = 60,000; output (reasoning inside)
    # 2,000 x 15 = 30,000; total 267,000 µ$ + $0.001 per request.
    assert book.price(dep(price="anthropic-deal"), usage, TS).cost_nanos == 268_000_000


def test_custom_price_defaults() -> None:
    usage = Usage(
        input_tokens=100_000,
        cached_tokens=40_000,
        cache_write_tokens=30_000,
        cache_write_1h_tokens=10_000,
        output_tokens=2_000,
    )
    # No cache prices: every input token at the input price, nothing invented.
    book = PriceBook({"flat": section(input=2, output=8)})
    assert book.price(dep(price="flat"), usage, TS).cost_nanos == 200_000_000 + 16_000_000
    # No 1-hour price: 1-hour writes at the cache-write price.
    book = PriceBook({"no1h": section(input=3, output=15, cache_read="0.3", cache_write="3.75")})
    # 90,000 + 12,000 + 30,000 x 3.75 = 112,500 + 30,000 output µ$
    assert book.price(dep(price="no1h"), usage, TS).cost_nanos == 244_500_000


def test_rounding_once_half_even() -> None:
    book = PriceBook(
        {
            "tiny": section(input="0.0015", output="0.0005"),
            "halves": section(input="0.0005", output="0.0005"),
        }
    )
    cases = {1: 2, 3: 4, 5: 8, 0: 0}  # 1.5 → 2, 4.5 → 4, 7.5 → 8
    for tokens, nanos in cases.items():
        assert book.price(dep(price="tiny"), Usage(input_tokens=tokens), TS).cost_nanos == nanos
    # Half a nano-dollar of input plus half of output is one nano-dollar, not 0 + 0.
    assert (
        book.price(dep(price="halves"), Usage(input_tokens=1, output_tokens=1), TS).cost_nanos == 1
    )


def test_precise_prices_stay_exact() -> None:
    book = PriceBook({"odd": section(input="0.0375", output="1.234567891")})
    usage = Usage(input_tokens=987_654_321, output_tokens=123_456_789)
    # 987,654,321 x 0.0375 = 37,037,037.0375 µ$; 123,456,789 x 1.234567891 µ$ = 152,415,787.6...
    expected = (
        Decimal(987_654_321) * Decimal("0.0375") + Decimal(123_456_789) * Decimal("1.234567891")
    ) / 1_000_000
    assert book.price(dep(price="odd"), usage, TS).cost_nanos == usd_to_nanos(expected)


def test_unknown_custom_price_id() -> None:
    priced = PriceBook().price(dep(price="ghost"), Usage(input_tokens=1), TS)
    assert priced.cost_nanos is None and "'ghost'" in priced.warning


# -- factories ------------------------------------------------------------------------------------


FACTORY = {"rack": (Decimal("0.12"), Decimal("0.48")), "edge": (Decimal("0.05"), Decimal("0.2"))}


def test_factory_pricing() -> None:
    book = PriceBook(factory_prices=FACTORY)
    usage = Usage(input_tokens=1_000_000, cached_tokens=500_000, output_tokens=250_000)
    # All input at the factory's input cost, all output at its output cost: $0.12 + $0.12.
    assert book.price(dep(factory="rack"), usage, TS) == Priced(240_000_000, "factory:rack")
    assert book.price(dep(provider_factory="rack"), usage, TS).source == "factory:rack"
    # The deployment's factory beats its provider's; a custom price beats both.
    assert (
        book.price(dep(factory="edge", provider_factory="rack"), usage, TS).source == "factory:edge"
    )
    book = PriceBook({"deal": section(input=1, output=1)}, FACTORY)
    assert book.price(dep(price="deal", factory="rack"), usage, TS).source == "custom:deal"


def test_negative_factory_cost_is_rejected() -> None:
    with pytest.raises(ValueError, match="factory:broken"):
        PriceBook(factory_prices={"broken": (Decimal("-0.1"), Decimal("0.2"))})


def test_factory_without_known_cost_is_not_priced_from_the_cloud_catalog() -> None:
    priced = PriceBook().price(
        dep("gpt-4o", factory="rack", catalog_provider="openai"), Usage(input_tokens=10), TS
    )
    assert priced.cost_nanos is None and priced.source == ""
    assert "factory 'rack'" in priced.warning


# -- inconsistent usage ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "needle"),
    [
        # Anthropic's raw input_tokens excludes cache reads: not normalised to our convention.
        (Usage(input_tokens=10, cached_tokens=5_000, output_tokens=5), "cached_tokens"),
        (Usage(input_tokens=10, cache_write_tokens=5, cache_write_1h_tokens=6), "cache_write_1h"),
        (Usage(input_tokens=10, output_tokens=5, reasoning_tokens=6), "reasoning_tokens"),
        (Usage(input_tokens=-1), "negative"),
    ],
)
def test_inconsistent_usage_is_not_priced(usage: Usage, needle: str) -> None:
    book = PriceBook({"deal": section(input=1, output=1)})
    for d in (dep(price="deal"), dep("claude-sonnet-4-5", catalog_provider="anthropic")):
        priced = book.price(d, usage, TS)
        assert priced.cost_nanos is None and priced.source == ""
        assert "inconsistent usage" in priced.warning and needle in priced.warning


def test_warnings_logged_once_per_provider_and_model(caplog: pytest.LogCaptureFixture) -> None:
    settings = parse_config(
        {
            "providers": {"oa": {"kind": "openai", "base_url": "https://api.openai.com/v1"}},
            "models": [
                {"name": "x", "deployments": [{"provider": "oa", "model": "no-such-model"}]},
                {"name": "y", "deployments": [{"provider": "oa", "model": "no-such-model"}]},
            ],
        }
    )
    with caplog.at_level(logging.WARNING, logger="tokenomy.pricing"):
        book = PriceBook.from_settings(settings)  # resolved and reported at start-up
        assert len(caplog.records) == 1
        for name in ("x", "y"):
            for _ in range(3):
                book.price(settings.models[name].deployments[0], Usage(input_tokens=1), TS)
    assert len(caplog.records) == 1
    assert "'oa'" in caplog.records[0].getMessage()


# -- worst case for reservations ------------------------------------------------------------------


def _random_usage(rng: random.Random, input_limit: int, output_limit: int) -> Usage:
    i = rng.randrange(0, input_limit + 1)
    shape = rng.randrange(4)
    if shape == 0:  # everything written to the 1-hour cache: the dearest input at Anthropic
        c, w, w1, ai = 0, i, i, 0
    elif shape == 1:  # all audio
        c, w, w1, ai = 0, 0, 0, i
    else:
        c = rng.randrange(0, i + 1)
        w = rng.randrange(0, i - c + 1)
        w1 = rng.randrange(0, w + 1)
        ai = rng.randrange(0, i - c - w + 1)
    o = rng.randrange(0, output_limit + 1)
    r = rng.randrange(0, o + 1)
    ao = rng.choice([0, o - r])
    return Usage(i, c, w, w1, o, r, ai, ao)


MAX_COST_DEPLOYMENTS = [
    dep("claude-sonnet-4-5", catalog_provider="anthropic"),
    dep("claude-haiku-5-5", catalog_provider="anthropic"),
    dep("gemini-2.5-pro", catalog_provider="google"),
    dep("gemini-2.5-flash", catalog_provider="google"),
    dep("gpt-5.4", catalog_provider="openai"),
    dep("gpt-5.5-pro", catalog_provider="openai"),
    dep("gpt-realtime", catalog_provider="openai"),
    dep("sonar-pro", catalog_provider="perplexity"),
    dep("sonar-deep-research", catalog_provider="perplexity"),
    dep("deepseek-chat", catalog_provider="deepseek"),
    dep(price="deal"),
    dep(factory="rack"),
]


@pytest.mark.parametrize(
    "d", MAX_COST_DEPLOYMENTS, ids=[d.price or d.factory or d.model for d in MAX_COST_DEPLOYMENTS]
)
def test_max_cost_bounds_every_usage_within_limits(d: Deployment) -> None:
    book = PriceBook(
        {
            "deal": section(
                input="1.1",
                output="4.4",
                cache_write="1.375",
                cache_write_1h="2.2",
                per_request="0.0004",
            )
        },
        FACTORY,
    )
    rng = random.Random(7)
    for input_limit in (0, 1, 999, 100_000, 128_000, 199_999, 200_000, 200_001, 272_001, 1_000_000):
        for output_limit in (0, 1, 4_096, 64_000):
            ts = TS + rng.randrange(0, 86_400_000)
            bound = book.max_cost_nanos(d, input_limit, output_limit, ts)
            assert bound is not None
            for _ in range(40):
                usage = _random_usage(rng, input_limit, output_limit)
                cost = book.price(d, usage, ts).cost_nanos
                if cost is None:  # cached audio overlap on realtime models: not priced
                    continue
                assert cost <= bound, (usage, cost, bound)


def test_max_cost_values() -> None:
    book = PriceBook(
        {"deal": section(input=3, output=15), "tiny": section(input="0.0015", output=0)}, FACTORY
    )
    # Custom without cache prices: $3 x 1,000 + $15 x 500 per million.
    assert book.max_cost_nanos(dep(price="deal"), 1_000, 500, TS) == 10_500_000
    # Rounded up, never below what price() can charge.
    assert book.max_cost_nanos(dep(price="tiny"), 1, 0, TS) == 2
    assert book.max_cost_nanos(dep(factory="rack"), 1_000_000, 0, TS) == 120_000_000
    # Claude: the worst input token is a 1-hour cache write ($6), the worst output $15...
    claude = dep("claude-sonnet-4-5", catalog_provider="anthropic")
    assert book.max_cost_nanos(claude, 1_000, 1_000, TS) == 6_000_000 + 15_000_000
    # ...and past 200k input tokens every rate is the long-context one ($12 and $22.50).
    assert book.max_cost_nanos(claude, 250_000, 1_000, TS) == 3_000_000_000 + 22_500_000
    assert book.max_cost_nanos(dep("ghost", catalog_provider="openai"), 1, 1, TS) is None
