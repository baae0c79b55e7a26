"""``tokenomy prices``: rates read back through the price book, catalog equivalents, currency."""

from __future__ import annotations

import json
import tomllib
from decimal import Decimal
from pathlib import Path

import genai_prices
import pytest
from typer.testing import CliRunner

from tokenomy.cli import app
from tokenomy.config import parse_config
from tokenomy.currency import parse_rates
from tokenomy.economics import factory_token_prices
from tokenomy.pricing import PriceBook
from tokenomy.pricing.catalog import ms_to_datetime
from tokenomy.pricing.compare import compare

RUNNER = CliRunner()
TS_MS = 1_790_000_000_000  # 2026-09-21

CONFIG = """
[providers.openai]
kind = "openai"
base_url = "https://api.openai.com/v1"

[providers.deepseek]
kind = "openai"
base_url = "https://api.deepseek.com/v1"

[providers.box]
kind = "openai"
base_url = "http://127.0.0.1:8000/v1"
location = "local"
factory = "cpu"

[factories.cpu]
gpu = "h100-sxm"
throughput = 2000

[[models]]
name = "gpt-4o"
deployments = [{ provider = "openai", model = "gpt-4o" }, { provider = "box", model = "llama" }]

[[models]]
name = "deepseek-chat"
deployments = [{ provider = "deepseek", model = "deepseek-chat", price = "negotiated" }]

[prices.negotiated]
input = "0.20"
output = "0.80"
cache_read = "0.05"
per_request = "0.001"

[currency]
date = 2026-11-30
source = "test rate"
CNY = "7.10"
"""


def _catalog_usd_per_mtok(provider: str, model: str, **tokens: int) -> Decimal:
    """genai-prices' own answer for one million tokens (an independent path)."""
    usage = genai_prices.Usage(**tokens)  # type: ignore[arg-type]
    price = genai_prices.calc_price(
        usage, model, provider_id=provider, genai_request_timestamp=ms_to_datetime(TS_MS)
    )
    return Decimal(price.total_price)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "tokenomy.toml"
    path.write_text(CONFIG)
    return path


def test_rates_equal_what_the_catalog_and_the_contract_charge(config_file: Path) -> None:
    settings = parse_config(tomllib.loads(CONFIG))
    factory = factory_token_prices(settings.factories)
    book = PriceBook.from_settings(settings, factory)
    rows = {
        (r.model, r.provider): r for r in compare(settings, book, TS_MS) if r.origin == "deployment"
    }
    listed = [r for r in compare(settings, book, TS_MS) if r.origin == "catalog"]

    openai = rows[("gpt-4o", "openai")]
    assert openai.origin == "deployment"
    mtok = 1_000_000
    assert openai.rates["input"] == _catalog_usd_per_mtok("openai", "gpt-4o", input_tokens=mtok)
    assert openai.rates["output"] == _catalog_usd_per_mtok("openai", "gpt-4o", output_tokens=mtok)
    assert openai.rates["cache_read"] == _catalog_usd_per_mtok(
        "openai", "gpt-4o", input_tokens=mtok, cache_read_tokens=mtok
    )

    local = rows[("gpt-4o", "box")]
    assert (local.location, local.price_source) == ("local", "factory:cpu")
    assert (local.rates["input"], local.rates["output"]) == factory["cpu"]

    contract = rows[("deepseek-chat", "deepseek")]
    assert contract.rates == {
        "input": Decimal("0.2"),
        "output": Decimal("0.8"),
        "cache_read": Decimal("0.05"),
        "cache_write": Decimal("0.2"),  # the contract states no cache-write price: input
    }
    assert contract.per_request == Decimal("0.001")
    # The catalog's equivalents of the same model at other providers, cheapest first.
    # The list price beside the negotiated one, and the same model at other providers.
    others = [r for r in listed if r.model == "deepseek-chat"]
    assert {r.provider for r in others} >= {"deepseek", "openrouter"}
    outputs = [r.rates["output"] or 0 for r in others]
    assert outputs == sorted(outputs)  # cheapest first
    # gpt-4o at OpenRouter is listed; the catalog-priced OpenAI deployment is not repeated.
    gpt = {r.provider for r in listed if r.model == "gpt-4o"}
    assert "openrouter" in gpt and "openai" not in gpt
    # "Free" catalog entries (a subscription, no token price) are not offered as equivalents.
    assert "github-copilot" not in gpt


def test_cli_converts_at_the_configured_dated_rate_and_says_so(config_file: Path) -> None:
    usd = RUNNER.invoke(app, ["prices", "-c", str(config_file), "deepseek-chat", "-f", "json"])
    cny = RUNNER.invoke(
        app,
        ["prices", "-c", str(config_file), "deepseek-chat", "-f", "json", "--currency", "CNY"],
    )
    assert usd.exit_code == 0 and cny.exit_code == 0, usd.output + cny.output
    in_usd, in_cny = json.loads(usd.output), json.loads(cny.output)
    assert in_cny["currency"] == "CNY" and in_cny["rate_per_usd"] == 7.1
    assert in_cny["rate_date"] == "2026-11-30"
    assert "7.10 CNY/USD" in in_cny["note"] and "2026-11-30" in in_cny["note"]
    for a, b in zip(in_usd["prices"], in_cny["prices"], strict=True):
        assert Decimal(str(b["input_per_mtok"])) == (
            Decimal(str(a["input_per_mtok"])) * Decimal("7.10")
        ).quantize(Decimal("0.000001"))
    first = in_usd["prices"][0]
    assert (first["provider"], first["input_per_mtok"]) == ("deepseek", 0.2)


def test_a_catalog_model_not_configured_is_compared_and_filters_apply(config_file: Path) -> None:
    result = RUNNER.invoke(
        app, ["prices", "-c", str(config_file), "kimi-k2", "--provider", "moonshotai", "-f", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)["prices"]
    assert rows and all(r["provider"] == "moonshotai" and r["origin"] == "catalog" for r in rows)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--currency", "EUR"], "no exchange rate for 'EUR'"),
        (["no-such-model-anywhere"], "neither configured nor in the"),
    ],
)
def test_unknown_currency_or_model_is_a_clear_error(
    config_file: Path, args: list[str], message: str
) -> None:
    result = RUNNER.invoke(app, ["prices", "-c", str(config_file), *args])
    assert result.exit_code != 0
    assert message in result.output


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"CNY": 7.1, "date": "2026-11-30"}, "write the rate as a string"),
        ({"CNY": "7.10"}, "date: required"),
        ({"CNY": "-1", "date": "2026-11-30"}, "must be a positive number"),
        ({"cny": "7", "date": "2026-11-30"}, "unknown key"),
        ({"CNY": "seven", "date": "2026-11-30"}, "not a number"),
    ],
)
def test_currency_table_is_validated(table: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_rates(table)
