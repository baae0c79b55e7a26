"""A real gateway (aiohttp app on a loopback port) in front of the fake upstreams."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes import FakeAnthropic, FakeOpenAI
from tests.fakes._base import FakeServer
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
    db_url: str,
    *,
    config: dict[str, Any] | None = None,
    access_log: str | None = None,
    sections: dict[str, Any] | None = None,
    **gateway: Any,
) -> AsyncIterator[Harness]:
    """``sections``: more top-level config tables (e.g. ``{"metrics": {...}}``)."""
    async with FakeOpenAI() as oai, FakeAnthropic() as ant:
        settings = parse_config(
            {**(config or config_for(oai.base_url, ant.base_url, **gateway)), **(sections or {})},
            "test.toml",
        )
        app = build_app(settings, db_url, access_log=access_log)
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


# -- a fleet: several fake upstreams, cloud and local (routing tests) --------------------------
FLEET_PRICES = {
    "box": {"input": "0.10", "output": "0.40"},
    "cheap": {"input": "0.25", "output": "1.00"},
    "dear": {"input": "2.50", "output": "10.00"},
}


def fleet_providers(fakes: dict[str, FakeServer]) -> dict[str, dict[str, Any]]:
    """One provider per fake, named like it: ``box*`` are local, the others cloud."""
    out: dict[str, dict[str, Any]] = {}
    for name, fake in fakes.items():
        ant = isinstance(fake, FakeAnthropic)
        out[name] = {
            "kind": "anthropic" if ant else "openai",
            "base_url": fake.base_url,
            "api_key_env": "FAKE_ANTHROPIC_KEY" if ant else "FAKE_OPENAI_KEY",
            "location": "local" if name.startswith("box") else "cloud",
        }
    return out


@dataclass
class Fleet:
    """A gateway in front of several fakes; ``fakes[name]`` is provider ``name``'s upstream."""

    url: str
    key: str
    settings: Settings
    store: Store
    gateway: Gateway
    fakes: dict[str, FakeServer]

    @property
    def openai_base(self) -> str:
        return self.url + "/v1"

    def events(self) -> list[UsageEvent]:
        assert self.gateway.writer.flush(10)
        return self.store.events()

    def event(self, request_id: str) -> UsageEvent:
        assert self.gateway.writer.flush(10)
        ev = self.store.get_event(request_id)
        assert ev is not None, f"no ledger event {request_id}"
        return ev

    def served(self) -> dict[str, int]:
        """Requests each fake received (the upstream's side of the story)."""
        return {name: len(f.requests) for name, f in self.fakes.items()}


@asynccontextmanager
async def running_fleet(
    db_url: str,
    models: list[dict[str, Any]],
    *,
    fakes: tuple[str, ...] = ("cloud", "cloud2", "box", "ant"),
    providers: dict[str, dict[str, Any]] | None = None,
    sections: dict[str, Any] | None = None,
    **gateway: Any,
) -> AsyncIterator[Fleet]:
    """Fakes named ``ant*`` speak Anthropic, the others OpenAI; ``providers`` adds or
    overrides provider fields (``{"cloud": {"region": "US"}}``)."""
    async with AsyncExitStack() as stack:
        servers: dict[str, FakeServer] = {}
        for name in fakes:
            fake: FakeServer = FakeAnthropic() if name.startswith("ant") else FakeOpenAI()
            servers[name] = await stack.enter_async_context(fake)
        provs = fleet_providers(servers)
        for name, extra in (providers or {}).items():
            provs[name] = {**provs.get(name, {}), **extra}
        config = {
            "gateway": {"ledger_flush_interval_s": 0.02, **gateway},
            "providers": provs,
            "models": models,
            "prices": FLEET_PRICES,
            **(sections or {}),
        }
        settings = parse_config(config, "test.toml")
        app = build_app(settings, db_url)
        runner = GatewayRunner(app, access_log=None)
        await runner.setup()
        port = unused_port()
        await web.TCPSite(runner, "127.0.0.1", port).start()
        store = app[STORE_KEY]
        _, key = store.create_key(org="acme", team="research", user="alice", name="test")
        try:
            yield Fleet(f"http://127.0.0.1:{port}", key, settings, store, app[GATEWAY_KEY], servers)
        finally:
            await runner.cleanup()
