"""A local deployment priced at its production cost: ``factory = "NAME"`` end to end."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import openai

from tests.fakes import FakeOpenAI
from tests.gateway.harness import config_for, running_gateway
from tokenomy.economics import factory_token_prices
from tokenomy.money import usd_to_nanos


def _config(openai_url: str) -> dict[str, Any]:
    cfg = config_for(openai_url, "http://127.0.0.1:9")
    cfg["factories"] = {
        "closet": {"gpu": "rtx-4090-ws", "throughput": 45, "utilization": 0.3, "electricity": 0.21}
    }
    cfg["providers"]["closet-box"] = {
        "kind": "openai",
        "base_url": openai_url,
        "location": "local",
        "factory": "closet",
        "api_key_env": "FAKE_OPENAI_KEY",
    }
    cfg["models"].append(
        {
            "name": "closet-llama",
            "deployments": [{"provider": "closet-box", "model": "llama-3.1-8b"}],
        }
    )
    return cfg


async def test_factory_priced_local_tokens(sqlite_url: str, upstream_keys: None) -> None:
    async with FakeOpenAI() as oai:
        cfg = _config(oai.base_url)
        async with (
            running_gateway(sqlite_url, config=cfg) as gw,
            openai.AsyncOpenAI(base_url=gw.openai_base, api_key=gw.key) as client,
        ):
            raw = await client.chat.completions.with_raw_response.create(
                model="closet-llama", messages=[{"role": "user", "content": "count the bolts"}]
            )
            resp = raw.parse()
            ev = gw.event(raw.headers["x-tokenomy-request-id"])
    assert resp.usage is not None
    assert ev.location == "local" and ev.price_source == "factory:closet"
    input_per_mtok, output_per_mtok = factory_token_prices(cfg["factories"])["closet"]
    expected = usd_to_nanos(
        (
            Decimal(resp.usage.prompt_tokens) * input_per_mtok
            + Decimal(resp.usage.completion_tokens) * output_per_mtok
        )
        / 1_000_000
    )
    assert ev.cost_nanos == expected > 0
    assert Decimal(raw.headers["x-tokenomy-cost-usd"]) * 10**9 == expected
