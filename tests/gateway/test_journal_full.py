"""A full journal disk through the gateway: 503 before the upstream, 0 served-but-unrecorded.

First with injected ENOSPC (deterministic: a call in flight when the disk fills up), then,
where the test may mount one (root), on a real 1 MiB tmpfs filled to the last byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.gateway.harness import Harness, running_gateway
from tests.ledger.diskfull import DiskFull

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hello there"}]}
MESSAGES = {
    "model": "claude-sonnet",
    "max_tokens": 50,
    "messages": [{"role": "user", "content": "hello there"}],
}


async def _post(
    http: aiohttp.ClientSession, h: Harness, path: str, body: dict[str, Any], anthropic: bool
) -> tuple[int, dict[str, str], Any]:
    headers = (
        {"x-api-key": h.key, "anthropic-version": "2023-06-01"}
        if anthropic
        else {"Authorization": f"Bearer {h.key}"}
    )
    async with http.post(h.url + path, json=body, headers=headers) as resp:
        return resp.status, dict(resp.headers), orjson.loads(await resp.read())


def _served(h: Harness) -> int:
    return len(h.openai.requests) + len(h.anthropic.requests)


def _recorded_upstream_calls(h: Harness) -> int:
    """Ledger events of calls that reached the upstream (not refused by the gateway)."""
    return len([e for e in h.events() if e.error_kind != "ledger_unavailable"])


async def _until(predicate: Any, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        await asyncio.sleep(0.01)


async def test_full_journal_refuses_before_the_upstream_and_records_calls_under_way(
    sqlite_url: str, upstream_keys: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = DiskFull(monkeypatch)
    async with running_gateway(sqlite_url) as h, aiohttp.ClientSession() as http:
        status, _, _ = await _post(http, h, "/v1/chat/completions", CHAT, False)
        assert status == 200

        # A call is upstream when the disk fills up: it is answered and recorded anyway.
        h.openai.next_scenario.append("slow-0.3s")
        under_way = asyncio.create_task(_post(http, h, "/v1/chat/completions", CHAT, False))
        await _until(lambda: len(h.openai.requests) == 2, "the upstream to get the call")
        disk.full = True
        status, headers, body = await under_way
        assert status == 200, body

        # New calls are refused before the upstream, in each client's own format.
        status, headers, body = await _post(http, h, "/v1/chat/completions", CHAT, False)
        assert status == 503 and headers["Retry-After"] == "2"
        assert body["error"]["code"] == "ledger_unavailable"
        status, headers, body = await _post(http, h, "/v1/messages", MESSAGES, True)
        assert status == 503 and headers["Retry-After"] == "2"
        assert body["type"] == "error" and "journal" in body["error"]["message"]
        assert _served(h) == 2
        health = h.gateway.writer.health()
        assert health["journal_writable"] is False and health["ok"] is False
        async with http.get(h.url + "/health") as resp:
            assert resp.status == 503 and (await resp.json())["status"] == "not_ok"

        disk.full = False
        await _until(lambda: h.gateway.writer.accepting, "the journal to recover")
        status, _, _ = await _post(http, h, "/v1/messages", MESSAGES, True)
        assert status == 200
        assert _served(h) == 3 == _recorded_upstream_calls(h)
        assert h.gateway.writer.health()["ok"] is True
        async with http.get(h.url + "/health") as resp:
            assert resp.status == 200 and (await resp.json())["status"] == "ok"


def _bytes(journal: Path) -> int:
    total = 0
    for p in journal.glob("seg-*.jsonl"):
        with contextlib.suppress(FileNotFoundError):  # the writer may delete it meanwhile
            total += p.stat().st_size
    return total


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here: {done.stderr.decode().strip()}"
        if os.environ.get("CI"):  # CI runs as root and can: it must never skip this test
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def _fill(path: Path) -> None:
    """Write until the filesystem is full (ENOSPC)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        block = b"x" * 4096
        while True:
            try:
                os.write(fd, block)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
                break
        with contextlib.suppress(OSError):
            while os.write(fd, b"x"):
                pass
    finally:
        os.close(fd)


@pytest.mark.skipif(
    os.geteuid() != 0 and not os.environ.get("CI"), reason="mounting a tmpfs needs root"
)
async def test_journal_on_a_full_tmpfs_loses_no_served_call(
    sqlite_url: str, upstream_keys: None, tmp_path: Path
) -> None:
    with _tmpfs(tmp_path / "small", "1m") as fs:
        journal = fs / "journal"
        async with (
            running_gateway(sqlite_url, journal_dir=str(journal)) as h,
            aiohttp.ClientSession() as http,
        ):

            async def burst(n: int) -> list[int]:
                results = await asyncio.gather(
                    *(_post(http, h, "/v1/chat/completions", CHAT, False) for _ in range(n))
                )
                return [status for status, _, _ in results]

            assert set(await burst(20)) == {200}
            h.flush()  # then the committed segment is reclaimed: no page left to write into
            await _until(lambda: _bytes(journal) == 0, "the journal to be reclaimed")
            _fill(fs / "filler")
            full = await burst(60)
            assert full == [503] * 60
            # Free a little room: some calls fit, then the disk is full again, and so on.
            (fs / "filler").write_bytes(b"")
            _fill(fs / "filler2")
            os.truncate(fs / "filler2", max(0, (fs / "filler2").stat().st_size - 64 * 1024))
            mixed = await burst(200)
            assert set(full + mixed) <= {200, 503}
            assert _served(h) == _recorded_upstream_calls(h) == 20 + (full + mixed).count(200)
            (fs / "filler2").unlink()
            await _until(lambda: h.gateway.writer.accepting, "the journal to recover")
            assert set(await burst(20)) == {200}
            assert _served(h) == _recorded_upstream_calls(h)
