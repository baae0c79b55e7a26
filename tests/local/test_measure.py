"""One small real benchmark of the llama.cpp server, saved into a factory profile."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from typer.testing import CliRunner

from tests.local.server import ALIAS, LocalServer
from tokenomy.cli import app
from tokenomy.config import load_config
from tokenomy.economics import factory_token_prices

CONFIG = """[providers.box]
kind = "openai"
base_url = "http://127.0.0.1:8000/v1"
location = "local"
factory = "box"

[factories.box]
gpu = "cpu-box"
throughput = "1"

[[models]]
name = "gemma"
deployments = [{ provider = "box", model = "gemma-local" }]
"""


def test_measure_the_real_server_and_save_its_throughput(
    llama: LocalServer, tmp_path: Path
) -> None:
    config = tmp_path / "tokenomy.toml"
    config.write_text(CONFIG)
    before = factory_token_prices(load_config(config).factories)["box"]
    result = CliRunner().invoke(
        app,
        [
            *("factory", "measure", "--endpoint", llama.v1, "--model", ALIAS),
            *("--concurrency", "1,2", "--isl", "32", "--osl", "8", "--duration", "0"),
            *("--factory", "cpu-box", "--format", "json", "--plot", str(tmp_path / "p.svg")),
            *("--save", "box", "--config", str(config)),
        ],
    )
    assert result.exit_code == 0, result.output
    table = json.loads(result.stdout)
    assert [r["conc"] for r in table] == [1, 2]
    for r in table:
        # Exact prompt lengths (the server's /tokenize), full outputs (ignore_eos).
        assert not r["flagged"], r["flags"]
        assert (r["measured_isl"], r["measured_osl"]) == (32, 8)
        assert r["tput_per_gpu"] > 0 and r["median_ttft"] > 0 and r["median_intvty"] > 0
        assert Decimal(str(r["usd_per_mtok_total"])) > 0 and r["j_per_token"] > 0
    assert (tmp_path / "p.svg").exists()
    best = max(table, key=lambda r: r["tput_per_gpu"])
    saved = load_config(config).factories["box"]
    assert Decimal(saved["throughput"]) == Decimal(str(best["tput_per_gpu"])).quantize(
        Decimal(saved["throughput"])
    )
    # The gateway now prices this box's tokens from the measured throughput.
    assert factory_token_prices(load_config(config).factories)["box"] != before
