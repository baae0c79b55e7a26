"""Real client libraries against a real gateway: one gateway per module, in its own thread.

The gateway and the fakes run on an event loop in a background thread, so that sync clients
(``llm``, ``litellm.completion``, LangChain's ``invoke``) and async ones alike can call it
from the test. Every test pins the fakes' usage to numbers of its own (:class:`Ledger`)
and then checks that every call the fakes served has exactly one ledger event carrying
exactly those numbers, not an estimate.

Nothing here may leave the machine: :func:`loopback_only` refuses any connection or DNS
lookup that is not loopback, so a library that phones home (telemetry, model price lists,
tokenizer downloads) fails the test instead of hanging on the sandbox's network.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.fakes import FakeUsage
from tests.gateway.harness import Harness, running_gateway
from tokenomy.events import Usage, UsageEvent

# Libraries read these at import time (litellm: its model price map; pydantic-ai, llm...).
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")
os.environ.setdefault("OPENAI_AGENTS_DISABLE_TRACING", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
os.environ.setdefault("LANGCHAIN_TRACING_V2", "false")
os.environ.setdefault("LANGSMITH_TRACING", "false")

_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0", None}


def _is_loopback(host: Any) -> bool:
    return host in _LOOPBACK or (isinstance(host, str) and host.startswith("127."))


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse DNS and connections to anything but loopback (no network, no downloads), and
    fail the test on any attempt, even one the library swallowed."""
    real_getaddrinfo = socket.getaddrinfo
    real_connect = socket.socket.connect
    attempts: list[str] = []

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, bytes):
            host = host.decode()
        if not _is_loopback(host):
            attempts.append(f"lookup of {host!r}")
            raise OSError(f"tests/clients: no network (lookup of {host!r})")
        return real_getaddrinfo(host, *args, **kwargs)

    def connect(self: socket.socket, address: Any) -> Any:
        if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            attempts.append(f"connect to {address!r}")
            raise OSError(f"tests/clients: no network (connect to {address!r})")
        return real_connect(self, address)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setattr(socket.socket, "connect", connect)
    yield
    assert not attempts, f"a client library tried to reach the network: {attempts}"


class ThreadedGateway:
    """``running_gateway`` on an event loop of its own thread."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self.harness: Harness | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="clients-gateway", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with running_gateway(self.db_url) as h:
            self.harness = h
            self._ready.set()
            await self._stop.wait()

    def start(self) -> Harness:
        self._thread.start()
        self._ready.wait(60)
        if self._error is not None:
            raise RuntimeError("gateway did not start") from self._error
        assert self.harness is not None
        return self.harness

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Harness]:
    """One gateway (and its fakes) for the whole module."""
    mp = pytest.MonkeyPatch()
    mp.setenv("FAKE_OPENAI_KEY", "sk-upstream-openai")
    mp.setenv("FAKE_ANTHROPIC_KEY", "sk-ant-upstream")
    db = tmp_path_factory.mktemp("clients") / "ledger.db"
    gw = ThreadedGateway(f"sqlite:///{db}")
    try:
        yield gw.start()
    finally:
        gw.stop()
        mp.undo()


_SERVED_PATHS = ("/v1/chat/completions", "/v1/responses", "/v1/messages", "/v1/embeddings")
_numbers = itertools.count(1)


@dataclass
class Ledger:
    """The fakes' usage pinned for one test, and the check of the ledger against it."""

    h: Harness
    usage: Usage
    seen: set[str] = field(default_factory=set)
    served_before: int = 0

    def served(self) -> int:
        """Model calls the fakes have answered so far (both upstreams)."""
        reqs = [*self.h.openai.requests, *self.h.anthropic.requests]
        return sum(1 for r in reqs if r.method == "POST" and r.path in _SERVED_PATHS)

    def new_events(self) -> list[UsageEvent]:
        return [e for e in self.h.events() if e.id not in self.seen]

    def tool_call_next(self, n: int = 1) -> None:
        """The next ``n`` upstream calls answer with a call of the request's first tool."""
        for _ in range(n):
            self.h.openai.next_scenario.append("tool-call")
            self.h.anthropic.next_scenario.append("tool-call")

    def check(self, calls: int, *, api_format: str | None = None) -> list[UsageEvent]:
        """Exactly ``calls`` model calls served since the test began, each on the ledger
        once with the fakes' exact usage (not an estimate)."""
        served = self.served() - self.served_before
        assert served == calls, f"fakes served {served} calls, expected {calls}"
        # A stream's event is recorded when the gateway's handler ends, which can be just
        # after the client has read the last byte: wait for it (bounded), then compare.
        deadline = time.monotonic() + 10
        events = self.new_events()
        while len(events) < calls and time.monotonic() < deadline:
            time.sleep(0.02)
            events = self.new_events()
        assert len(events) == calls, [(e.endpoint, e.status, e.error_message) for e in events]
        for ev in events:
            assert ev.status == 200, (ev.endpoint, ev.status, ev.error_kind, ev.error_message)
            assert not ev.estimated, f"{ev.endpoint} {ev.model}: usage estimated, not exact"
            assert ev.usage == self.usage, (ev.endpoint, ev.model, ev.stream, ev.usage)
            if api_format is not None:
                assert ev.api_format == api_format
        return events


@pytest.fixture
def ledger(gateway: Harness) -> Iterator[Ledger]:
    """Pin distinct usage numbers for this test and remember what the ledger held before."""
    n = next(_numbers)
    usage = Usage(input_tokens=1000 + 10 * n, cached_tokens=n, output_tokens=200 + n)
    fake = FakeUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_tokens=usage.cached_tokens,
    )
    gateway.openai.usage = fake
    gateway.anthropic.usage = fake
    gateway.openai.next_scenario.clear()
    gateway.anthropic.next_scenario.clear()
    led = Ledger(gateway, usage, {e.id for e in gateway.events()})
    led.served_before = led.served()
    yield led
    gateway.openai.next_scenario.clear()
    gateway.anthropic.next_scenario.clear()


def weather(city: str) -> str:
    """Get the current weather in a city."""
    return f"It is sunny in {city}."
