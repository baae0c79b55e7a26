"""``tokenomy serve`` under a connection flood, and with a password in its database URL.

The flood: a gateway process limited to 512 open files, 1,500 idle sockets held open
against it; without a connection cap it runs out of file descriptors and stops
accepting, with the cap it sheds the idle sockets and keeps serving normal clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from tests.cli.test_serve_process import (
    UPSTREAM_KEY,
    USAGE,
    child_env,
    gateway_config,
    healthy,
    new_key,
    port_url,
)
from tests.fakes import FakeOpenAI, unused_port

FD_LIMIT = 512
IDLE = 1500
CLIENTS = 20


def serve_cmd(args: list[str], fd_limit: int | None = None) -> list[str]:
    """``python -m tokenomy.cli serve ARGS``, optionally with a lowered open-file limit."""
    if fd_limit is None:
        return [sys.executable, "-m", "tokenomy.cli", "serve", *args]
    boot = (
        "import resource, runpy, sys; "
        f"resource.setrlimit(resource.RLIMIT_NOFILE, ({fd_limit}, {fd_limit})); "
        "sys.argv = ['tokenomy', *sys.argv[1:]]; "
        "runpy.run_module('tokenomy.cli', run_name='__main__', alter_sys=True)"
    )
    return [sys.executable, "-c", boot, "serve", *args]


async def wait_healthy(proc: subprocess.Popen[bytes], url: str, logs: Path) -> None:
    deadline = time.monotonic() + 30
    while not await healthy(url):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"gateway did not start:\n{logs.read_text(errors='replace')}")
        await asyncio.sleep(0.05)


def open_idle(port: int, n: int) -> list[socket.socket]:
    """``n`` connections that never send a byte (non-blocking connects, not awaited)."""
    socks: list[socket.socket] = []
    for _ in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        socks.append(s)
    return socks


def wait_connected(socks: list[socket.socket], n: int, timeout: float) -> int:
    """Wait (bounded) until ``n`` of the sockets have connected; how many did."""
    poller = select.poll()
    for s in socks:
        poller.register(s, select.POLLOUT)
    done: set[int] = set()
    deadline = time.monotonic() + timeout
    while len(done) < n and time.monotonic() < deadline:
        for fd, _ in poller.poll(100):
            done.add(fd)
            poller.unregister(fd)
    return len(done)


async def test_idle_socket_flood_does_not_starve_normal_clients(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    secret = new_key(db)
    port = unused_port()
    logs = tmp_path / "gateway.log"
    async with FakeOpenAI(usage=USAGE, api_key=UPSTREAM_KEY) as up:
        config = gateway_config(
            tmp_path / "gw.toml",
            up.base_url,
            port=port,
            journal=tmp_path / "journal",
            extra_gateway="header_timeout_s = 120",  # the idle sockets stay: the cap acts
        )
        with logs.open("wb") as fh:
            proc = subprocess.Popen(
                serve_cmd(["--config", str(config), "--db", db], FD_LIMIT),
                cwd=tmp_path,
                stdout=fh,
                stderr=subprocess.STDOUT,
                env=child_env(),
            )
        idle: list[socket.socket] = []
        try:
            url = port_url("127.0.0.1", port)
            await wait_healthy(proc, url, logs)
            idle = open_idle(port, IDLE)
            # More connected than the gateway's descriptors could ever hold.
            await asyncio.to_thread(wait_connected, idle, FD_LIMIT + 200, 10.0)
            ok = 0
            connector = aiohttp.TCPConnector(force_close=True)  # a new socket per call
            async with aiohttp.ClientSession(connector=connector) as http:
                for i in range(CLIENTS):
                    async with http.post(
                        url + "/v1/chat/completions",
                        json={
                            "model": "gpt-4o-mini",
                            "messages": [{"role": "user", "content": f"question {i}"}],
                        },
                        headers={"Authorization": f"Bearer {secret}"},
                        timeout=aiohttp.ClientTimeout(total=15),
                    ) as resp:
                        ok += resp.status == 200
            assert ok == CLIENTS, logs.read_text(errors="replace")
        finally:
            for s in idle:
                s.close()
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
            try:
                code = await asyncio.to_thread(proc.wait, 60)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise
    assert code == 0, logs.read_text(errors="replace")
    assert "Too many open files" not in logs.read_text(errors="replace")


@pytest.mark.parametrize("password", ["S3cretPassw0rd", "S3cret Passw0rd"])
async def test_database_password_is_never_printed(tmp_path: Path, password: str) -> None:
    """Masked in the start line and in every error (psycopg echoes bad URL parts)."""
    port = unused_port()
    dead = unused_port()  # nothing listens there
    config = gateway_config(
        tmp_path / "gw.toml", "http://127.0.0.1:9/v1", port=port, journal=tmp_path / "j"
    )
    db = f"postgresql://tok:{password}@127.0.0.1:{dead}/ledger?connect_timeout=2"
    out = tmp_path / "out.log"
    with out.open("wb") as fh:
        proc = subprocess.Popen(
            serve_cmd(["--config", str(config), "--db", db]),
            cwd=tmp_path,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=child_env(),
        )
    try:
        # Either it refuses to start, or (if it starts while the database is down) it
        # prints its start line and logs the outage: give it a few seconds of output.
        deadline = time.monotonic() + 8
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                await asyncio.to_thread(proc.wait, 40)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = out.read_text(errors="replace")
    assert text  # it said something
    for piece in (password, "Passw0rd", "S3cret"):
        assert piece not in text, text
    if "tokenomy gateway on" in text:
        assert "tok:***@" in text


def test_fd_limit_is_raised_to_the_hard_limit() -> None:
    code = (
        "import resource; from tokenomy.gateway.connections import raise_fd_limit; "
        "soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE); "
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard)); "
        "print(raise_fd_limit() == hard == resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    env = {k: v for k, v in os.environ.items() if k != "TOKENOMY_DB"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert res.stdout.strip() == "True", res.stderr


@pytest.mark.parametrize("command", [["keys", "list"], ["usage"], ["unknown-url"]])
def test_cli_errors_never_show_the_database_password(command: list[str]) -> None:
    from typer.testing import CliRunner

    from tokenomy.cli import app

    password = "S3cret Passw0rd"
    scheme = "postgresql" if command != ["unknown-url"] else "mysql"
    db = f"{scheme}://tok:{password}@127.0.0.1:{unused_port()}/ledger?connect_timeout=2"
    args = command if command != ["unknown-url"] else ["usage"]
    res = CliRunner().invoke(app, [*args, "--db", db])
    assert res.exit_code != 0
    text = res.output + (str(res.exception) if res.exception else "")
    assert "Passw0rd" not in text and "S3cret" not in text, text
