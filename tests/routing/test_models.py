"""Model names that are patterns, aliases, presets, and the routing config contract."""

from __future__ import annotations

from typing import Any

import pytest

from tests.gateway.harness import running_fleet
from tests.routing.helpers import chat, models_sent
from tokenomy.config import parse_config
from tokenomy.errors import ConfigError
from tokenomy.routing.aliases import Resolver

PATTERNS: list[dict[str, Any]] = [
    {
        "name": "claude-sonnet-4-5",
        "deployments": [{"provider": "ant", "model": "claude-sonnet-4-5"}],
    },
    {"name": "claude-*", "deployments": [{"provider": "ant"}]},  # the requested id upstream
    {"name": "deepseek/*", "deployments": [{"provider": "cloud", "model": "*"}]},
    {"name": "gpt-4o", "deployments": [{"provider": "cloud2", "model": "gpt-4o-2024-08-06"}]},
]
ALIASES = [
    {"pattern": "claude-opus-*", "model": "claude-sonnet-4-5"},
    {"pattern": "gpt-5*", "model": "gpt-4o"},
]


async def test_patterns_pass_the_requested_id_and_aliases_map_to_their_target(
    sqlite_url: str,
) -> None:
    async with running_fleet(sqlite_url, PATTERNS, sections={"aliases": ALIASES}) as f:
        assert (await chat(f, "claude-haiku-4-5"))[0] == 200
        assert (await chat(f, "deepseek/deepseek-chat"))[0] == 200
        assert (await chat(f, "claude-opus-4-1"))[0] == 200  # alias beats the pattern
        assert (await chat(f, "gpt-5-codex"))[0] == 200
        assert models_sent(f, "ant") == ["claude-haiku-4-5", "claude-sonnet-4-5"]
        assert models_sent(f, "cloud") == ["deepseek-chat"]
        assert models_sent(f, "cloud2") == ["gpt-4o-2024-08-06"]
        status, body, _ = await chat(f, "llama-3")
        assert status == 404 and body["error"]["code"] == "model_not_found"
        evs = sorted(f.events(), key=lambda e: e.ts_ms)
        assert [(e.model, e.upstream_model, e.deployment) for e in evs if e.status == 200] == [
            ("claude-haiku-4-5", "claude-haiku-4-5", "ant/*"),
            ("deepseek/deepseek-chat", "deepseek-chat", "cloud/*"),
            ("claude-opus-4-1", "claude-sonnet-4-5", "ant/claude-sonnet-4-5"),
            ("gpt-5-codex", "gpt-4o-2024-08-06", "cloud2/gpt-4o-2024-08-06"),
        ]


def test_resolver_order_exact_then_alias_then_pattern() -> None:
    s = parse_config(
        {
            "providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1"}},
            "models": [
                {"name": "a-*", "deployments": [{"provider": "p"}]},
                {"name": "a-1", "deployments": [{"provider": "p", "model": "one"}]},
            ],
            "aliases": [{"pattern": "a-2*", "model": "a-1"}],
        }
    )
    r = Resolver(s)
    assert r.resolve("a-1") == (s.models["a-1"], "a-1")
    assert r.resolve("a-20") == (s.models["a-1"], "a-20")
    assert r.resolve("a-3") == (s.models["a-*"], "3")
    assert r.resolve("b") is None


def test_a_preset_line_is_a_whole_provider() -> None:
    s = parse_config(
        {
            "providers": {
                "ds": {"preset": "deepseek"},
                "kimi": {"preset": "moonshot", "region": "CN", "retention": "30d"},
            },
            "models": [
                {
                    "name": "deepseek-chat",
                    "deployments": [{"provider": "ds", "model": "deepseek-chat"}],
                }
            ],
        }
    )
    ds = s.providers["ds"]
    assert (ds.kind, ds.base_url, ds.api_key_env, ds.catalog_provider, ds.region) == (
        "openai",
        "https://api.deepseek.com/v1",
        "DEEPSEEK_API_KEY",
        "deepseek",
        "CN",
    )
    assert (s.providers["kimi"].region, s.providers["kimi"].retention) == ("CN", "30d")


def test_every_preset_names_a_catalog_provider_that_exists_or_none() -> None:
    import genai_prices.data as catalog

    from tokenomy.providers.presets import PRESETS

    ids = {p.id for p in catalog.providers}
    for name, preset in PRESETS.items():
        assert preset.catalog_provider is None or preset.catalog_provider in ids, name
    assert {"deepseek", "qwen", "moonshot", "zhipu", "minimax"} <= set(PRESETS)


def test_the_config_contract_of_the_issue() -> None:
    s = parse_config(
        {
            "providers": {
                "box": {"kind": "openai", "base_url": "http://box:8000/v1", "location": "local"},
                "cloud": {
                    "kind": "openai",
                    "base_url": "https://api.openai.com/v1",
                    "region": "US",
                    "retention": "zdr",
                },
            },
            "models": [
                {
                    "name": "gpt-4o",
                    "strategy": "priority",
                    "deployments": [
                        {"provider": "box", "model": "gemma-3", "ttft_timeout_s": 5},
                        {"provider": "cloud", "model": "gpt-4o", "weight": 1},
                    ],
                    "retry": {"max_attempts": 3, "backoff_initial_ms": 500, "backoff_max_ms": 5000},
                    "context_window_fallback": "gpt-4.1",
                    "downgrade": {"to": "gpt-4o-mini", "at_share": 0.9},
                },
                {"name": "gpt-4.1", "deployments": [{"provider": "cloud", "model": "gpt-4.1"}]},
                {
                    "name": "gpt-4o-mini",
                    "deployments": [{"provider": "cloud", "model": "gpt-4o-mini"}],
                },
            ],
            "aliases": [{"pattern": "claude-opus-*", "model": "gpt-4o"}],
        }
    )
    m = s.models["gpt-4o"]
    assert [d.name for d in m.deployments] == ["box/gemma-3", "cloud/gpt-4o"]
    assert m.deployments[0].ttft_timeout_s == 5 and m.max_attempts == 3
    assert m.downgrade is not None and m.downgrade.to == "gpt-4o-mini"
    assert s.models["gpt-4.1"].max_attempts == 1  # default: one attempt per deployment
    assert s.providers["cloud"].retention == "zdr"


@pytest.mark.parametrize(
    ("model", "key"),
    [
        ({"name": "m", "deployments": [{"provider": "p"}]}, "models[0].deployments[0].model"),
        (
            {
                "name": "m",
                "deployments": [{"provider": "p", "model": "x"}],
                "context_window_fallback": "nope",
            },
            "models[0].context_window_fallback",
        ),
        (
            {
                "name": "m",
                "deployments": [{"provider": "p", "model": "x"}],
                "downgrade": {"to": "nope"},
            },
            "models[0].downgrade",
        ),
        (
            {
                "name": "m",
                "deployments": [{"provider": "p", "model": "x"}, {"provider": "p", "model": "x"}],
            },
            "models[0].deployments[1].name",
        ),
        (
            {"name": "m", "deployments": [{"provider": "p", "model": "x"}], "strategy": "random"},
            "models[0].strategy",
        ),
    ],
)
def test_routing_config_mistakes_name_their_key(model: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config(
            {
                "providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1"}},
                "models": [model],
            }
        )
    assert exc.value.key == key


def test_unknown_preset_and_missing_kind_are_config_errors() -> None:
    with pytest.raises(ConfigError) as exc:
        parse_config({"providers": {"p": {"preset": "nope"}}})
    assert exc.value.key == "providers.p.preset"
    with pytest.raises(ConfigError) as exc:
        parse_config({"providers": {"p": {"base_url": "http://x/v1"}}})
    assert exc.value.key == "providers.p.kind"
    with pytest.raises(ConfigError) as exc:
        parse_config(
            {
                "providers": {"p": {"kind": "openai"}},
                "aliases": [{"pattern": "x*", "model": "nope"}],
            }
        )
    assert exc.value.key in ("providers.p.base_url", "aliases[0].model")
