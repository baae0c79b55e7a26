from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.gateway.harness import Harness, running_gateway


@pytest.fixture
def upstream_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-upstream-openai")
    monkeypatch.setenv("FAKE_ANTHROPIC_KEY", "sk-ant-upstream")


@pytest.fixture
async def gw(sqlite_url: str, upstream_keys: None) -> AsyncIterator[Harness]:
    async with running_gateway(sqlite_url) as h:
        yield h


@dataclass
class Target:
    """A gateway to call: its base URL and an API key (a Harness is one too)."""

    url: str
    key: str


async def chat(
    h: Harness | Target,
    model: str = "gpt-4o-mini",
    *,
    stream: bool = False,
    headers: dict[str, str] | None = None,
    key: str | None = None,
) -> tuple[int, str]:
    """One chat completion through the gateway: (status, request id)."""
    body: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": "hello"}]}
    if stream:
        body["stream"] = True
    hdrs = {"Authorization": f"Bearer {key or h.key}", **(headers or {})}
    async with (
        aiohttp.ClientSession() as s,
        s.post(h.url + "/v1/chat/completions", json=body, headers=hdrs) as r,
    ):
        await r.read()
        return r.status, r.headers.get("x-tokenomy-request-id", "")


async def scrape(h: Harness, token: str | None = None) -> dict[str, list[Any]]:
    """``GET /metrics`` parsed: sample name → samples."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as s, s.get(h.url + "/metrics", headers=headers) as r:
        assert r.status == 200, await r.text()
        assert r.headers["Content-Type"].startswith("text/plain")
        text = await r.text()
    out: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append(sample)
    return out


def total(samples: dict[str, list[Any]], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in samples.get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    )
