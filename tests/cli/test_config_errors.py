"""A bad config stops ``tokenomy serve`` with the file, the key and the problem.

Each case runs the real ``tokenomy serve`` in a subprocess (no Typer runner, no mocks):
it must exit non-zero before binding anything, without a traceback, and say where and what.
The sample config of the README must load and resolve completely.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import genai_prices
import pytest

from tokenomy.config import load_config
from tokenomy.events import Usage
from tokenomy.money import usd_to_nanos
from tokenomy.pricing import PriceBook

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "tokenomy.toml"

GOOD_PROVIDER = """
[providers.openai]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
"""


def serve(config: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``tokenomy serve --config CONFIG`` from ``cwd``; a config that loads would serve, so
    the timeout turns a missed error into a failure instead of a hang."""
    env = {k: v for k, v in os.environ.items() if k != "TOKENOMY_DB"}
    db = f"sqlite:///{cwd / 'ledger.db'}"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "tokenomy.cli",
            "serve",
            "--config",
            config,
            "--db",
            db,
            "--port",
            "0",
        ],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def one_line(text: str) -> str:
    """Whitespace-normalised (a console may wrap a long message at spaces)."""
    return " ".join(text.split())


CASES = {
    "unknown provider": (
        GOOD_PROVIDER + '[[models]]\nname = "gpt-4o"\n'
        'deployments = [{ provider = "opnai", model = "gpt-4o" }]\n',
        "models[0].deployments[0].provider",
        "unknown provider 'opnai' (known: openai)",
    ),
    "unknown provider in a later deployment": (
        GOOD_PROVIDER
        + '[[models]]\nname = "a"\ndeployments = [{ provider = "openai", model = "a" }]\n'
        '[[models]]\nname = "b"\ndeployments = [\n  { provider = "openai", model = "b" },\n'
        '  { provider = "vllm", model = "b" },\n]\n',
        "models[1].deployments[1].provider",
        "unknown provider 'vllm'",
    ),
    "bad kind": (
        '[providers.azure]\nkind = "azure"\nbase_url = "https://example.invalid/v1"\n',
        "providers.azure.kind",
        "'azure'",
    ),
    "missing base_url": (
        '[providers.openai]\nkind = "openai"\napi_key_env = "OPENAI_API_KEY"\n',
        "providers.openai.base_url",
        "missing required field",
    ),
    "base_url without scheme": (
        '[providers.openai]\nkind = "openai"\nbase_url = "api.openai.com/v1"\n',
        "providers.openai.base_url",
        "must start with http:// or https://",
    ),
    "missing deployment model": (
        GOOD_PROVIDER + '[[models]]\nname = "gpt-4o"\ndeployments = [{ provider = "openai" }]\n',
        "models[0].deployments[0].model",
        "missing required field",
    ),
    "unknown price id": (
        GOOD_PROVIDER + '[[models]]\nname = "gpt-4o"\n'
        'deployments = [{ provider = "openai", model = "gpt-4o", price = "gold" }]\n'
        '[prices.silver]\ninput = "1"\noutput = "2"\n',
        "models[0].deployments[0].price",
        "unknown price id 'gold'",
    ),
    "unknown top-level key": (
        "[gatway]\nport = 8080\n" + GOOD_PROVIDER,
        "gatway",
        "unknown key",
    ),
    "unknown gateway key": (
        "[gateway]\nprot = 8080\n" + GOOD_PROVIDER,
        "gateway.prot",
        "unknown key",
    ),
    "bad port type": (
        '[gateway]\nport = "eighty"\n',
        "gateway.port",
        "valid integer",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_config_error_names_file_key_and_problem(tmp_path: Path, case: str) -> None:
    text, key, problem = CASES[case]
    (tmp_path / "bad.toml").write_text(text, encoding="utf-8")
    proc = serve("bad.toml", tmp_path)
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    message = one_line(proc.stderr)
    assert "Traceback" not in proc.stderr
    assert f"bad.toml: {key}: " in message, message
    assert problem in message, message
    assert "tokenomy gateway on" not in proc.stdout  # it never started serving


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "broken.toml").write_text(
        '[gateway]\nport = 8080\nhost = "127.0.0.1\n', encoding="utf-8"
    )
    proc = serve("broken.toml", tmp_path)
    assert proc.returncode == 1, proc.stderr
    message = one_line(proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "broken.toml: invalid TOML" in message, message
    assert "line 3" in message, message


def test_missing_file_is_named(tmp_path: Path) -> None:
    proc = serve("nowhere.toml", tmp_path)
    assert proc.returncode == 1, proc.stderr
    message = one_line(proc.stderr)
    assert "Traceback" not in proc.stderr
    assert "nowhere.toml: cannot read file" in message, message
    assert "No such file or directory" in message, message
    assert not (tmp_path / "ledger.db").exists()  # stopped before touching the ledger


def test_error_message_is_one_line_even_with_a_long_path(tmp_path: Path) -> None:
    """Scripts grep a failed start-up's stderr for the file name: it must not be broken
    across lines (stderr is a pipe here, so no terminal width applies)."""
    deep = tmp_path / "configs" / "production-cluster-eu-west" / "gateway-replica-set"
    deep.mkdir(parents=True)
    path = deep / "tokenomy.toml"
    path.write_text(CASES["unknown provider"][0], encoding="utf-8")
    proc = serve(str(path), tmp_path)
    assert proc.returncode == 1
    expected = (
        f"{path}: models[0].deployments[0].provider: unknown provider 'opnai' (known: openai)"
    )
    assert any(expected in line for line in proc.stderr.splitlines()), proc.stderr


def test_key_in_brackets_is_reported_verbatim(tmp_path: Path) -> None:
    """The message is plain text: a key that looks like console markup must survive."""
    (tmp_path / "bad.toml").write_text('"[providers]" = 1\n', encoding="utf-8")
    proc = serve("bad.toml", tmp_path)
    assert proc.returncode == 1
    assert "bad.toml: [providers]: unknown key" in one_line(proc.stderr), proc.stderr


def test_sample_config_loads_and_every_model_resolves() -> None:
    settings = load_config(SAMPLE)
    assert set(settings.models) == {
        "simulated",
        "simulated-fast",
        "gpt-4o",
        "gpt-4o-mini",
        "claude-sonnet-4",
        "deepseek-chat",
        "local-llama",
        "coder",
    }
    assert settings.gateway.host == "127.0.0.1" and settings.gateway.port == 8080
    assert settings.gateway.max_body_bytes == 20_971_520
    assert settings.providers["local-box"].location == "local"
    assert settings.providers["anthropic"].kind == "anthropic"
    book = PriceBook.from_settings(settings)
    now_ms = time.time_ns() // 1_000_000
    million_each = Usage(input_tokens=1_000_000, output_tokens=1_000_000)
    for name, model in settings.models.items():
        assert model.name == name and model.deployments
        for dep in model.deployments:
            assert settings.providers[dep.provider.name] is dep.provider
            assert dep.price is None or dep.price in settings.prices
            priced = book.price(dep, million_each, now_ms)
            assert priced.cost_nanos is not None and priced.cost_nanos > 0, (name, priced)
            if dep.price is not None:
                assert priced.source == f"custom:{dep.price}"
                continue
            # Catalog-priced: exactly what genai-prices itself computes for that model.
            provider_id = {"openai": "openai", "anthropic": "anthropic"}[dep.provider.name]
            calc = genai_prices.calc_price(
                genai_prices.Usage(input_tokens=1_000_000, output_tokens=1_000_000),
                dep.model,
                provider_id=provider_id,
                genai_request_timestamp=datetime.fromtimestamp(now_ms / 1000, UTC),
            )
            assert priced.cost_nanos == usd_to_nanos(calc.total_price), name
            assert priced.source.startswith("genai-prices "), priced.source
            assert f"{provider_id}/" in priced.source, priced.source
    # Custom prices are USD per million tokens, exact.
    deepseek = settings.models["deepseek-chat"].deployments[0]
    assert book.price(deepseek, million_each, now_ms).cost_usd == Decimal("1.37")
    local = settings.models["local-llama"].deployments[0]
    assert book.price(local, million_each, now_ms).cost_usd == Decimal("0.10")
    assert settings.gateway.db is None  # commented out: the default ledger applies
