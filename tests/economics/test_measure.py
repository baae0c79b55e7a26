"""``tokenomy factory measure``: the InferenceX math, flags, costs, Pareto, plot and --save."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.fakes import FakeOpenAI
from tokenomy.config import load_config
from tokenomy.economics import factory_token_prices
from tokenomy.economics.decimals import out
from tokenomy.economics.factory import factory_cost
from tokenomy.economics.measure import (
    Point,
    RequestResult,
    best_point,
    measure,
    pareto,
    percentile,
    plot,
    point_costs,
    rows,
    save_throughput,
)
from tokenomy.economics.profiles import build_profile

Invoke = Callable[..., Any]


def _ok(inp: int, outp: int, ttft: float, e2el: float) -> RequestResult:
    return RequestResult(True, "", inp, outp, outp, ttft, e2el, True)


def test_point_metrics_follow_inferencex() -> None:
    p = Point(2, 100, 11, [_ok(100, 11, 0.1, 1.1), _ok(100, 11, 0.3, 2.3)], wall=2.0)
    m = p.metrics()
    assert m["tput_per_gpu"] == 111.0  # (200 input + 22 output) / 2 s
    assert (m["output_tput_per_gpu"], m["input_tput_per_gpu"]) == (11.0, 100.0)
    assert m["median_ttft"] == 0.2 and m["p99_ttft"] == pytest.approx(0.298)
    assert m["median_tpot"] == pytest.approx(0.15)  # (1.0 / 10, 2.0 / 10)
    assert m["median_intvty"] == pytest.approx(7.5)  # median of 10 and 5 tokens/s per user
    assert m["p99_intvty"] == pytest.approx(1 / 0.199, rel=1e-5)
    assert m["median_e2el"] == pytest.approx(1.7)
    assert not m["flagged"] and m["flags"] == []
    assert p.metrics(gpus=2)["tput_per_gpu"] == 55.5
    assert percentile([], 50) is None and percentile([3.0], 99) == 3.0


def test_bad_points_are_flagged_and_never_on_the_frontier() -> None:
    good = Point(1, 10, 4, [_ok(10, 4, 0.1, 0.4)], wall=0.5)
    short = Point(2, 10, 4, [_ok(10, 4, 0.1, 0.4), _ok(10, 2, 0.1, 0.3)], wall=0.5)
    empty = Point(4, 10, 4, [RequestResult(True, "", 10, 0, 0, None, 0.2, True)], wall=0.5)
    failed = Point(8, 10, 4, [RequestResult(False, "HTTP 500: boom")], wall=0.5)
    assert "shorter than osl=4" in short.flags[0]
    assert empty.flags == ["1 empty stream(s)"]
    assert failed.flags == ["1 failed request(s): HTTP 500: boom"]
    table = rows([good, short, empty, failed], None)
    assert [r["flagged"] for r in table] == [False, True, True, True]
    # The short point has the higher throughput, but a flagged point never wins.
    assert table[1]["tput_per_gpu"] > table[0]["tput_per_gpu"]
    assert [r["conc"] for r in pareto(table)] == [1]
    assert best_point(table) is table[0]
    assert best_point(table[1:]) is None


def test_costs_on_the_cpu_box_profile() -> None:
    profile = build_profile("cpu-box", [({"gpu": "cpu-box"}, "test {key}")])
    metrics = {"tput_per_gpu": 100.0, "output_tput_per_gpu": 20.0}
    costs = point_costs(metrics, profile)
    per_hour = factory_cost(profile).cost_per_gpu_hour
    assert costs["usd_per_mtok_total"] == out(per_hour * 10**6 / (100 * 3600))
    assert costs["usd_per_mtok_output"] == out(per_hour * 10**6 / (20 * 3600))
    assert costs["j_per_token"] == out(profile.all_in_kw * 1000 / 100)
    assert costs["tok_s_per_mw"] == out(Decimal(100) * 1000 / profile.all_in_kw)
    assert isinstance(costs["usd_per_mtok_total"], Decimal)  # money is never a float
    assert set(point_costs(metrics, None).values()) == {None}


async def test_measure_a_fake_openai_server() -> None:
    async with FakeOpenAI(api_key="sk-bench") as oai:
        points, exact = await measure(
            oai.base_url,
            "gpt-4o-mini",
            levels=[1, 2],
            isl=12,
            osl=8,
            duration=0,
            api_key="sk-bench",
        )
        assert not exact  # no /tokenize: prompts sized from a probe's reported usage
        table = rows(points, None)
        assert [r["conc"] for r in table] == [1, 2]
        assert [r["requests"] for r in table] == [1, 2]  # duration 0: one request per client
        for r in table:
            assert not r["flagged"], r["flags"]
            assert r["measured_isl"] == 12 and r["measured_osl"] == 8
            assert r["median_ttft"] is not None and r["tput_per_gpu"] > 0
        # The fake's reply ends after 22 words: asking for 40 is flagged, not averaged in.
        short, _ = await measure(
            oai.base_url,
            "gpt-4o-mini",
            levels=[1],
            isl=12,
            osl=40,
            duration=0,
            api_key="sk-bench",
        )
        assert "shorter than osl=40" in rows(short, None)[0]["flags"][0]
        failing, _ = await measure(
            oai.base_url,
            "fake-error-500",
            levels=[1],
            isl=12,
            osl=8,
            duration=0,
            api_key="sk-bench",
        )
        assert rows(failing, None)[0]["flags"][0].startswith("1 failed request(s): HTTP 500")
        no_usage, _ = await measure(
            oai.base_url,
            "fake-no-usage",
            levels=[1],
            isl=12,
            osl=8,
            duration=0,
            api_key="sk-bench",
        )
        # Without usage, output tokens are the stream's text events (one per token).
        assert rows(no_usage, None)[0]["measured_osl"] == 8


def test_plot_writes_png_and_svg(tmp_path: Path) -> None:
    table = rows(
        [
            Point(1, 10, 4, [_ok(10, 4, 0.1, 0.4)], wall=0.5),
            Point(2, 10, 4, [_ok(10, 4, 0.2, 0.8), _ok(10, 4, 0.2, 0.8)], wall=0.9),
            Point(4, 10, 4, [_ok(10, 1, 0.2, 0.8)], wall=0.9),
        ],
        None,
    )
    plot(table, tmp_path / "p.png", title="test")
    plot(table, tmp_path / "p.svg", title="test")
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in (tmp_path / "p.svg").read_bytes()[:500]


CONFIG = """# my gateway
[providers.box]
kind = "openai"
base_url = "http://127.0.0.1:8000/v1"
location = "local"
factory = "box"

[factories.box]   # the closet
gpu = "cpu-box"
throughput = "5"  # a guess
electricity = "0.2"

[[models]]
name = "gemma"
deployments = [{ provider = "box", model = "local" }]
"""


def test_save_writes_measured_throughput_into_the_factory(tmp_path: Path) -> None:
    path = tmp_path / "tokenomy.toml"
    path.write_text(CONFIG)
    row = {"tput_per_gpu": 250.0, "input_tput_per_gpu": 200.0}
    before = factory_token_prices(load_config(path).factories)["box"]
    save_throughput(path, "box", row, gpu="cpu-box", note="measured at conc 2")
    text = path.read_text()
    assert "# my gateway" in text and "# the closet" in text and 'electricity = "0.2"' in text
    assert "a guess" not in text  # the old throughput line is replaced, not duplicated
    assert text.count("throughput =") == 1 and "# throughput: measured at conc 2" in text
    factories = load_config(path).factories
    assert Decimal(factories["box"]["throughput"]) == 250
    assert Decimal(factories["box"]["throughput_input_share"]) == Decimal("0.8")
    after = factory_token_prices(factories)["box"]
    assert after[1] < before[1]  # 50x the throughput: far cheaper tokens
    # A second save replaces the first; a new name gets its own table with the box.
    save_throughput(path, "box", row, gpu="cpu-box", note="again")
    save_throughput(path, "lab", row, gpu="cpu-box", note="new")
    factories = load_config(path).factories
    assert factories["lab"]["gpu"] == "cpu-box" and path.read_text().count("throughput =") == 2


def test_save_refuses_an_invalid_result(tmp_path: Path) -> None:
    path = tmp_path / "tokenomy.toml"
    path.write_text(CONFIG)
    with pytest.raises(ValueError, match="not saved"):  # no gpu, no capex: not a profile
        save_throughput(
            path, "bare", {"tput_per_gpu": 1.0, "input_tput_per_gpu": 0.5}, gpu=None, note="x"
        )
    assert path.read_text() == CONFIG


def test_factory_is_still_a_command_and_measure_a_subcommand(cli: Invoke, tmp_path: Path) -> None:
    result = cli("factory", "--gpu", "cpu-box", "--throughput", "20", "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["profile"] == "cpu-box"
    result = cli("factory", "measure", "--help")
    assert result.exit_code == 0 and "Example: tokenomy factory measure" in result.output
    bad = cli("factory", "measure", "--endpoint", "http://x", "--model", "m", "--plot", "a.txt")
    assert bad.exit_code == 1 and "--plot must end in .png or .svg" in bad.output
    bad = cli("factory", "measure", "--endpoint", "http://x", "--model", "m", "--save", "box")
    assert bad.exit_code == 1 and "--save needs --config" in bad.output
    bad = cli("factory", "measure", "--endpoint", "http://x", "--model", "m", "--concurrency", "0")
    assert bad.exit_code == 2
