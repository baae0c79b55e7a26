"""``tokenomy local serve`` refuses what it cannot serve with one clear line (no server here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from tokenomy.cli import app


def test_serve_reports_a_missing_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")  # restored after the test
    missing = tmp_path / "nope.gguf"
    result = CliRunner().invoke(app, ["local", "serve", "--model", str(missing)])
    assert result.exit_code == 1
    assert "no such GGUF file" in result.output
    result = CliRunner().invoke(app, ["local", "serve", "--model", "not-a-model-package"])
    assert result.exit_code == 1 and "not installed" in result.output


def test_serve_help_shows_the_knobs() -> None:
    result = CliRunner().invoke(app, ["local", "serve", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--model", "--port", "--parallel", "--threads", "--wait-policy", "Example"):
        assert option in result.output
