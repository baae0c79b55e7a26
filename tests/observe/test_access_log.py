"""``--access-log``: one JSON line per request, whatever its path; no content, no secrets."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import orjson

from tests.fakes import FakeOpenAI
from tests.gateway.harness import Harness, running_gateway
from tests.observe.conftest import Target, chat
from tests.ports import unused_port
from tokenomy.observe.live import LiveStats
from tokenomy.observe.metrics import Metrics


def _lines(path: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


async def test_every_request_is_logged(
    sqlite_url: str, upstream_keys: None, tmp_path: Path
) -> None:
    log = tmp_path / "access.jsonl"
    secret_prompt = "my secret prompt 4711"
    async with running_gateway(sqlite_url, access_log=str(log)) as h:
        body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": secret_prompt}]}
        async with aiohttp.ClientSession() as s:
            auth = {"Authorization": f"Bearer {h.key}", "X-Tokenomy-Team": "x"}
            async with s.post(h.url + "/v1/chat/completions", json=body, headers=auth) as r:
                assert r.status == 200
                rid = r.headers["x-tokenomy-request-id"]
            bad = {"Authorization": "Bearer sk-not-a-key-0000"}
            async with s.post(h.url + "/v1/chat/completions", json=body, headers=bad) as r:
                assert r.status == 401
            async with s.get(h.url + "/v1/models", headers=bad) as r:
                assert r.status == 401
            async with s.get(h.url + "/no/such/path?token=sekret") as r:
                assert r.status == 404
            async with s.get(h.url + "/admin/v1/keys") as r:
                assert r.status == 401
        await chat(h, stream=True)
        key = h.key
    lines = _lines(log)  # written in full once the gateway has stopped
    assert len(lines) == 6
    ok, chat_401, models_401, unknown, admin_401, streamed = lines
    assert ok["request_id"] == rid
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(ok["ts"]))
    assert ok["status"] == 200 and ok["error_kind"] == ""
    assert ok["team"] == "research" and ok["org"] == "acme" and ok["model"] == "gpt-4o-mini"
    assert ok["key_id"] and isinstance(ok["key_id"], str) and ok["key_id"] in key
    assert isinstance(ok["input_tokens"], int) and ok["input_tokens"] > 0
    assert isinstance(ok["cost_usd"], str) and float(ok["cost_usd"]) > 0
    assert ok["duration_ms"] >= ok["overhead_ms"] >= 0  # type: ignore[operator]
    assert ok["method"] == "POST" and ok["path"] == "/v1/chat/completions"
    assert chat_401["status"] == 401 and chat_401["error_kind"] == "invalid_api_key"
    assert chat_401["key_id"] == "" and chat_401["input_tokens"] == 0
    assert models_401["status"] == 401 and models_401["path"] == "/v1/models"
    assert models_401["error_kind"] == "invalid_api_key"
    assert unknown["status"] == 404 and unknown["error_kind"] == "not_found"
    assert unknown["path"] == "/no/such/path"  # the query string is never logged
    assert admin_401["status"] == 401 and admin_401["path"] == "/admin/v1/keys"
    assert streamed["stream"] is True and streamed["ttft_ms"] is not None
    text = log.read_text()
    for secret in (secret_prompt, key, "sk-not-a-key-0000", "sekret", "sk-upstream-openai"):
        assert secret not in text


async def test_off_by_default(gw: Harness) -> None:
    kinds = {type(o) for o in gw.gateway.observers.observers}
    assert kinds == {LiveStats, Metrics}  # no response hook: nothing per HTTP exchange


async def test_serve_writes_to_standard_output(tmp_path: Path, upstream_keys: None) -> None:
    """``tokenomy serve --access-log -``: lines on stdout, the rest drained at SIGTERM."""
    async with FakeOpenAI() as upstream:
        port = unused_port()
        config = tmp_path / "gw.toml"
        config.write_text(
            f"""
[gateway]
port = {port}

[providers.up]
kind = "openai"
base_url = "{upstream.base_url}"
api_key_env = "FAKE_OPENAI_KEY"
catalog_provider = "openai"

[[models]]
name = "gpt-4o-mini"
deployments = [{{ provider = "up", model = "gpt-4o-mini" }}]
"""
        )
        db = f"sqlite:///{tmp_path / 'ledger.db'}"
        key = create_key_cli(db)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tokenomy.cli", "serve", "--config", str(config),
            "--db", db, "--access-log", "-",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            banner = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert b"tokenomy gateway on" in banner
            await wait_for_port(port)
            status, rid = await chat(Target(f"http://127.0.0.1:{port}", key))
            assert status == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            out = await asyncio.wait_for(proc.stdout.read(), 30) if proc.stdout else b""
            await proc.wait()
    (line,) = [orjson.loads(x) for x in out.splitlines() if x.startswith(b"{")]
    assert line["request_id"] == rid and line["status"] == 200


async def wait_for_port(port: int) -> None:
    for _ in range(400):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
        else:
            writer.close()
            return
    raise AssertionError(f"port {port} never opened")


def create_key_cli(db: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "tokenomy.cli", "keys", "create", "--org", "o", "--team", "t",
         "--db", db, "--json"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    secret: str = orjson.loads(out)["secret"]
    return secret
