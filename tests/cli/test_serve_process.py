"""``tokenomy serve`` as a real process: start-up, flags, SIGKILL durability, SIGTERM drain.

Every test starts ``python -m tokenomy.cli serve`` in a subprocess on a SQLite ledger in
``tmp_path``, in front of a ``FakeOpenAI`` running in the test's event loop, and talks to it
with the official ``openai`` SDK. Waits are bounded polls, never timing assertions.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import openai
import orjson
import pytest

from tests.fakes import FakeOpenAI, FakeUsage, unused_port
from tokenomy.events import UsageEvent
from tokenomy.ledger import open_store
from tokenomy.ledger.schema import EVENT_COLUMNS

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "tokenomy.toml"
UPSTREAM_KEY = "sk-fake-upstream"
K = 20  # requests per test

# What the fake upstream reports for every request, and its price under [prices.flat]:
# 100 uncached x $1 + 20 cached x $0.50 + 30 output x $2, per million tokens = $0.00017.
USAGE = FakeUsage(input_tokens=120, cached_tokens=20, output_tokens=30, reasoning_tokens=5)
COST_NANOS = 170_000


def gateway_config(
    path: Path,
    upstream: str,
    *,
    port: int,
    journal: Path,
    host: str = "127.0.0.1",
    extra_gateway: str = "",
) -> Path:
    """A config whose ledger writer never flushes on its own during a test (30 s, 100k)."""
    path.write_text(
        f"""
[gateway]
host = "{host}"
port = {port}
journal_dir = "{journal}"
ledger_flush_interval_s = 30
ledger_batch_size = 100000
{extra_gateway}

[providers.fake]
kind = "openai"
base_url = "{upstream}"
api_key_env = "FAKE_UPSTREAM_KEY"

[[models]]
name = "gpt-4o-mini"
deployments = [{{ provider = "fake", model = "gpt-4o-mini", price = "flat" }}]

[prices.flat]
input = "1.00"
output = "2.00"
cache_read = "0.50"
""",
        encoding="utf-8",
    )
    return path


@dataclass
class Served:
    """One ``tokenomy serve`` process."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path
    out: Path
    startup_s: float

    def logs(self) -> str:
        return self.out.read_text(errors="replace") + self.log.read_text(errors="replace")

    async def wait(self, timeout: float = 60.0) -> int:
        return await asyncio.to_thread(self.proc.wait, timeout)

    async def stop(self) -> int:
        """SIGTERM, then the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return await self.wait()


def child_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "TOKENOMY_DB"}
    env["FAKE_UPSTREAM_KEY"] = UPSTREAM_KEY
    env.update(extra)
    return env


async def healthy(url: str) -> bool:
    try:
        async with aiohttp.ClientSession() as http, http.get(url + "/health") as resp:
            body = await resp.read()
            return resp.status == 200 and orjson.loads(body)["status"] == "ok"
    except (aiohttp.ClientError, orjson.JSONDecodeError, KeyError, TypeError):
        return False  # nothing listening (or something that is not a tokenomy gateway)


async def start(
    args: list[str],
    cwd: Path,
    health_url: str,
    *,
    env: dict[str, str] | None = None,
    name: str = "gateway",
) -> Served:
    """Start ``python -m tokenomy.cli serve ARGS`` and wait until ``/health`` answers."""
    log, out = cwd / f"{name}.stderr", cwd / f"{name}.stdout"
    started = time.perf_counter()
    with log.open("wb") as err_fh, out.open("wb") as out_fh:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tokenomy.cli", "serve", *args],
            cwd=cwd,
            stdout=out_fh,
            stderr=err_fh,
            env=env or child_env(),
        )
    served = Served(proc, health_url, log, out, 0.0)
    deadline = time.monotonic() + 30
    while not await healthy(health_url):
        if proc.poll() is not None:
            pytest.fail(f"tokenomy serve exited with {proc.returncode}:\n{served.logs()}")
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            pytest.fail(f"tokenomy serve did not answer /health within 30 s:\n{served.logs()}")
        await asyncio.sleep(0.02)
    served.startup_s = time.perf_counter() - started
    return served


@asynccontextmanager
async def serving(
    args: list[str],
    cwd: Path,
    health_url: str,
    *,
    env: dict[str, str] | None = None,
    name: str = "gateway",
) -> AsyncIterator[Served]:
    served = await start(args, cwd, health_url, env=env, name=name)
    try:
        yield served
    finally:
        if served.proc.poll() is None:
            served.proc.kill()
            served.proc.wait()


def new_key(db_url: str) -> str:
    store = open_store(db_url)
    try:
        _, secret = store.create_key(org="acme", team="research", user="alice", name="proc")
    finally:
        store.close()
    return secret


def ledger_events(db_url: str) -> list[UsageEvent]:
    store = open_store(db_url)
    try:
        return store.events()
    finally:
        store.close()


async def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what} after {timeout} s")
        await asyncio.sleep(0.05)


def journal_ids(journal: Path) -> list[str]:
    """Ids of the final events in the crash journal's segment files (one JSON row per line;
    a call's start record, an object, is left out)."""
    idx = EVENT_COLUMNS.index("id")
    ids: list[str] = []
    for seg in sorted(journal.glob("*.jsonl")):
        lines = [orjson.loads(line) for line in seg.read_bytes().splitlines() if line]
        ids += [value[idx] for value in lines if isinstance(value, list)]
    return ids


async def chat(client: openai.AsyncOpenAI, i: int) -> str:
    """One chat completion; returns the ledger event id the gateway answered with."""
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": f"request number {i}"}]
    )
    completion = raw.parse()
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (120, 30)
    assert raw.headers["x-tokenomy-cost-usd"] == "0.00017"
    return raw.headers["x-tokenomy-request-id"]


async def send(url: str, secret: str, n: int) -> list[str]:
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key=secret, max_retries=0) as client:
        ids = await asyncio.gather(*(chat(client, i) for i in range(n)))
    assert len(set(ids)) == n
    return list(ids)


def assert_metered(events: list[UsageEvent], ids: list[str]) -> None:
    """Exactly the events of these responses, each with the upstream's usage and price."""
    assert sorted(e.id for e in events) == sorted(ids)
    for e in events:
        assert (e.status, e.endpoint, e.model, e.provider) == (
            200,
            "chat.completions",
            "gpt-4o-mini",
            "fake",
        )
        assert (e.org, e.team, e.user) == ("acme", "research", "alice")
        u = e.usage
        assert (u.input_tokens, u.cached_tokens, u.output_tokens, u.reasoning_tokens) == (
            120,
            20,
            30,
            5,
        )
        assert e.estimated is False
        assert (e.cost_nanos, e.price_source) == (COST_NANOS, "custom:flat")


def port_url(host: str, port: int) -> str:
    return f"http://{host}:{port}"


# ------------------------------------------------------------------------ SIGKILL / SIGTERM


async def test_sigkill_right_after_responses_loses_nothing(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    journal = tmp_path / "journal"
    secret = new_key(db)
    async with FakeOpenAI(usage=USAGE, api_key=UPSTREAM_KEY) as up:
        port = unused_port()
        config = gateway_config(tmp_path / "t.toml", up.base_url, port=port, journal=journal)
        args = ["--config", str(config), "--db", db]
        async with serving(args, tmp_path, port_url("127.0.0.1", port)) as gw:
            ids = await send(gw.url, secret, K)
            gw.proc.send_signal(signal.SIGKILL)
            assert await gw.wait() == -signal.SIGKILL
        # Every answered request was journaled before its response went out ...
        assert sorted(journal_ids(journal)) == sorted(ids)
        # ... and, with a 30 s flush interval, none of them had reached the database.
        assert ledger_events(db) == [], "the writer flushed before its flush interval"

        port2 = unused_port()
        args2 = ["--config", str(config), "--db", db, "--port", str(port2)]
        async with serving(args2, tmp_path, port_url("127.0.0.1", port2), name="restart") as gw2:
            await wait_for(lambda: len(ledger_events(db)) >= K, f"{K} replayed events")
            assert_metered(ledger_events(db), ids)
            assert await gw2.stop() == 0
        assert_metered(ledger_events(db), ids)  # replayed once, not twice
        assert list(journal.iterdir()) == []


async def test_journal_alone_restores_events_after_sigkill(tmp_path: Path) -> None:
    """Replay proven independently of when the writer commits: the restarted gateway gets a
    fresh database, so every event in it can only have come from the crash journal."""
    first_db = f"sqlite:///{tmp_path / 'first.db'}"
    fresh_db = f"sqlite:///{tmp_path / 'fresh.db'}"
    journal = tmp_path / "journal"
    secret = new_key(first_db)
    async with FakeOpenAI(usage=USAGE, api_key=UPSTREAM_KEY) as up:
        port = unused_port()
        config = gateway_config(tmp_path / "t.toml", up.base_url, port=port, journal=journal)
        async with serving(
            ["--config", str(config), "--db", first_db], tmp_path, port_url("127.0.0.1", port)
        ) as gw:
            ids = await send(gw.url, secret, K)
            gw.proc.kill()
            assert await gw.wait() == -signal.SIGKILL
        assert ledger_events(fresh_db) == []

        port2 = unused_port()
        args = ["--config", str(config), "--db", fresh_db, "--port", str(port2)]
        async with serving(args, tmp_path, port_url("127.0.0.1", port2), name="restart") as gw2:
            await wait_for(lambda: len(ledger_events(fresh_db)) >= K, f"{K} replayed events")
            assert_metered(ledger_events(fresh_db), ids)
            # The orphaned segments are gone; only the live process's own segment remains.
            assert not set(journal_ids(journal)) & set(ids)
            assert await gw2.stop() == 0
        assert f"replayed {K} usage events" in gw2.logs()
        assert list(journal.iterdir()) == []


async def test_sigterm_drains_the_ledger_and_finishes_in_flight_requests(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    journal = tmp_path / "journal"
    secret = new_key(db)
    async with FakeOpenAI(usage=USAGE, api_key=UPSTREAM_KEY) as up:
        port = unused_port()
        config = gateway_config(tmp_path / "t.toml", up.base_url, port=port, journal=journal)
        async with serving(
            ["--config", str(config), "--db", db], tmp_path, port_url("127.0.0.1", port)
        ) as gw:
            ids = await send(gw.url, secret, K)
            async with openai.AsyncOpenAI(
                base_url=gw.url + "/v1", api_key=secret, max_retries=0
            ) as client:
                up.next_scenario.append("slow-1s")  # the upstream holds the next request
                in_flight = asyncio.create_task(chat(client, K))
                await wait_for(lambda: len(up.requests) == K + 1, "the upstream to get it")
                gw.proc.send_signal(signal.SIGTERM)
                last_id = await in_flight  # answered in full despite the SIGTERM
            assert await gw.wait() == 0, gw.logs()
        assert_metered(ledger_events(db), [*ids, last_id])
        assert list(journal.iterdir()) == []


# ---------------------------------------------------------------------------- start-up, flags


async def test_sample_config_starts_and_serves_its_models(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    secret = new_key(db)
    port = unused_port()
    args = ["--config", str(SAMPLE), "--db", db, "--port", str(port)]
    async with serving(args, tmp_path, port_url("127.0.0.1", port)) as gw:
        print(f"tokenomy serve (sample config) answered /health after {gw.startup_s:.3f} s")
        async with openai.AsyncOpenAI(
            base_url=gw.url + "/v1", api_key=secret, max_retries=0
        ) as client:
            models = [m.id async for m in client.models.list()]
        # The default model is the built-in simulated factory: a real answer, no upstream key
        # (the SDK's default retries ride out the sample's 1% injected failures).
        async with openai.AsyncOpenAI(base_url=gw.url + "/v1", api_key=secret) as client:
            hello = await client.chat.completions.create(
                model="simulated", messages=[{"role": "user", "content": "hi"}]
            )
        assert hello.usage is not None and hello.usage.completion_tokens == 150
        assert models == [
            "simulated",
            "simulated-fast",
            "gpt-4o",
            "gpt-4o-mini",
            "claude-sonnet-4",
            "deepseek-chat",
            "local-llama",
            "coder",
        ]
        assert await gw.stop() == 0
    assert f"tokenomy gateway on http://127.0.0.1:{port}" in gw.out.read_text()
    # The default journal lives beside the SQLite file, and a clean stop leaves it empty.
    assert list((tmp_path / "ledger.db.journal").iterdir()) == []


async def test_host_and_port_flags_override_the_config(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    config_port = unused_port("127.0.0.2")
    config = gateway_config(
        tmp_path / "t.toml",
        "http://127.0.0.1:9/v1",
        host="127.0.0.2",
        port=config_port,
        journal=tmp_path / "journal",
    )

    # Without flags the config's host and port are used ...
    async with serving(
        ["--config", str(config), "--db", db],
        tmp_path,
        port_url("127.0.0.2", config_port),
        name="config",
    ) as gw:
        assert not await healthy(port_url("127.0.0.1", config_port))
        assert await gw.stop() == 0

    # ... and --host/--port replace both.
    flag_port = unused_port()
    args = ["--config", str(config), "--db", db, "--host", "127.0.0.1", "--port", str(flag_port)]
    async with serving(args, tmp_path, port_url("127.0.0.1", flag_port), name="flags") as gw:
        assert not await healthy(port_url("127.0.0.2", flag_port))
        assert not await healthy(port_url("127.0.0.2", config_port))
        assert await gw.stop() == 0
    assert f"tokenomy gateway on http://127.0.0.1:{flag_port}" in gw.out.read_text()


async def test_ledger_is_db_flag_then_env_then_config(tmp_path: Path) -> None:
    urls = {name: f"sqlite:///{tmp_path / (name + '.db')}" for name in ("flag", "env", "config")}
    extra = f'db = "{urls["config"]}"'
    made: list[str] = []
    for name, args, env in [
        ("flag", ["--db", urls["flag"]], child_env(TOKENOMY_DB=urls["env"])),
        ("env", [], child_env(TOKENOMY_DB=urls["env"])),
        ("config", [], child_env()),
    ]:
        port = unused_port()
        config = gateway_config(
            tmp_path / f"{name}.toml",
            "http://127.0.0.1:9/v1",
            port=port,
            journal=tmp_path / f"journal-{name}",
            extra_gateway=extra,
        )
        async with serving(
            ["--config", str(config), *args],
            tmp_path,
            port_url("127.0.0.1", port),
            env=env,
            name=name,
        ) as gw:
            assert await gw.stop() == 0
        assert f"(ledger: {urls[name]})" in gw.out.read_text(), name
        made.append(name)
        assert sorted(p.name for p in tmp_path.glob("*.db")) == sorted(f"{n}.db" for n in made)
