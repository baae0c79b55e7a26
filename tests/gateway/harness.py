"""A real gateway (aiohttp app on a loopback port) in front of the fake upstreams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes import FakeAnthropic, FakeOpenAI
from tests.ports import unused_port
from tokenomy.config import Settings, parse_config
from tokenomy.events import UsageEvent
from tokenomy.gateway.app import GATEWAY_KEY, STORE_KEY, build_app
from tokenomy.gateway.connections import GatewayRunner
from tokenomy.gateway.proxy import Gateway
from tokenomy.ledger.store import Store


def config_for(openai_url: str, anthropic_url: str, **gateway: Any) -> dict[str, Any]:
    """Models named after what they exercise; custom prices where the catalog can't know."""
    return {
        "gateway": {"ledger_flush_interval_s": 0.02, **gateway},
        "providers": {
            "oai": {
                "kind": "openai",
                "base_url": openai_url,
                "api_key_env": "FAKE_OPENAI_KEY",
                "catalog_provider": "openai",
            },
            "ant": {
                "kind": "anthropic",
                "base_url": anthropic_url,
                "api_key_env": "FAKE_ANTHROPIC_KEY",
            },
            "box": {
                "kind": "openai",
                "base_url": openai_url,
                "location": "local",
                "api_key_env": "FAKE_OPENAI_KEY",
            },
        },
        "models": [
            {"name": "gpt-4o-mini", "deployments": [{"provider": "oai", "model": "gpt-4o-mini"}]},
            {"name": "gpt-4o", "deployments": [{"provider": "oai", "model": "gpt-4o"}]},
            {
                "name": "text-embedding-3-small",
                "deployments": [{"provider": "oai", "model": "text-embedding-3-small"}],
            },
            {
                "name": "claude-sonnet",
                "deployments": [{"provider": "ant", "model": "claude-sonnet-4-20250514"}],
            },
            {"name": "claude-via-openai", "deployments": [{"provider": "oai", "model": "gpt-4o"}]},
            {
                "name": "gpt-via-anthropic",
                "deployments": [{"provider": "ant", "model": "claude-sonnet-4-20250514"}],
            },
            {
                "name": "local-llama",
                "deployments": [{"provider": "box", "model": "fake-no-usage", "price": "box"}],
            },
            {"name": "mystery", "deployments": [{"provider": "oai", "model": "mystery-model-9"}]},
        ],
        "prices": {"box": {"input": "0.10", "output": "0.40"}},
    }


@dataclass
class Harness:
    url: str
    key: str
    settings: Settings
    store: Store
    gateway: Gateway
    openai: FakeOpenAI
    anthropic: FakeAnthropic

    @property
    def openai_base(self) -> str:
        return self.url + "/v1"

    def flush(self) -> None:
        assert self.gateway.writer.flush(10)

    def events(self) -> list[UsageEvent]:
        self.flush()
        return self.store.events()

    def event(self, request_id: str) -> UsageEvent:
        self.flush()
        ev = self.store.get_event(request_id)
        assert ev is not None, f"no ledger event {request_id}"
        return ev


@asynccontextmanager
async def running_gateway(
    db_url: str, *, config: dict[str, Any] | None = None, **gateway: Any
) -> AsyncIterator[Harness]:
    async with FakeOpenAI() as oai, FakeAnthropic() as ant:
        settings = parse_config(
            config or config_for(oai.base_url, ant.base_url, **gateway), "test.toml"
        )
        app = build_app(settings, db_url)
        runner = GatewayRunner(app, access_log=None)  # the connection limits of `serve`
        await runner.setup()
        port = unused_port()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        store = app[STORE_KEY]
        _, key = store.create_key(org="acme", team="research", user="alice", name="test")
        try:
            yield Harness(
                f"http://127.0.0.1:{port}", key, settings, store, app[GATEWAY_KEY], oai, ant
            )
        finally:
            await runner.cleanup()
