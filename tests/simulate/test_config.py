"""The simulated provider in the config: its options, and the README's example of it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tokenomy.config import parse_config
from tokenomy.errors import ConfigError
from tokenomy.simulated import Options, attach, options

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def config(provider: dict[str, object]) -> dict[str, object]:
    return {
        "providers": {"sim": provider},
        "models": [{"name": "m", "deployments": [{"provider": "sim", "model": "x"}]}],
    }


def test_readme_example_parses_and_defaults_fill_the_rest() -> None:
    section = README.split("## Simulated token factory", 1)[1]
    block = section.split("```toml\n", 1)[1].split("```", 1)[0]
    settings = parse_config({**tomllib.loads(block), "models": config({})["models"]})
    assert options(settings, "sim") == Options(200, 250, 0.01, 150)
    assert options(parse_config(config({"kind": "simulated"})), "sim") == Options()


def test_the_factory_gets_a_loopback_url_at_start_up() -> None:
    settings = parse_config(config({"kind": "simulated"}))
    rebound, factory = attach(settings)
    assert factory is not None
    try:
        url = f"http://127.0.0.1:{factory.port}/sim"
        assert rebound.providers["sim"].base_url == url
        assert rebound.models["m"].deployments[0].provider.base_url == url
    finally:
        factory.sock.close()
    assert attach(parse_config(config({"kind": "openai", "base_url": "http://x/v1"})))[1] is None


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        (
            {"kind": "simulated", "base_url": "http://127.0.0.1:1"},
            "providers.sim.base_url: not used by kind = 'simulated'",
        ),
        (
            {"kind": "openai", "base_url": "http://x/v1", "tokens_per_s": 5},
            "providers.sim.tokens_per_s: only for kind = 'simulated'",
        ),
        ({"kind": "simulated", "failure_rate": 1.5}, "providers.sim.failure_rate"),
    ],
)
def test_mistakes_are_config_errors(provider: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(config(provider), "t.toml")
