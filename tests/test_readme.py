"""The README's promises that can be checked mechanically: its commands, config and CLI."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tokenomy.cli import app
from tokenomy.config import parse_config

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second() -> None:
    first_block = README.split("```bash\n", 1)[1].split("```", 1)[0].strip().splitlines()
    assert len(first_block) == 2
    install_and_serve, run_tests = first_block
    assert "pip install -e ." in install_and_serve
    assert "tokenomy serve --config examples/tokenomy.toml" in install_and_serve
    assert run_tests == "bash scripts/test"
    assert "bash scripts/test" in (ROOT / ".ci" / "run").read_text()


def test_config_reference_is_a_valid_config() -> None:
    block = README.split("## Configuration", 1)[1].split("```toml\n", 1)[1].split("```", 1)[0]
    settings = parse_config(tomllib.loads(block), "README.md")
    (deployment,) = settings.models["gpt-4o"].deployments
    assert deployment.price == "ID" and deployment.provider.factory == "NAME"
    assert settings.raw.alerts.webhook_url is not None


COMMANDS = sorted(set(re.findall(r"^\| `tokenomy ([a-z]+(?: [a-z][a-z-]*)?)", README, re.M)))


@pytest.mark.parametrize("command", COMMANDS)
def test_every_documented_command_exists_with_an_example(command: str) -> None:
    words = command.split()
    result = CliRunner().invoke(app, [*words, "--help"])
    assert result.exit_code == 0, result.output
    if len(words) == 2 or words[0] in {
        "serve",
        "usage",
        "factory",
        "plan",
        "breakeven",
        "forecast",
    }:
        assert "Example" in result.output


def test_the_commands_table_is_not_empty() -> None:
    assert {"serve", "keys create", "usage"} <= set(COMMANDS)
