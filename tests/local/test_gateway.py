"""The local lane end to end: a real llama.cpp server behind the gateway, official SDK in front.

Nothing here depends on what the model writes (it is a base model): only that it writes
something, and that every token is metered and priced exactly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from typing import Any

import aiohttp
import openai
import orjson
import pytest
from aiohttp import web

from tests.fakes import FakeOpenAI
from tests.gateway.harness import running_gateway
from tests.local.server import ALIAS, MODEL_PACKAGE, LocalServer
from tests.ports import unused_port
from tokenomy.economics import factory_token_prices
from tokenomy.money import usd_to_nanos

FACTORIES = {"cpu": {"gpu": "cpu-box", "throughput": "20"}}
MESSAGES = [{"role": "user", "content": "Write a short line about tokens."}]


def _config(base_url: str) -> dict[str, Any]:
    return {
        "gateway": {"ledger_flush_interval_s": 0.02},
        "providers": {
            "box": {
                "kind": "openai",
                "base_url": base_url,
                "location": "local",
                "factory": "cpu",
                "tokenizer": MODEL_PACKAGE,
            }
        },
        "models": [{"name": "gemma", "deployments": [{"provider": "box", "model": ALIAS}]}],
        "factories": FACTORIES,
    }


def _factory_nanos(input_tokens: int, output_tokens: int) -> int:
    inp, out = factory_token_prices(FACTORIES)["cpu"]
    return usd_to_nanos((Decimal(input_tokens) * inp + Decimal(output_tokens) * out) / 1_000_000)


async def test_sdk_chat_through_the_gateway_is_metered_and_priced_exactly(
    llama: LocalServer, sqlite_url: str
) -> None:
    async with (
        running_gateway(sqlite_url, config=_config(llama.v1)) as gw,
        openai.AsyncOpenAI(base_url=gw.openai_base, api_key=gw.key) as client,
    ):
        raw = await client.chat.completions.with_raw_response.create(
            model="gemma",
            messages=MESSAGES,
            max_tokens=6,
            temperature=0,  # type: ignore[arg-type]
        )
        resp = raw.parse()
        ev = gw.event(raw.headers["x-tokenomy-request-id"])

        stream = await client.chat.completions.create(
            model="gemma",
            messages=MESSAGES,  # type: ignore[arg-type]
            max_tokens=5,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        text, usage = "", None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            usage = chunk.usage or usage
        stream_ev = gw.events()[-1]

    content = resp.choices[0].message.content
    assert isinstance(content, str) and content  # generated text, whatever it says
    assert resp.usage is not None and resp.usage.completion_tokens == 6
    assert (ev.usage.input_tokens, ev.usage.output_tokens) == (
        resp.usage.prompt_tokens,
        resp.usage.completion_tokens,
    )
    assert not ev.estimated and ev.location == "local" and ev.price_source == "factory:cpu"
    assert ev.cost_nanos == _factory_nanos(resp.usage.prompt_tokens, 6) > 0

    assert text and usage is not None and usage.completion_tokens == 5
    assert stream_ev.stream and not stream_ev.estimated
    assert (stream_ev.usage.input_tokens, stream_ev.usage.output_tokens) == (
        usage.prompt_tokens,
        5,
    )
    assert stream_ev.cost_nanos == _factory_nanos(usage.prompt_tokens, 5)


@asynccontextmanager
async def usage_stripper(upstream_v1: str) -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    """A proxy that removes ``usage`` from every answer (as some local servers never send
    it), keeping what it removed: the server's own counts, to compare with ours."""
    seen: list[dict[str, Any]] = []

    async def forward(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        url = f"{upstream_v1}/{request.match_info['path']}"
        async with (
            aiohttp.ClientSession() as session,
            session.post(url, data=body, headers={"Content-Type": "application/json"}) as up,
        ):
            if not orjson.loads(body).get("stream"):
                data = await up.json()
                seen.append(data.pop("usage"))
                data.pop("timings", None)
                return web.json_response(data, status=up.status)
            out = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await out.prepare(request)
            async for line in up.content:
                if line.startswith(b"data: {"):
                    event = orjson.loads(line[6:])
                    event.pop("timings", None)
                    if "usage" in event:
                        seen.append(event.pop("usage"))
                        if not event.get("choices"):
                            continue
                    line = b"data: " + orjson.dumps(event) + b"\n"
                await out.write(line)
            await out.write_eof()
            return out

    app = web.Application()
    app.router.add_post("/v1/{path:.*}", forward)
    runner = web.AppRunner(app)
    await runner.setup()
    port = unused_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/v1", seen
    finally:
        await runner.cleanup()


async def test_without_usage_the_gguf_tokenizer_counts_exactly(
    llama: LocalServer, sqlite_url: str
) -> None:
    async with (
        usage_stripper(llama.v1) as (stripped_url, seen),
        running_gateway(sqlite_url, config=_config(stripped_url)) as gw,
        openai.AsyncOpenAI(base_url=gw.openai_base, api_key=gw.key) as client,
    ):
        messages = [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Name three colours,\n\n  please."},
        ]
        raw = await client.chat.completions.with_raw_response.create(
            model="gemma",
            messages=messages,
            max_tokens=7,
            temperature=0,  # type: ignore[arg-type]
        )
        assert raw.parse().usage is None  # the stripper removed it
        unary = gw.event(raw.headers["x-tokenomy-request-id"])
        stream = await client.chat.completions.create(
            model="gemma",
            messages=messages,  # type: ignore[arg-type]
            max_tokens=6,
            temperature=0,
            stream=True,
        )
        async for _ in stream:
            pass
        streamed = gw.events()[-1]
        completion = await client.completions.create(
            model="gemma", prompt="Once upon a time", max_tokens=5, temperature=0
        )
        assert completion.usage is None
        legacy = gw.events()[-1]

    assert len(seen) == 3
    for ev, server in zip((unary, streamed, legacy), seen, strict=True):
        assert ev.estimated  # counted by us, not reported by the server
        assert (ev.usage.input_tokens, ev.usage.output_tokens) == (
            server["prompt_tokens"],
            server["completion_tokens"],
        )
        assert ev.cost_nanos == _factory_nanos(server["prompt_tokens"], server["completion_tokens"])


async def test_a_confidential_prompt_goes_to_the_local_lane_not_the_cloud(
    llama: LocalServer, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-upstream-openai")
    async with FakeOpenAI() as cloud:
        cfg = _config(llama.v1)
        cfg["providers"]["cloud"] = {
            "kind": "openai",
            "base_url": cloud.base_url,
            "api_key_env": "FAKE_OPENAI_KEY",
        }
        # The cloud deployment comes first: only the data policy sends a request local.
        cfg["models"] = [
            {
                "name": "gemma",
                "deployments": [
                    {"provider": "cloud", "model": "gpt-4o-mini"},
                    {"provider": "box", "model": ALIAS},
                ],
            }
        ]
        cfg["policy"] = {"confidential": ["local"], "restricted": ["local"]}
        async with (
            running_gateway(sqlite_url, config=cfg) as gw,
            openai.AsyncOpenAI(base_url=gw.openai_base, api_key=gw.key) as client,
        ):
            secret = [{"role": "user", "content": "Mail jane.doe@acmecorp.com the payroll."}]
            raw = await client.chat.completions.with_raw_response.create(
                model="gemma",
                messages=secret,
                max_tokens=4,
                temperature=0,  # type: ignore[arg-type]
            )
            local = gw.event(raw.headers["x-tokenomy-request-id"])
            plain = await client.chat.completions.with_raw_response.create(
                model="gemma",
                messages=MESSAGES,
                max_tokens=4,  # type: ignore[arg-type]
            )
            assert plain.headers["x-tokenomy-location"] == "cloud"
        assert not any(b"jane.doe" in r.body for r in cloud.requests)
    resp = raw.parse()
    assert raw.headers["x-tokenomy-location"] == "local" and resp.choices[0].message.content
    assert (local.data_class, local.location, local.price_source) == (
        "confidential",
        "local",
        "factory:cpu",
    )
    assert resp.usage is not None and local.usage.output_tokens == resp.usage.completion_tokens
    assert local.cost_nanos == _factory_nanos(resp.usage.prompt_tokens, 4)
