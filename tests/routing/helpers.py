"""Small helpers shared by the routing tests."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
import openai

from tests.gateway.harness import Fleet

CHAT = [{"role": "user", "content": "What is the capital of France?"}]


def client(f: Fleet) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f.openai_base, api_key=f.key, max_retries=0)


async def chat(
    f: Fleet, model: str, *, headers: dict[str, str] | None = None, **body: Any
) -> tuple[int, dict[str, Any], dict[str, str]]:
    """POST /v1/chat/completions; (status, JSON body, response headers)."""
    payload = {"model": model, "messages": CHAT, **body}
    h = {"Authorization": f"Bearer {f.key}", **(headers or {})}
    async with (
        aiohttp.ClientSession() as s,
        s.post(f.openai_base + "/chat/completions", json=payload, headers=h) as r,
    ):
        raw = await r.read()
        try:
            data = json.loads(raw)
        except ValueError:
            data = {"stream": raw.decode()}
        return r.status, data, dict(r.headers)


def models_sent(f: Fleet, name: str) -> list[str]:
    """The ``model`` of every request fake ``name`` received."""
    return [r.json.get("model") for r in f.fakes[name].requests if isinstance(r.json, dict)]
