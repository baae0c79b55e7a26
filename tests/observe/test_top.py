"""``tokenomy top`` in a real terminal (tmux): the live view of a running gateway."""

from __future__ import annotations

import asyncio
import os
import shlex
import shutil
import subprocess
import sys
import uuid

from tests.gateway.harness import Harness
from tests.observe.conftest import chat
from tokenomy.admin.keys import create_admin_key

TMUX = shutil.which("tmux")


def _tmux(socket: str, *args: str) -> str:
    assert TMUX is not None, "tmux is needed (scripts/test installs it)"
    return subprocess.run(
        [TMUX, "-L", socket, *args], capture_output=True, text=True, check=True
    ).stdout


async def _screen_showing(socket: str, *texts: str, timeout_s: float = 30.0) -> str:
    screen = ""
    for _ in range(int(timeout_s / 0.2)):
        screen = _tmux(socket, "capture-pane", "-p", "-t", "top")
        if all(t in screen for t in texts):
            return screen
        await asyncio.sleep(0.2)  # the gateway runs on this loop: keep it serving
    raise AssertionError(f"the screen never showed {texts}:\n{screen}")


async def test_top_shows_live_traffic_in_a_terminal(gw: Harness) -> None:
    _, admin_key = create_admin_key(gw.store)
    for _ in range(3):
        await chat(gw, headers={"X-Tokenomy-Agent": "coder"})
    await chat(gw, "claude-sonnet")
    assert TMUX is not None, "tmux is needed (scripts/test installs it)"
    socket = f"tokenomy-test-{uuid.uuid4().hex[:8]}"  # a tmux server of this test's own
    command = shlex.join(
        [sys.executable, "-m", "tokenomy.cli", "top", "--gateway", gw.url, "--window", "59"]
    )
    env = {**os.environ, "TOKENOMY_ADMIN_KEY": admin_key, "TERM": "xterm-256color"}
    subprocess.run(
        [TMUX, "-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", "top",
         "-x", "150", "-y", "60", command],
        check=True, env=env,
    )  # fmt: skip
    try:
        screen = await _screen_showing(
            socket, "requests/s", "Teams", "research", "coder", "gpt-4o-mini", "claude-sonnet"
        )
        assert "last 59 s" in screen
        assert admin_key not in screen
        # It refreshes: new traffic shows up without restarting it.
        await chat(gw, "gpt-4o")
        await _screen_showing(socket, "gpt-4o ")
    finally:
        subprocess.run([TMUX, "-L", socket, "kill-server"], check=False)


async def test_top_says_when_the_key_is_wrong(gw: Harness) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "tokenomy.cli", "top", "--gateway", gw.url,
        "--admin-key", "tka-wrong", "--once",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate()
    assert proc.returncode == 1
    assert b"HTTP 401" in err
