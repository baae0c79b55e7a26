"""The wire-format seam: one object per endpoint, one bridge per pair, no checks elsewhere."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tokenomy.config import Model
from tokenomy.errors import InvalidRequest
from tokenomy.gateway import routes
from tokenomy.wire import ANTHROPIC, BRIDGES, ENDPOINTS, OPENAI, WIRES, served_paths
from tokenomy.wire.base import DEFAULT_OUTPUT_CAP

SRC = Path(__file__).parents[2] / "src" / "tokenomy"
SEAM = SRC / "wire"
_NAMES = r"(?:fmt|endpoint|api_format|wire|upstream_kind)"
_KINDS = r"""(?:["'](?:openai|anthropic)["']|\bOPENAI\b|\bANTHROPIC\b)"""
FORMAT_CHECK = re.compile(
    rf"\b{_NAMES}\s*[!=]=|[!=]=\s*{_NAMES}\b"  # fmt == ..., ... != endpoint
    rf"|[!=]=\s*{_KINDS}|{_KINDS}\s*[!=]="  # ... == "anthropic", OPENAI != ...
)


def test_nothing_outside_the_seam_branches_on_wire_format_strings() -> None:
    offenders = [
        f"{path.relative_to(SRC)}:{n}: {line.strip()}"
        for path in sorted(SRC.rglob("*.py"))
        if SEAM not in path.parents
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if FORMAT_CHECK.search(line.split("#", 1)[0])
    ]
    assert offenders == []


@pytest.mark.parametrize(
    "line",
    [
        'if fmt == "openai":',
        "if call.endpoint != CHAT:",
        'if adapter.kind == "anthropic":',
        "elif OPENAI == wire:",
        "if ev.api_format != x:",
    ],
)
def test_the_format_check_pattern_catches(line: str) -> None:
    assert FORMAT_CHECK.search(line)


def test_every_endpoint_is_routed_and_served_by_its_own_wire() -> None:
    async def handler(*args: object, **kw: object) -> None: ...

    paths = {r.path for r in routes.table(handler, handler, handler)}  # type: ignore[arg-type]
    assert {e.path for e in ENDPOINTS.values()} <= paths
    assert set(WIRES) == {"openai", "anthropic"} and WIRES["openai"] is OPENAI
    for name, endpoint in ENDPOINTS.items():
        assert endpoint.name == name
        # Every endpoint can be served by a deployment of its own format.
        bridge = BRIDGES[(name, endpoint.wire.name)]
        assert bridge.client is endpoint


def test_bridges_between_formats() -> None:
    assert BRIDGES[("chat.completions", "anthropic")].upstream.name == "messages"
    assert BRIDGES[("messages", "openai")].upstream.name == "chat.completions"
    assert BRIDGES[("responses", "anthropic")].upstream.name == "messages"
    assert BRIDGES[("messages.count_tokens", "anthropic")].forwards
    assert not BRIDGES[("messages.count_tokens", "openai")].forwards
    assert ("embeddings", "anthropic") not in BRIDGES
    assert "/v1/responses" in served_paths(ANTHROPIC)
    assert "/v1/embeddings" not in served_paths(ANTHROPIC)


def test_output_cap_read_and_set_by_the_endpoint() -> None:
    chat, messages, responses = (
        ENDPOINTS[n] for n in ("chat.completions", "messages", "responses")
    )
    model = Model(name="m", deployments=())
    assert chat.output_cap({"max_tokens": 10, "n": 3}) == 30
    assert chat.output_cap({"max_completion_tokens": 7, "max_tokens": 99}) == 7
    body: dict[str, object] = {}
    assert chat.set_output_cap(body, model, "https://api.openai.com/v1") == DEFAULT_OUTPUT_CAP
    assert body == {"max_completion_tokens": DEFAULT_OUTPUT_CAP}
    body = {}
    chat.set_output_cap(body, model, "http://localhost:8000/v1")
    assert body == {"max_tokens": DEFAULT_OUTPUT_CAP}
    assert messages.output_cap({"max_tokens": 5, "n": 3}) == 5  # no n on Messages
    assert responses.output_cap({"max_output_tokens": 4}) == 4
    assert ENDPOINTS["embeddings"].output_cap({}) == 0


def test_validation_belongs_to_the_endpoint() -> None:
    with pytest.raises(InvalidRequest, match="max_tokens"):
        ENDPOINTS["messages"].validate({"model": "m", "messages": [{"role": "user"}]})
    assert (
        ENDPOINTS["messages.count_tokens"].validate(
            {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        )
        == "m"
    )
    with pytest.raises(InvalidRequest, match="streamed"):
        ENDPOINTS["embeddings"].validate({"model": "m", "input": "x", "stream": True})
