from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def upstream_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-upstream-openai")
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "sk-ant-upstream")
