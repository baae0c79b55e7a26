"""Simon Willison's ``llm``, configured the documented way (``extra-openai-models.yaml`` with
``api_base`` at the gateway, the gateway key in ``keys.json``): chat completions and Responses
models, plain, streamed and a tool chain (``model.chain`` runs the tool and prompts again)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import llm
import pytest

from tests.clients.conftest import Ledger, weather
from tests.gateway.harness import Harness

MODELS = ["gw-gpt-4o-mini", "gw-claude-sonnet", "gw-responses-gpt-4o-mini"]
MODELS += ["gw-responses-claude-sonnet"]


@pytest.fixture(scope="module")
def user_dir(gateway: Harness, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    path = tmp_path_factory.mktemp("llm-user")
    lines = []
    for mid in MODELS:
        name = mid.removeprefix("gw-").removeprefix("responses-")
        lines += [
            f"- model_id: {mid}",
            f"  model_name: {name}",
            f"  api_base: {gateway.openai_base}",
            "  supports_tools: true",
            "  api_key_name: tokenomy",
        ]
        if "responses" in mid:
            lines.append("  responses: true")
    (path / "extra-openai-models.yaml").write_text("\n".join(lines) + "\n")
    (path / "keys.json").write_text(json.dumps({"tokenomy": gateway.key}))  # `llm keys set`
    mp = pytest.MonkeyPatch()
    mp.setenv("LLM_USER_PATH", str(path))
    yield path
    mp.undo()


def model(mid: str, user_dir: Path) -> Any:
    return llm.get_model(mid)


@pytest.mark.parametrize("mid", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_prompt(gateway: Harness, ledger: Ledger, user_dir: Path, mid: str, stream: bool) -> None:
    response = model(mid, user_dir).prompt("Hello there", stream=stream)
    assert "".join(response)
    usage = response.usage()
    assert (usage.input, usage.output) == (ledger.usage.input_tokens, ledger.usage.output_tokens)
    ledger.check(1, api_format="openai")


@pytest.mark.parametrize("mid", MODELS)
def test_tool_chain(gateway: Harness, ledger: Ledger, user_dir: Path, mid: str) -> None:
    ledger.tool_call_next()
    chain = model(mid, user_dir).chain("What is the weather in Paris?", tools=[weather])
    responses = list(chain.responses())  # runs the chain (each call of it runs it again)
    assert len(responses) == 2
    assert responses[1].text()
    assert [c.name for c in responses[0].tool_calls()] == ["weather"]
    ledger.check(2, api_format="openai")
