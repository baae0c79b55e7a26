"""Secrets never reach clients, the ledger or ``/health``: upstream keys, DB passwords.

An upstream that echoes the credential it was sent (``echo-key`` scenario of the fakes:
the whole key and a masked ``sk-upst****enai`` form) is relayed with the key scrubbed,
in unary answers, in in-stream errors and in the recorded ``error_message``.
"""

from __future__ import annotations

import aiohttp
import orjson
import pytest

from tests.gateway.harness import Harness, config_for
from tokenomy.admin import create_admin_key
from tokenomy.config import parse_config
from tokenomy.redact import Redactor, mask_url, register_settings, scrub, url_password

OPENAI_KEY = "sk-upstream-openai"  # tests/gateway/conftest.py
ANTHROPIC_KEY = "sk-ant-upstream"
LEAKS = (OPENAI_KEY, ANTHROPIC_KEY, "upstream-open", "ant-upstr", "****enai", "****ream")


def assert_clean(text: str) -> None:
    for leak in LEAKS:
        assert leak not in text, f"{leak!r} leaked in {text!r}"


async def post(h: Harness, path: str, body: dict[str, object], **headers: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            h.url + path, json=body, headers={"Authorization": f"Bearer {h.key}", **headers}
        ) as resp,
    ):
        return resp.status, (await resp.read()).decode()


CHAT = {"messages": [{"role": "user", "content": "hi"}]}
MSG = {"max_tokens": 50, "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("path", "model", "extra"),
    [
        ("/v1/chat/completions", "gpt-4o-mini", {}),  # OpenAI upstream, same format
        ("/v1/messages", "claude-sonnet", {"anthropic-version": "2023-06-01"}),
        ("/v1/chat/completions", "gpt-via-anthropic", {}),  # other format
    ],
)
async def test_upstream_error_echoing_the_key_is_scrubbed(
    gw: Harness, path: str, model: str, extra: dict[str, str]
) -> None:
    gw.openai.next_scenario.append("echo-key")
    gw.anthropic.next_scenario.append("echo-key")
    body = {**(MSG if path == "/v1/messages" else CHAT), "model": model}
    status, text = await post(gw, path, body, **extra)
    assert status == 401
    assert "Incorrect API key provided" in text  # the message itself still arrives
    assert_clean(text)
    (ev,) = gw.events()
    assert ev.status == 401 and "Incorrect API key provided" in ev.error_message
    assert_clean(ev.error_message)


@pytest.mark.parametrize(
    ("path", "model", "extra"),
    [
        ("/v1/chat/completions", "gpt-4o-mini", {}),  # passthrough of the raw error event
        ("/v1/messages", "claude-sonnet", {"anthropic-version": "2023-06-01"}),
        ("/v1/chat/completions", "gpt-via-anthropic", {}),  # translated stream
        ("/v1/messages", "claude-via-openai", {"anthropic-version": "2023-06-01"}),
    ],
)
async def test_in_stream_error_echoing_the_key_is_scrubbed(
    gw: Harness, path: str, model: str, extra: dict[str, str]
) -> None:
    gw.openai.next_scenario.append("error-mid-stream+echo-key")
    gw.anthropic.next_scenario.append("error-mid-stream+echo-key")
    body = {**(MSG if path == "/v1/messages" else CHAT), "model": model, "stream": True}
    status, text = await post(gw, path, body, **extra)
    assert status == 200
    assert "Incorrect API key provided" in text
    assert_clean(text)
    (ev,) = gw.events()
    assert "Incorrect API key provided" in ev.error_message
    assert_clean(ev.error_message)


async def test_health_says_only_ok_without_an_admin_key(gw: Harness) -> None:
    async with aiohttp.ClientSession() as http, http.get(gw.url + "/health") as resp:
        assert resp.status == 200
        assert orjson.loads(await resp.read()) == {"status": "ok"}


async def test_health_details_need_a_global_admin_key(gw: Harness) -> None:
    _, admin = create_admin_key(gw.store)
    _, team_admin = create_admin_key(gw.store, org="acme", team="research")
    async with aiohttp.ClientSession() as http:
        async with http.get(
            gw.url + "/health", headers={"Authorization": f"Bearer {admin}"}
        ) as resp:
            body = orjson.loads(await resp.read())
        assert resp.status == 200 and body["status"] == "ok"
        assert {"ledger", "budgets", "keys", "connections"} <= set(body)
        assert body["ledger"]["ok"] is True
        async with http.get(
            gw.url + "/health", headers={"Authorization": f"Bearer {team_admin}"}
        ) as resp:
            assert orjson.loads(await resp.read()) == {"status": "ok"}
        async with http.get(
            gw.url + "/health", headers={"Authorization": "Bearer tka-nope-nope"}
        ) as resp:
            assert resp.status == 401


async def test_health_is_503_not_ok_without_the_error_text(
    gw: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn_error = 'connection to server at "10.1.2.3", port 5432 failed: password=hunter2hunter2'

    def broken() -> dict[str, object]:
        return {"ok": False, "last_error": dsn_error}

    monkeypatch.setattr(gw.gateway.writer, "health", broken, raising=False)
    _, admin = create_admin_key(gw.store)
    async with aiohttp.ClientSession() as http:
        async with http.get(gw.url + "/health") as resp:
            assert resp.status == 503
            assert orjson.loads(await resp.read()) == {"status": "not_ok"}
        async with http.get(
            gw.url + "/health", headers={"Authorization": f"Bearer {admin}"}
        ) as resp:
            assert resp.status == 503
            text = (await resp.read()).decode()
    assert '"not_ok"' in text and "hunter2" not in text


def test_configured_secrets_are_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOME_PROVIDER_KEY", "pk-live-0123456789abcdef")
    cfg = config_for("http://127.0.0.1:9/v1", "http://127.0.0.1:9")
    cfg["providers"]["extra"] = {
        "kind": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "api_key_env": "SOME_PROVIDER_KEY",
        "headers": {"OpenAI-Organization": "org-Secret-Header-Value-123"},
    }
    register_settings(parse_config(cfg), "postgresql://app:Pa55-word-x@db/ledger")
    text = "org-Secret-Header-Value-123 pk-live-0123456789abcdef, pw Pa55-word-x"
    assert scrub(text) == "*** ***, pw ***"


def test_mask_url_hides_passwords() -> None:
    assert (
        mask_url("postgresql://app:pa%40ss@db:5432/ledger") == "postgresql://app:***@db:5432/ledger"
    )
    assert (
        mask_url("postgresql://db/ledger?user=a&password=x1")
        == "postgresql://db/ledger?user=a&password=***"
    )
    assert mask_url("sqlite:///tmp/ledger.db") == "sqlite:///tmp/ledger.db"
    assert url_password("postgresql://app:pa%40ss@db/ledger") == "pa@ss"


def test_redactor_scrubs_whole_keys_pieces_and_masked_echoes() -> None:
    r = Redactor()
    r.add_key("sk-proj-abcdefghijklmnop1234")
    r.add_word("s3cret pw")
    assert r.scrub("key sk-proj-abcdefghijklmnop1234 is bad") == "key *** is bad"
    assert r.scrub("got ...ghijklmnop1234") == "got ...***"
    assert r.scrub("Incorrect API key provided: sk-proj-****1234.") == (
        "Incorrect API key provided: ***."
    )
    assert r.scrub('unexpected spaces found in "s3cret pw"') == 'unexpected spaces found in "***"'
    assert r.scrub("Loading... done; sk-fake***") == "Loading... done; sk-fake***"
    assert r.scrub("") == ""
