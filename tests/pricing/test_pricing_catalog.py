"""PriceBook against genai-prices itself: same catalog, same usage, equal to the nano-dollar."""

from __future__ import annotations

import logging
import random
import warnings
from datetime import UTC, datetime
from decimal import Decimal

import genai_prices
import pytest
from genai_prices import data_snapshot, types

from tokenomy.config import Deployment, Provider, parse_config
from tokenomy.events import Usage
from tokenomy.money import usd_to_nanos
from tokenomy.pricing import PriceBook, Priced
from tokenomy.pricing.catalog import CATALOG_VERSION, ms_to_datetime

VERSION = genai_prices.__version__


def ms(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> int:
    """Epoch milliseconds of a UTC date/time."""
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()) * 1000


def provider(
    name: str = "p",
    *,
    kind: str = "openai",
    base_url: str = "http://127.0.0.1:9/v1",
    catalog_provider: str | None = None,
    factory: str | None = None,
) -> Provider:
    return Provider(
        name,
        kind,
        base_url,
        None,
        "cloud",
        catalog_provider,  # type: ignore[arg-type]
        factory,
        {},
    )


def deployment(model: str, catalog_provider: str | None = None, **kw: str) -> Deployment:
    return Deployment(provider(catalog_provider=catalog_provider, **kw), model, None, None)


def genai_usage(u: Usage) -> genai_prices.Usage:
    """The same usage in genai-prices' keys.

    genai-prices' ``input_tokens`` also counts cache reads and writes, like ours, so the
    mapping is one to one. ``cache_audio_read_tokens`` must be explicit: genai-prices refuses
    to guess the overlap of cache reads and audio input for models that price it; we report
    none (our Usage cannot say which cached tokens were audio).
    """
    return genai_prices.Usage(
        input_tokens=u.input_tokens,
        cache_read_tokens=u.cached_tokens,
        cache_write_tokens=u.cache_write_tokens,
        cache_write_1h_tokens=u.cache_write_1h_tokens,
        input_audio_tokens=u.audio_input_tokens,
        cache_audio_read_tokens=0,
        output_tokens=u.output_tokens,
        output_reasoning_tokens=u.reasoning_tokens,
        output_audio_tokens=u.audio_output_tokens,
    )


def genai_nanos(
    u: Usage, model: str, provider_id: str | None, ts_ms: int, context: dict[str, str] | None = None
) -> int:
    # Warnings are errors in this suite: a genai-prices UserWarning (unknown usage or price
    # key) would mean the comparison itself is wrong, so let it fail the test.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        calc = genai_prices.calc_price(
            genai_usage(u),
            model,
            provider_id=provider_id,
            genai_request_timestamp=ms_to_datetime(ts_ms),
            price_context=context,
        )
    return usd_to_nanos(calc.total_price)


USAGES = {
    "plain": Usage(input_tokens=1_234, output_tokens=567),
    "tiny": Usage(input_tokens=17, cached_tokens=3, output_tokens=1),
    "empty": Usage(),
    "cache-read": Usage(input_tokens=50_000, cached_tokens=42_000, output_tokens=800),
    "cache-write-5m-1h": Usage(
        input_tokens=90_000,
        cached_tokens=10_000,
        cache_write_tokens=60_000,
        cache_write_1h_tokens=25_000,
        output_tokens=2_000,
    ),
    "reasoning": Usage(
        input_tokens=12_345, cached_tokens=1_024, output_tokens=9_876, reasoning_tokens=7_000
    ),
    "audio": Usage(
        input_tokens=20_000,
        cached_tokens=2_000,
        audio_input_tokens=15_000,
        output_tokens=4_000,
        audio_output_tokens=3_000,
    ),
    "over-100k": Usage(
        input_tokens=150_001, cached_tokens=50_000, cache_write_tokens=1_000, output_tokens=3_333
    ),
    "over-200k": Usage(
        input_tokens=250_000,
        cached_tokens=30_000,
        cache_write_tokens=20_000,
        cache_write_1h_tokens=5_000,
        output_tokens=12_345,
        reasoning_tokens=2_000,
    ),
    "at-200k": Usage(input_tokens=200_000, output_tokens=1),
    "over-272k": Usage(input_tokens=300_000, cached_tokens=100_000, output_tokens=50_000),
    "huge": Usage(
        input_tokens=987_654_321,
        cached_tokens=123_456_789,
        cache_write_tokens=7_654_321,
        cache_write_1h_tokens=54_321,
        output_tokens=12_345_678,
        reasoning_tokens=2_345_678,
        audio_input_tokens=1_000_000,
        audio_output_tokens=1_000,
    ),
}

MODELS = [
    ("openai", "gpt-4o"),
    ("openai", "gpt-4o-mini"),
    ("openai", "gpt-4.1"),
    ("openai", "o3"),
    ("openai", "o4-mini"),
    ("openai", "gpt-5"),
    ("openai", "gpt-5-mini"),
    ("openai", "gpt-5.4"),
    ("openai", "gpt-5.5-pro"),
    ("openai", "gpt-realtime"),
    ("openai", "gpt-audio"),
    ("openai", "gpt-4o-realtime-preview"),
    ("openai", "text-embedding-3-small"),
    ("anthropic", "claude-sonnet-4-5"),
    ("anthropic", "claude-opus-4-6"),
    ("anthropic", "claude-haiku-5-5"),
    ("anthropic", "claude-3-5-haiku-latest"),
    ("anthropic", "claude-opus-4-1"),
    ("anthropic", "claude-sonnet-4-6"),
    ("google", "gemini-2.5-pro"),
    ("google", "gemini-2.5-flash"),
    ("google", "gemini-1.5-pro"),
    ("google", "gemini-3-pro-preview"),
    ("google", "gemini-2.0-flash"),
    ("google", "claude-sonnet-4-5"),
    ("deepseek", "deepseek-chat"),
    ("deepseek", "deepseek-reasoner"),
    ("mistral", "mistral-large-latest"),
    ("mistral", "mistral-small-latest"),
    ("x-ai", "grok-4"),
    ("x-ai", "grok-3-mini"),
    ("groq", "llama-3.3-70b-versatile"),
    ("perplexity", "sonar"),
    ("perplexity", "sonar-pro"),
    ("perplexity", "sonar-deep-research"),
    ("aws", "amazon.nova-sonic-v1:0"),
    ("aws", "anthropic.claude-3-5-sonnet-20241022-v2:0"),
    ("azure", "gpt-4o"),
    ("openrouter", "anthropic/claude-sonnet-4.5"),
    ("openrouter", "google/gemini-2.5-pro"),
    ("together", "meta-llama/Llama-3.3-70B-Instruct-Turbo"),
    ("cohere", "command-r-plus"),
]
TIMESTAMPS = [ms(2025, 1, 1, 12), ms(2026, 3, 14, 3), ms(2026, 11, 28, 18, 45)]


@pytest.fixture(scope="module")
def book() -> PriceBook:
    return PriceBook()


@pytest.mark.parametrize(("provider_id", "model"), MODELS, ids=[f"{p}/{m}" for p, m in MODELS])
def test_matches_genai_prices(book: PriceBook, provider_id: str, model: str) -> None:
    dep = deployment(model, provider_id)
    for ts in TIMESTAMPS:
        for name, usage in USAGES.items():
            priced = book.price(dep, usage, ts)
            expected = genai_nanos(usage, model, provider_id, ts)
            assert priced.cost_nanos == expected, (name, ts)
            assert priced.warning == ""
            assert priced.source.startswith(f"genai-prices {VERSION}:{provider_id}/")


def test_every_catalog_model_matches_genai_prices() -> None:
    """Sweep the whole bundled catalog: every provider, every model, several usages."""
    book = PriceBook()
    sample = [USAGES[k] for k in ("plain", "cache-write-5m-1h", "audio", "over-272k")]
    checked = unusable = 0
    for cat_provider in data_snapshot.get_snapshot().providers:
        for info in cat_provider.models:
            dep = deployment(info.id, cat_provider.id)
            for ts in (ms(2025, 6, 1), ms(2026, 11, 28, 2)):
                for usage in sample:
                    priced = book.price(dep, usage, ts)
                    if priced.cost_nanos is None:
                        unusable += 1
                        if "not priced by" in priced.warning:
                            # A few catalog ids do not match their own model rules; then
                            # genai-prices cannot find them either.
                            with pytest.raises(LookupError):
                                genai_nanos(usage, info.id, cat_provider.id, ts)
                        else:
                            # Models priced only in units our usage never reports (audio
                            # hours, characters, pages) are unusable, and say so.
                            assert "no token prices" in priced.warning, priced.warning
                        continue
                    expected = genai_nanos(usage, info.id, cat_provider.id, ts)
                    assert priced.cost_nanos == expected, (cat_provider.id, info.id, ts, usage)
                    assert priced.warning == "" or "(free)" in priced.warning
                    checked += 1
    assert checked > 10_000
    assert unusable < checked // 10  # ~85 catalog ids miss their own match rules


def test_random_usages_match_genai_prices(book: PriceBook) -> None:
    rng = random.Random(20261128)
    for _ in range(1_500):
        provider_id, model = rng.choice(MODELS)
        i = rng.choice(
            [
                rng.randrange(0, 1_000),
                rng.randrange(0, 400_000),
                rng.choice([100_000, 128_000, 200_000, 272_000]) + rng.randrange(-1, 2),
            ]
        )
        c = rng.randrange(0, i + 1)
        w = rng.randrange(0, i - c + 1)
        w1 = rng.randrange(0, w + 1)
        ai = rng.randrange(0, i - c - w + 1)
        o = rng.randrange(0, 50_000)
        r = rng.randrange(0, o + 1)
        ao = rng.randrange(0, o - r + 1)
        usage = Usage(i, c, w, w1, o, r, ai, ao)
        ts = rng.randrange(ms(2024, 6, 1), ms(2027, 6, 1))
        got = book.price(deployment(model, provider_id), usage, ts).cost_nanos
        assert got == genai_nanos(usage, model, provider_id, ts), (provider_id, model, usage, ts)


def test_genai_usage_input_includes_cache_tokens() -> None:
    """The premise of the mapping: genai-prices' input_tokens includes cache reads and writes."""
    usage = Usage(input_tokens=1_000, cached_tokens=400, cache_write_tokens=100, output_tokens=0)
    calc = genai_prices.calc_price(genai_usage(usage), "claude-opus-4-1", provider_id="anthropic")
    # 500 uncached at $15, 400 reads at $1.50, 100 writes at $18.75 (per million).
    assert calc.input_price == Decimal("0.0075") + Decimal("0.0006") + Decimal("0.001875")


# -- dated and time-of-day prices ---------------------------------------------------------------


def test_dated_price_change_o3(book: PriceBook) -> None:
    dep = deployment("o3", "openai")
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    before = book.price(dep, usage, ms(2025, 6, 9, 23, 59, 59) + 999)
    after = book.price(dep, usage, ms(2025, 6, 10))
    assert before.cost_nanos == 50_000_000_000  # $10 in + $40 out
    assert after.cost_nanos == 10_000_000_000  # $2 in + $8 out
    # Alternate old and new, with and without price variants, so that the per-window caches
    # are exercised in both directions.
    contexts: list[dict[str, str] | None] = [
        None,
        {"service_tier": "flex"},
        {"service_tier": "priority"},
    ]
    for ts in (ms(2025, 6, 10, 5), ms(2025, 6, 1), ms(2026, 1, 1), ms(2024, 1, 1)):
        for context in contexts:
            got = book.price(dep, usage, ts, price_context=context).cost_nanos
            assert got == genai_nanos(usage, "o3", "openai", ts, context), (ts, context)


def test_dated_price_change_claude_opus_4_6(book: PriceBook) -> None:
    dep = deployment("claude-opus-4-6", "anthropic")
    usage = USAGES["over-200k"]
    before, after = ms(2026, 3, 12, 23), ms(2026, 3, 13, 1)
    assert book.price(dep, usage, before).cost_nanos != book.price(dep, usage, after).cost_nanos
    for ts in (before, after):
        expected = genai_nanos(usage, "claude-opus-4-6", "anthropic", ts)
        assert book.price(dep, usage, ts).cost_nanos == expected


def test_time_of_day_prices_deepseek(book: PriceBook) -> None:
    """deepseek prices change twice a day; every instant must get the price in force."""
    usage = USAGES["cache-read"]
    for model in ("deepseek-chat", "deepseek-v4-pro"):
        dep = deployment(model, "deepseek")
        day = ms(2026, 11, 28)
        instants = [day + minute * 60_000 for minute in range(0, 24 * 60, 15)]
        edges = [
            ms(2026, 11, 28, h, m) + d
            for h, m in ((0, 30), (16, 30), (1, 0), (4, 0), (6, 0), (10, 0))
            for d in (-1, 0, 1)
        ]
        edges += [ms(2026, 8, 17) + d for d in (-1, 0)]
        seen = set()
        for ts in [*instants, *edges, *reversed(instants)]:
            got = book.price(dep, usage, ts).cost_nanos
            assert got == genai_nanos(usage, model, "deepseek", ts), (model, ts)
            seen.add(got)
        assert len(seen) >= 2  # the test crossed a price change


def test_price_context_variants(book: PriceBook) -> None:
    usage = USAGES["reasoning"]
    ts = ms(2026, 11, 28, 12)
    cases = [
        ("openai", "gpt-5", {"service_tier": "flex"}),
        ("openai", "gpt-5", {"service_tier": "priority"}),
        ("openai", "gpt-4o", {"processing": "batch"}),
        ("anthropic", "claude-sonnet-4-5", {"processing": "batch"}),
    ]
    for provider_id, model, context in cases:
        dep = deployment(model, provider_id)
        priced = book.price(dep, usage, ts, price_context=context)
        assert priced.cost_nanos == genai_nanos(usage, model, provider_id, ts, context)
        standard = book.price(dep, usage, ts)
        assert priced.cost_nanos != standard.cost_nanos, (model, context)
        key, value = next(iter(context.items()))
        assert priced.source.endswith(f"[{key}={value}]")
    # Azure borrows gpt-4o from OpenAI (fallback_model_providers); genai-prices applies
    # variants only to a provider's own models, and so do we.
    azure = deployment("gpt-4o", "azure")
    borrowed = book.price(azure, usage, ts, price_context={"processing": "batch"})
    assert borrowed == book.price(azure, usage, ts)
    assert borrowed.cost_nanos == genai_nanos(usage, "gpt-4o", "azure", ts, {"processing": "batch"})
    # A context no variant matches prices like no context, and says nothing about it.
    dep = deployment("gpt-5", "openai")
    odd = book.price(dep, usage, ts, price_context={"service_tier": "nonexistent"})
    assert odd == book.price(dep, usage, ts)


# -- provider inference -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prov", "model", "source"),
    [
        (provider("oa", base_url="https://api.openai.com/v1"), "gpt-4o", "openai/gpt-4o"),
        (
            provider("claude", kind="anthropic", base_url="https://llm-proxy.internal"),
            "claude-sonnet-4-5",
            "anthropic/claude-sonnet-4-5",
        ),
        (
            provider("or", base_url="https://openrouter.ai/api/v1"),
            "anthropic/claude-sonnet-4.5",
            "openrouter/anthropic/claude-sonnet-4.5",
        ),
        (provider("az", base_url="https://myco.openai.azure.com/openai"), "gpt-4o", "azure/gpt-4o"),
        (
            provider("groq", base_url="http://127.0.0.1:9/v1"),
            "llama-3.3-70b-versatile",
            "groq/llama-3.3-70b-versatile",
        ),
        (
            provider("my-proxy", base_url="http://127.0.0.1:9/v1"),
            "gemini-2.5-pro",
            "google/gemini-2.5-pro",
        ),
        (
            provider("oa", base_url="https://api.openai.com/v1", catalog_provider="azure"),
            "gpt-4o",
            "azure/gpt-4o",
        ),
    ],
    ids=[
        "base-url",
        "anthropic-kind",
        "openrouter-url",
        "azure-url",
        "name",
        "model-id",
        "catalog-provider-wins",
    ],
)
def test_catalog_provider_inference(prov: Provider, model: str, source: str) -> None:
    priced = PriceBook().price(Deployment(prov, model, None, None), USAGES["plain"], ms(2026, 1, 1))
    assert priced.source == f"{CATALOG_VERSION}:{source}"
    assert priced.cost_nanos is not None and priced.cost_nanos > 0


def test_catalog_provider_from_settings() -> None:
    settings = parse_config(
        {
            "providers": {
                "eu": {
                    "kind": "openai",
                    "base_url": "https://gw.example.eu/v1",
                    "catalog_provider": "mistral",
                }
            },
            "models": [
                {"name": "m", "deployments": [{"provider": "eu", "model": "mistral-large-latest"}]}
            ],
        }
    )
    dep = settings.models["m"].deployments[0]
    priced = PriceBook.from_settings(settings).price(dep, USAGES["plain"], ms(2026, 1, 1))
    assert priced.source == f"{CATALOG_VERSION}:mistral/mistral-large"
    assert priced.cost_nanos == genai_nanos(
        USAGES["plain"], "mistral-large-latest", "mistral", ms(2026, 1, 1)
    )


# -- unknown prices -------------------------------------------------------------------------------


def test_unknown_model_is_none_with_warning_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    book = PriceBook()
    dep = Deployment(
        provider("acme", base_url="https://api.openai.com/v1"), "gpt-nonexistent-9", None, None
    )
    with caplog.at_level(logging.WARNING, logger="tokenomy.pricing"):
        results = [book.price(dep, USAGES["plain"], ms(2026, 1, 1)) for _ in range(5)]
        assert book.max_cost_nanos(dep, 1_000, 1_000, ms(2026, 1, 1)) is None
    first = results[0]
    assert first == Priced(None, "", first.warning)
    assert first.cost_usd is None
    assert "'acme'" in first.warning and "'gpt-nonexistent-9'" in first.warning
    assert all(r == first for r in results)
    assert [r.getMessage() for r in caplog.records] == [first.warning]


def test_unknown_catalog_provider() -> None:
    dep = deployment("gpt-4o", "no-such-cloud")
    priced = PriceBook().price(dep, USAGES["plain"], ms(2026, 1, 1))
    assert priced.cost_nanos is None and priced.source == ""
    assert "no-such-cloud" in priced.warning


def test_model_without_token_prices_is_not_silently_free() -> None:
    """whisper-1 is priced per audio minute; a token usage cannot be priced with it."""
    priced = PriceBook().price(deployment("whisper-1", "openai"), USAGES["plain"], ms(2026, 1, 1))
    assert priced.cost_nanos is None
    assert "no token prices" in priced.warning


def test_catalog_model_without_any_price_is_free_with_a_warning() -> None:
    priced = PriceBook().price(
        deployment("gpt-4o", "github-copilot"), USAGES["plain"], ms(2026, 11, 28)
    )
    assert priced.cost_nanos == 0
    assert priced.source == f"{CATALOG_VERSION}:github-copilot/gpt-4o"
    assert "free" in priced.warning


def test_unmatched_model_everywhere() -> None:
    priced = PriceBook().price(deployment("totally-unknown-model"), USAGES["plain"], ms(2026, 1, 1))
    assert priced.cost_nanos is None
    assert "any provider" in priced.warning


def test_cached_audio_overlap_is_reported_not_guessed() -> None:
    """Realtime models price cached audio separately; our Usage cannot say how much it was."""
    usage = Usage(input_tokens=1_000, cached_tokens=600, audio_input_tokens=800, output_tokens=10)
    priced = PriceBook().price(deployment("gpt-realtime", "openai"), usage, ms(2026, 1, 1))
    assert priced.cost_nanos is None
    assert "audio" in priced.warning and "negative" in priced.warning


def test_model_info_types_stay_as_expected() -> None:
    """Guards the assumptions compile_model_price relies on in the pinned catalog."""
    info = data_snapshot.get_snapshot().find_provider_model(
        "claude-sonnet-4-5", None, "anthropic", None
    )[1]
    assert isinstance(info.prices, types.ModelPrice)
    assert isinstance(info.prices.cache_write_1h_mtok, types.TieredPrices)
