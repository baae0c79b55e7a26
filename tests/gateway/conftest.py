from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.gateway.harness import Harness, running_gateway


@pytest.fixture
def upstream_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-upstream-openai")
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "sk-ant-upstream")


@pytest.fixture
async def gw(sqlite_url: str, upstream_keys: None) -> AsyncIterator[Harness]:
    async with running_gateway(sqlite_url) as h:
        yield h
