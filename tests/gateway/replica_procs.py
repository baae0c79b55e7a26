"""Real gateway processes (``tokenomy serve``), each with its own database URL and env."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from tests.gateway.test_budgets_e2e import BODY, budget_config
from tests.ports import unused_port


@dataclass
class Replica:
    url: str
    proc: subprocess.Popen[bytes]
    log: Path


def _toml(cfg: dict[str, Any], journal: Path) -> str:
    lines = ["[gateway]", f'journal_dir = "{journal}"', "ledger_flush_interval_s = 0.05", ""]
    for name, p in cfg["providers"].items():
        lines.append(f"[providers.{name}]")
        lines += [f"{k} = {orjson.dumps(v).decode()}" for k, v in p.items()]
        lines.append("")
    for m in cfg["models"]:
        lines.append("[[models]]")
        lines.append(f'name = "{m["name"]}"')
        deps = ", ".join(
            "{ " + ", ".join(f'{k} = "{v}"' for k, v in d.items()) + " }" for d in m["deployments"]
        )
        lines.append(f"deployments = [{deps}]")
        lines.append("")
    for pid, price in cfg["prices"].items():
        lines.append(f"[prices.{pid}]")
        lines += [f'{k} = "{v}"' for k, v in price.items()]
        lines.append("")
    return "\n".join(lines)


@contextmanager
def serve(
    db_urls: list[str], upstream: str, tmp: Path, env: dict[str, str], extra_toml: str = ""
) -> Iterator[list[Replica]]:
    """One gateway process per database URL; SIGTERM (and a clean exit) on leaving.

    ``extra_toml``: more config tables, appended as they are (e.g. ``[tasks]``).
    """
    cfg_path = tmp / "replica.toml"
    cfg_path.write_text(_toml(budget_config(upstream), tmp / "journal") + "\n" + extra_toml)
    full_env = {**os.environ, "FAKE_OPENAI_KEY": "sk-upstream-openai", **env}
    replicas = []
    for i, db in enumerate(db_urls):
        port = unused_port()
        log = tmp / f"replica{i}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tokenomy.cli", "serve", "--config", str(cfg_path),
                 "--db", db, "--port", str(port), "--log-level", "warning"],
                env=full_env, stdout=subprocess.DEVNULL, stderr=out,
            )  # fmt: skip
        replicas.append(Replica(f"http://127.0.0.1:{port}", proc, log))
    try:
        deadline = time.monotonic() + 30
        for r in replicas:
            while True:
                try:
                    urllib.request.urlopen(r.url + "/health", timeout=1).read()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
        yield replicas
    finally:
        for r in replicas:
            r.proc.send_signal(signal.SIGCONT)
            r.proc.send_signal(signal.SIGTERM)
        for r in replicas:
            assert r.proc.wait(40) == 0, r.log.read_text()[-3000:]


async def post(
    session: aiohttp.ClientSession, url: str, key: str, body: dict[str, Any] = BODY
) -> tuple[int, dict[str, Any]]:
    async with session.post(
        f"{url}/v1/chat/completions",
        data=orjson.dumps(body),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    ) as resp:
        return resp.status, orjson.loads(await resp.read())
