"""``tokenomy savings``: counterfactual prices, call by call, inside the data policy."""

from __future__ import annotations

import tomllib
from decimal import Decimal
from pathlib import Path

from tests.builders import T0_MS, usage_event
from tokenomy.config import Provider, Settings, parse_config
from tokenomy.events import Usage
from tokenomy.ledger import open_store
from tokenomy.money import nanos_to_usd
from tokenomy.pricing import PriceBook
from tokenomy.pricing.savings import savings

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

[prices.box]
input = "0.05"
output = "0.10"

[prices.cheap]
input = "0.20"
output = "0.80"

[[models]]
name = "chat"
deployments = [
  { provider = "box", model = "llama", price = "box" },
  { provider = "openai", model = "gpt-4o" },
  { provider = "deepseek", model = "deepseek-chat", price = "cheap" },
]

[[models]]
name = "coder"
strategy = "cheapest"
deployments = [
  { provider = "openai", model = "gpt-4o" },
  { provider = "deepseek", model = "deepseek-chat", price = "cheap" },
]
"""


def _settings() -> Settings:
    return parse_config(tomllib.loads(CONFIG))


def _cloud_only_for_public(data_class: str, provider: Provider, org: str, team: str) -> bool:
    return provider.location == "local" or data_class in ("public", "internal")


def _price(book: PriceBook, settings: Settings, model: str, i: int, usage: Usage) -> int:
    nanos = book.price(settings.models[model].deployments[i], usage, T0_MS).cost_nanos
    assert nanos is not None
    return nanos


def test_local_lane_against_the_cheapest_allowed_cloud_and_cheapest_against_priority(
    tmp_path: Path,
) -> None:
    settings = _settings()
    book = PriceBook.from_settings(settings)
    big = Usage(input_tokens=300_000, cached_tokens=100_000, output_tokens=2_000)
    small = Usage(input_tokens=1_000, output_tokens=500)
    store = open_store(f"sqlite:///{tmp_path / 'ledger.db'}")
    local = dict(model="chat", provider="box", upstream_model="llama", location="local")
    events = [
        usage_event(
            1,
            **local,
            data_class="internal",
            usage=big,
            cost_nanos=_price(book, settings, "chat", 0, big),
        ),
        usage_event(
            2,
            **local,
            data_class="internal",
            usage=small,
            cost_nanos=_price(book, settings, "chat", 0, small),
        ),
        usage_event(
            3,
            **local,
            data_class="confidential",
            usage=small,
            cost_nanos=_price(book, settings, "chat", 0, small),
        ),
        # Served by deepseek under cheapest routing; priority would have used OpenAI.
        usage_event(
            4,
            model="coder",
            provider="deepseek",
            location="cloud",
            data_class="internal",
            usage=small,
            cost_nanos=_price(book, settings, "coder", 1, small),
        ),
        usage_event(5, **local, data_class="internal", usage=small, cost_nanos=None),  # unpriced
        usage_event(6, **local, data_class="internal", usage=small, status=502, cost_nanos=7),
    ]
    store.insert_events(events)

    rows = {
        (r.kind, r.model, r.data_class): r
        for r in savings(store, settings, book, _cloud_only_for_public)
    }
    store.close()

    internal = rows[("local_lane", "chat", "internal")]
    actual = _price(book, settings, "chat", 0, big) + _price(book, settings, "chat", 0, small)
    cheapest_cloud = _price(book, settings, "chat", 2, big) + _price(
        book, settings, "chat", 2, small
    )
    assert cheapest_cloud < _price(book, settings, "chat", 1, big) + _price(
        book, settings, "chat", 1, small
    )
    assert internal.requests == 2 and internal.unpriced_requests == 1
    assert internal.actual_usd == nanos_to_usd(actual)
    assert internal.baseline == "deepseek/deepseek-chat"
    assert internal.baseline_usd == nanos_to_usd(cheapest_cloud)
    assert internal.saved_usd == nanos_to_usd(cheapest_cloud - actual)
    assert "1 unpriced calls left out" in internal.note

    confidential = rows[("local_lane", "chat", "confidential")]
    assert confidential.saved_usd is None and confidential.baseline == ""
    assert "no cloud deployment allowed for confidential calls" in confidential.note

    coder = rows[("cheapest_routing", "coder", "internal")]
    priority = _price(book, settings, "coder", 0, small)
    assert coder.baseline == "priority: openai/gpt-4o"
    assert coder.saved_usd == nanos_to_usd(priority) - nanos_to_usd(
        _price(book, settings, "coder", 1, small)
    )
    assert coder.saved_usd is not None and coder.saved_usd > Decimal(0)


def test_cli_applies_the_configured_data_policy(tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from tokenomy.cli import app

    config = tmp_path / "tokenomy.toml"
    config.write_text(CONFIG + '\n[policy]\nconfidential = ["local"]\n')
    settings = parse_config(tomllib.loads(config.read_text()))
    book = PriceBook.from_settings(settings)
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    store = open_store(db)
    usage = Usage(input_tokens=10_000, output_tokens=1_000)
    cost = _price(book, settings, "chat", 0, usage)
    local = dict(model="chat", provider="box", upstream_model="llama", location="local")
    store.insert_events(
        [
            usage_event(1, **local, data_class="confidential", usage=usage, cost_nanos=cost),
            usage_event(2, **local, data_class="", usage=usage, cost_nanos=cost),  # default
        ]
    )
    store.close()

    result = CliRunner().invoke(app, ["savings", "-c", str(config), "--db", db, "-f", "json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    rows = {r["data_class"]: r for r in doc["rows"]}
    assert rows["confidential"]["saved_usd"] is None
    cloud = _price(book, settings, "chat", 2, usage)
    assert Decimal(str(rows[""]["saved_usd"])) == nanos_to_usd(cloud - cost)
    assert Decimal(str(doc["saved_usd"]["local_lane"])) == nanos_to_usd(cloud - cost)
