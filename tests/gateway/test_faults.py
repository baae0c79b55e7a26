"""Bad input and faults: answered in the client's own wire format, and always on the ledger.

Each error is checked the way a client meets it (the official SDK's exception class and
status code, or a raw HTTP exchange where no SDK would send such a request), and each
failed request is looked up on the ledger by the ``x-tokenomy-request-id`` it was answered
with: status, ``error_kind``, and whatever usage is known.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from tests.fakes import FakeUsage, refused_url
from tests.gateway.harness import Harness, config_for, running_gateway
from tokenomy.events import Usage, UsageEvent
from tokenomy.ledger.reports import usage_report
from tokenomy.metering.stream import SSEParser
from tokenomy.metering.tokenizer import count_text
from tokenomy.wire import ENDPOINTS

MESSAGES: list[Any] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the capital of France?"},
]
ANT_MESSAGES: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]
PROMPT_WORDS = 9
REPLY_WORDS = 15
REPLY = "This is a fake reply to: You are terse. What is the capital of France?"
REQUEST_ID = "x-tokenomy-request-id"
COST = "x-tokenomy-cost-usd"


# ---------------------------------------------------------------------------- helpers


def oai(h: Harness, key: str | None = None) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=h.openai_base, api_key=key or h.key, max_retries=0)


def ant(h: Harness, key: str | None = None) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=h.url, api_key=key or h.key, max_retries=0)


@pytest.fixture
async def oai_client(gw: Harness) -> AsyncIterator[openai.AsyncOpenAI]:
    async with oai(gw) as c:
        yield c


@pytest.fixture
async def ant_client(gw: Harness) -> AsyncIterator[anthropic.AsyncAnthropic]:
    async with ant(gw) as c:
        yield c


def openai_error(err: openai.APIStatusError) -> dict[str, Any]:
    """The OpenAI-format error object the gateway answered with (``{"error": {...}}``)."""
    body = err.response.json()
    assert set(body) == {"error"}, body
    assert {"message", "type", "param", "code"} <= set(body["error"])
    return dict(body["error"])


def anthropic_error(err: anthropic.APIStatusError) -> dict[str, Any]:
    """The Anthropic-format error object (``{"type": "error", "error": {...}}``)."""
    body = err.response.json()
    assert body["type"] == "error", body
    assert {"type", "message"} <= set(body["error"])
    return dict(body["error"])


def recorded(h: Harness, err: openai.APIStatusError | anthropic.APIStatusError) -> UsageEvent:
    """The ledger event of a failed request, by the id in its error response."""
    return h.event(err.response.headers[REQUEST_ID])


async def raw_post(
    url: str, body: bytes, headers: dict[str, str]
) -> tuple[int, dict[str, Any], str]:
    """(status, JSON body, request id) of a POST no SDK would send."""
    async with aiohttp.ClientSession() as s, s.post(url, data=body, headers=headers) as r:
        return r.status, json.loads(await r.read()), r.headers[REQUEST_ID]


def openai_headers(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def anthropic_headers(key: str) -> dict[str, str]:
    return {"x-api-key": key, "anthropic-version": "2023-06-01", "Content-Type": "application/json"}


async def eventually_event(h: Harness, request_id: str, timeout_s: float = 10.0) -> UsageEvent:
    """Poll the ledger for an event recorded after the response ended (client gone)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        h.flush()
        ev = h.store.get_event(request_id)
        if ev is not None:
            return ev
        if asyncio.get_running_loop().time() > deadline:
            pytest.fail(f"no ledger event {request_id} after {timeout_s} s")
        await asyncio.sleep(0.05)


# ================================================================================ 401


async def test_openai_missing_key_is_401(gw: Harness) -> None:
    async with oai(gw, "unused") as c:
        with pytest.raises(openai.AuthenticationError) as info:
            await c.chat.completions.create(
                model="gpt-4o-mini",
                messages=MESSAGES,
                extra_headers={"Authorization": openai.omit},  # send no key at all
            )
    err = info.value
    assert err.status_code == 401
    assert openai_error(err)["type"] == "authentication_error"
    assert "Missing API key" in err.message
    ev = recorded(gw, err)
    assert (ev.status, ev.error_kind, ev.org, ev.key_id) == (401, "invalid_api_key", "", "")
    assert gw.openai.requests == []


async def test_anthropic_missing_key_is_401(gw: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    async with anthropic.AsyncAnthropic(
        base_url=gw.url, default_headers={"Authorization": anthropic.omit}, max_retries=0
    ) as c:
        with pytest.raises(anthropic.AuthenticationError) as info:
            await c.messages.create(model="claude-sonnet", max_tokens=16, messages=ANT_MESSAGES)
    err = info.value
    assert err.status_code == 401
    assert anthropic_error(err)["type"] == "authentication_error"
    ev = recorded(gw, err)
    assert (ev.status, ev.error_kind, ev.api_format) == (401, "invalid_api_key", "anthropic")
    assert gw.anthropic.requests == []


async def test_unknown_key_is_401_in_both_formats(gw: Harness) -> None:
    async with oai(gw, "tk-000000000000-notakey") as c:
        with pytest.raises(openai.AuthenticationError) as o_info:
            await c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    async with ant(gw, "tk-000000000000-notakey") as a:
        with pytest.raises(anthropic.AuthenticationError) as a_info:
            await a.messages.create(model="claude-sonnet", max_tokens=16, messages=ANT_MESSAGES)
    assert o_info.value.status_code == a_info.value.status_code == 401
    assert "Invalid API key" in openai_error(o_info.value)["message"]
    assert "Invalid API key" in anthropic_error(a_info.value)["message"]
    for err in (o_info.value, a_info.value):
        ev = recorded(gw, err)
        assert (ev.status, ev.error_kind, ev.org) == (401, "invalid_api_key", "")
    assert gw.openai.requests == [] and gw.anthropic.requests == []


async def test_revoked_key_is_refused_within_about_a_second(gw: Harness) -> None:
    record, secret = gw.store.create_key(org="acme", team="ops", user="bob", name="doomed")
    async with oai(gw, secret) as c, ant(gw, secret) as a:
        # A key created a moment ago works at once.
        ok = await c.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES
        )
        assert gw.event(ok.headers[REQUEST_ID]).key_id == record.key_id
        assert gw.store.revoke_key(record.key_id)

        loop = asyncio.get_running_loop()
        deadline = loop.time() + 3.0  # README: "within about a second"
        while True:
            try:
                await c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            except openai.AuthenticationError as exc:
                o_err = exc
                break
            if loop.time() > deadline:
                pytest.fail("a revoked key was still accepted 3 s after revocation")
            await asyncio.sleep(0.05)
        with pytest.raises(anthropic.AuthenticationError) as a_info:
            await a.messages.create(model="claude-sonnet", max_tokens=16, messages=ANT_MESSAGES)
    assert "revoked" in o_err.message
    assert "revoked" in anthropic_error(a_info.value)["message"]
    for err in (o_err, a_info.value):
        ev = recorded(gw, err)
        assert (ev.status, ev.error_kind) == (401, "invalid_api_key")
    # Other keys are unaffected.
    async with oai(gw) as c:
        await c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)


# ================================================================================ 400


async def test_malformed_json_is_400_in_both_formats(gw: Harness) -> None:
    status, body, rid = await raw_post(
        gw.openai_base + "/chat/completions",
        b'{"model": "gpt-4o-mini", "messages": [',
        openai_headers(gw.key),
    )
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"
    assert "not valid JSON" in body["error"]["message"]
    ev = gw.event(rid)
    assert (ev.status, ev.error_kind, ev.api_format) == (400, "invalid_request_error", "openai")
    assert (ev.org, ev.user) == ("acme", "alice")

    status, body, rid = await raw_post(
        gw.url + "/v1/messages", b"{not json", anthropic_headers(gw.key)
    )
    assert status == 400
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    ev = gw.event(rid)
    assert (ev.status, ev.error_kind, ev.api_format) == (400, "invalid_request_error", "anthropic")
    assert gw.openai.requests == [] and gw.anthropic.requests == []


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        ("/chat/completions", [], None),
        ("/chat/completions", {"messages": MESSAGES}, "model"),
        ("/chat/completions", {"model": "gpt-4o-mini"}, "messages"),
        ("/chat/completions", {"model": "gpt-4o-mini", "messages": "hi"}, "messages"),
        (
            "/chat/completions",
            {"model": "gpt-4o-mini", "messages": [{"content": "x"}]},
            "messages[0]",
        ),
        (
            "/chat/completions",
            {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": "yes"},
            "stream",
        ),
        (
            "/chat/completions",
            {"model": "gpt-4o-mini", "messages": MESSAGES, "max_tokens": 0},
            "max_tokens",
        ),
        ("/completions", {"model": "gpt-4o-mini"}, "prompt"),
        ("/embeddings", {"model": "text-embedding-3-small"}, "input"),
        (
            "/embeddings",
            {"model": "text-embedding-3-small", "input": "x", "stream": True},
            "stream",
        ),
        ("/responses", {"model": "gpt-4o-mini"}, "input"),
    ],
)
async def test_openai_missing_or_invalid_fields_are_400(
    gw: Harness, path: str, body: Any, param: str | None
) -> None:
    status, resp, rid = await raw_post(
        gw.openai_base + path, json.dumps(body).encode(), openai_headers(gw.key)
    )
    assert status == 400, resp
    assert resp["error"]["type"] == "invalid_request_error"
    assert resp["error"]["param"] == param
    ev = gw.event(rid)
    assert (ev.status, ev.error_kind) == (400, "invalid_request_error")
    assert gw.openai.requests == []


async def test_openai_sdk_empty_messages_is_bad_request(
    gw: Harness, oai_client: openai.AsyncOpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await oai_client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert info.value.status_code == 400
    assert openai_error(info.value)["param"] == "messages"
    ev = recorded(gw, info.value)
    assert (ev.status, ev.error_kind, ev.model) == (400, "invalid_request_error", "gpt-4o-mini")


@pytest.mark.parametrize(
    ("kwargs", "word"),
    [
        ({"max_tokens": 0, "messages": ANT_MESSAGES}, "max_tokens"),
        ({"max_tokens": 16, "messages": []}, "messages"),
        ({"max_tokens": 16, "messages": ["hello"]}, "messages[0]"),
    ],
)
async def test_anthropic_missing_or_invalid_fields_are_400(
    gw: Harness, ant_client: anthropic.AsyncAnthropic, kwargs: dict[str, Any], word: str
) -> None:
    with pytest.raises(anthropic.BadRequestError) as info:
        await ant_client.messages.create(model="claude-sonnet", **kwargs)
    err = info.value
    assert err.status_code == 400
    error = anthropic_error(err)
    assert error["type"] == "invalid_request_error" and word in error["message"]
    ev = recorded(gw, err)
    assert (ev.status, ev.error_kind, ev.model) == (400, "invalid_request_error", "claude-sonnet")
    assert gw.anthropic.requests == []


# ================================================================================ 404


async def test_unknown_model_is_404_in_both_formats(
    gw: Harness, oai_client: openai.AsyncOpenAI, ant_client: anthropic.AsyncAnthropic
) -> None:
    with pytest.raises(openai.NotFoundError) as o_info:
        await oai_client.chat.completions.create(model="gpt-99", messages=MESSAGES)
    with pytest.raises(anthropic.NotFoundError) as a_info:
        await ant_client.messages.create(model="claude-99", max_tokens=8, messages=ANT_MESSAGES)
    assert o_info.value.status_code == a_info.value.status_code == 404
    assert "gpt-99" in openai_error(o_info.value)["message"]
    assert openai_error(o_info.value)["code"] == "model_not_found"
    assert anthropic_error(a_info.value)["type"] == "not_found_error"
    assert "claude-99" in a_info.value.message
    for err, model in ((o_info.value, "gpt-99"), (a_info.value, "claude-99")):
        ev = recorded(gw, err)
        assert (ev.status, ev.error_kind, ev.model) == (404, "model_not_found", model)
        assert ev.usage == Usage() and ev.cost_nanos == 0  # no token used: cost nothing
    assert gw.openai.requests == [] and gw.anthropic.requests == []


# ================================================================================ 413


async def test_body_over_max_body_bytes_is_413_in_both_formats(
    sqlite_url: str, upstream_keys: None
) -> None:
    big = "word " * 1_000  # 5 kB of content against a 2 kB limit
    async with running_gateway(sqlite_url, max_body_bytes=2_048) as h:
        async with oai(h) as c, ant(h) as a:
            with pytest.raises(openai.APIStatusError) as o_info:
                await c.chat.completions.create(
                    model="gpt-4o-mini", messages=[{"role": "user", "content": big}]
                )
            with pytest.raises(anthropic.ContentTooLargeError) as a_info:
                await a.messages.create(
                    model="claude-sonnet",
                    max_tokens=8,
                    messages=[{"role": "user", "content": big}],
                )
            # Small requests still pass.
            await c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
        assert o_info.value.status_code == a_info.value.status_code == 413
        assert "2048" in openai_error(o_info.value)["message"]
        assert anthropic_error(a_info.value)["type"] == "request_too_large"
        for err in (o_info.value, a_info.value):
            ev = recorded(h, err)
            assert (ev.status, ev.error_kind) == (413, "request_too_large")
            assert (ev.org, ev.user) == ("acme", "alice")
        assert len(h.openai.requests) == 1 and h.anthropic.requests == []


async def test_chunked_body_over_max_body_bytes_is_413(
    sqlite_url: str, upstream_keys: None
) -> None:
    """Without a Content-Length, the limit is enforced while the body is read."""
    async with running_gateway(sqlite_url, max_body_bytes=2_048) as h:

        async def body() -> AsyncIterator[bytes]:
            yield b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "'
            for _ in range(10):
                yield b"x" * 1_000
            yield b'"}]}'

        async with (
            aiohttp.ClientSession() as s,
            s.post(
                h.openai_base + "/chat/completions", data=body(), headers=openai_headers(h.key)
            ) as r,
        ):
            status, payload = r.status, await r.json()
            rid = r.headers[REQUEST_ID]
        assert status == 413 and payload["error"]["code"] == "request_too_large"
        ev = h.event(rid)
        assert (ev.status, ev.error_kind) == (413, "request_too_large")
        assert h.openai.requests == []


# ====================================================================== upstream errors


async def test_openai_upstream_429_keeps_status_and_message(
    gw: Harness, oai_client: openai.AsyncOpenAI
) -> None:
    gw.openai.next_scenario.append("error-429")
    with pytest.raises(openai.RateLimitError) as info:
        await oai_client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    err = info.value
    assert err.status_code == 429
    assert "Rate limit reached for fake" in openai_error(err)["message"]
    ev = recorded(gw, err)
    assert (ev.status, ev.error_kind, ev.provider) == (429, "upstream_error", "oai")
    assert "Rate limit reached for fake" in ev.error_message
    assert len(gw.openai.requests) == 1


@pytest.mark.parametrize(
    ("status", "exc", "upstream_message"),
    [
        (529, anthropic.OverloadedError, "Overloaded"),
        (500, anthropic.InternalServerError, "Internal server error"),
    ],
)
async def test_anthropic_upstream_5xx_keeps_status_and_message(
    gw: Harness,
    ant_client: anthropic.AsyncAnthropic,
    status: int,
    exc: type[anthropic.APIStatusError],
    upstream_message: str,
) -> None:
    gw.anthropic.next_scenario.append(f"error-{status}")
    with pytest.raises(exc) as info:
        await ant_client.messages.create(model="claude-sonnet", max_tokens=8, messages=ANT_MESSAGES)
    err = info.value
    assert err.status_code == status
    assert upstream_message in anthropic_error(err)["message"]
    ev = recorded(gw, err)
    assert (ev.status, ev.error_kind, ev.provider) == (status, "upstream_error", "ant")
    assert upstream_message in ev.error_message


async def test_upstream_error_reaches_a_client_of_the_other_format(
    gw: Harness, oai_client: openai.AsyncOpenAI, ant_client: anthropic.AsyncAnthropic
) -> None:
    """An Anthropic 529 answered to an OpenAI client, an OpenAI 429 to an Anthropic one."""
    gw.anthropic.next_scenario.append("error-529")
    with pytest.raises(openai.APIStatusError) as o_info:
        await oai_client.chat.completions.create(model="gpt-via-anthropic", messages=MESSAGES)
    assert o_info.value.status_code == 529
    assert "Overloaded" in openai_error(o_info.value)["message"]
    gw.openai.next_scenario.append("error-429")
    with pytest.raises(anthropic.RateLimitError) as a_info:
        await ant_client.messages.create(
            model="claude-via-openai", max_tokens=8, messages=ANT_MESSAGES
        )
    assert "Rate limit reached for fake" in anthropic_error(a_info.value)["message"]
    for err, status in ((o_info.value, 529), (a_info.value, 429)):
        ev = recorded(gw, err)
        assert (ev.status, ev.error_kind) == (status, "upstream_error")


async def test_upstream_error_on_a_stream_request_keeps_status(
    gw: Harness, oai_client: openai.AsyncOpenAI
) -> None:
    gw.openai.next_scenario.append("error-503")
    with pytest.raises(openai.InternalServerError) as info:
        await oai_client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
    assert info.value.status_code == 503
    ev = recorded(gw, info.value)
    assert (ev.status, ev.error_kind, ev.stream) == (503, "upstream_error", True)


# ============================================================== connection refused / timeout


async def test_connection_refused_is_502_in_both_formats(
    sqlite_url: str, upstream_keys: None
) -> None:
    config = config_for(refused_url("/v1"), refused_url(""))
    async with running_gateway(sqlite_url, config=config) as h:
        async with oai(h) as c, ant(h) as a:
            with pytest.raises(openai.InternalServerError) as o_info:
                await c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            with pytest.raises(anthropic.InternalServerError) as a_info:
                await a.messages.create(model="claude-sonnet", max_tokens=8, messages=ANT_MESSAGES)
            with pytest.raises(openai.InternalServerError) as s_info:
                await c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=True)
        assert o_info.value.status_code == a_info.value.status_code == 502
        assert s_info.value.status_code == 502
        assert openai_error(o_info.value)["code"] == "upstream_unavailable"
        assert anthropic_error(a_info.value)["type"] == "api_error"
        for err in (o_info.value, a_info.value, s_info.value):
            ev = recorded(h, err)
            assert (ev.status, ev.error_kind) == (502, "upstream_unavailable")
            assert ev.usage == Usage() and not ev.estimated


async def test_upstream_slower_than_request_timeout_is_504_in_both_formats(
    sqlite_url: str, upstream_keys: None
) -> None:
    async with running_gateway(sqlite_url, request_timeout_s=0.3) as h:
        h.openai.next_scenario.append("slow-3s")
        h.anthropic.next_scenario.append("slow-3s")
        async with oai(h) as c, ant(h) as a:
            with pytest.raises(openai.APIStatusError) as o_info:
                await c.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
            with pytest.raises(anthropic.GatewayTimeoutError) as a_info:
                await a.messages.create(model="claude-sonnet", max_tokens=8, messages=ANT_MESSAGES)
        assert o_info.value.status_code == a_info.value.status_code == 504
        assert openai_error(o_info.value)["code"] == "upstream_timeout"
        assert anthropic_error(a_info.value)["type"] == "timeout_error"
        for err in (o_info.value, a_info.value):
            ev = recorded(h, err)
            assert (ev.status, ev.error_kind) == (504, "upstream_timeout")


async def test_stream_stalling_longer_than_request_timeout_ends_in_an_error(
    sqlite_url: str, upstream_keys: None
) -> None:
    """request_timeout_s is the longest wait between chunks of a stream."""
    async with running_gateway(sqlite_url, request_timeout_s=0.3) as h, oai(h) as c:
        h.openai.next_scenario.append("stall-3s")
        raw = await c.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=MESSAGES, stream=True
        )
        received = ""
        with pytest.raises(openai.APIError) as info:
            async for chunk in raw.parse():
                received += "".join(ch.delta.content or "" for ch in chunk.choices)
        assert "timed out" in info.value.message
        assert received and REPLY.startswith(received) and received != REPLY
        ev = h.event(raw.headers[REQUEST_ID])
        assert ev.error_kind == "upstream_timeout"
        assert ev.estimated
        assert ev.usage.output_tokens == count_text(received)


# ================================================================= streams cut off


async def test_openai_stream_dropped_mid_way_is_an_error_and_estimated(
    gw: Harness, oai_client: openai.AsyncOpenAI
) -> None:
    gw.openai.next_scenario.append("drop-mid-stream")
    request: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
    raw = await oai_client.chat.completions.with_raw_response.create(**request)
    received = ""
    with pytest.raises(openai.APIError) as info:
        async for chunk in raw.parse():
            received += "".join(ch.delta.content or "" for ch in chunk.choices)
    assert "closed" in info.value.message or "failed" in info.value.message
    assert received and REPLY.startswith(received) and received != REPLY

    ev = gw.event(raw.headers[REQUEST_ID])
    assert ev.estimated
    assert ev.error_kind == "upstream_unavailable"
    assert ev.status == 200  # what the client got: the headers had gone out
    assert ev.usage.output_tokens == count_text(received) > 0
    assert ev.usage.input_tokens == ENDPOINTS["chat.completions"].estimate_input(request) > 0
    assert ev.cost_nanos is not None and ev.cost_nanos > 0


async def test_anthropic_stream_dropped_mid_way_is_an_error_and_estimated(
    gw: Harness, ant_client: anthropic.AsyncAnthropic
) -> None:
    gw.anthropic.usage = FakeUsage(cached_tokens=50)
    gw.anthropic.next_scenario.append("drop-mid-stream")
    received = ""
    with pytest.raises(anthropic.APIError):
        async with ant_client.messages.stream(
            model="claude-sonnet",
            max_tokens=64,
            system="You are terse.",
            messages=ANT_MESSAGES,
        ) as stream:
            rid = stream.response.headers[REQUEST_ID]
            async for text in stream.text_stream:
                received += text
    assert received and REPLY.startswith(received) and received != REPLY

    ev = gw.event(rid)
    assert ev.estimated
    assert ev.error_kind == "upstream_unavailable"
    # message_start reported the input side exactly; output is counted from the text.
    assert (ev.usage.input_tokens, ev.usage.cached_tokens) == (PROMPT_WORDS + 50, 50)
    assert ev.usage.output_tokens == count_text(received) > 0
    assert ev.cost_nanos is not None


def stream_request(h: Harness, fmt: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(url, body, headers) of a streamed request in ``fmt``, for raw HTTP clients."""
    if fmt == "openai":
        body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": MESSAGES, "stream": True}
        return h.openai_base + "/chat/completions", body, openai_headers(h.key)
    body = {
        "model": "claude-sonnet",
        "max_tokens": 64,
        "system": "You are terse.",
        "messages": ANT_MESSAGES,
        "stream": True,
    }
    return h.url + "/v1/messages", body, anthropic_headers(h.key)


async def hang_up_after_first_chunk(url: str, body: Any, headers: dict[str, str]) -> str:
    """Open a stream, read one chunk, close the connection; return the request id."""
    async with aiohttp.ClientSession() as s:
        resp = await s.post(url, json=body, headers=headers)
        assert resp.status == 200
        rid = resp.headers[REQUEST_ID]
        first = await resp.content.readany()
        assert first.startswith((b"data: ", b"event: "))
        resp.close()  # hang up mid-stream
    return rid


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
async def test_client_disconnecting_mid_stream_is_recorded_as_499(gw: Harness, fmt: str) -> None:
    """The upstream (which reports no usage) is still streaming when the client hangs up."""
    upstream = gw.openai if fmt == "openai" else gw.anthropic
    upstream.next_scenario.append("stall-1s+no-usage")
    url, body, headers = stream_request(gw, fmt)
    rid = await hang_up_after_first_chunk(url, body, headers)
    ev = await eventually_event(gw, rid)
    assert ev.status == 499
    assert ev.error_kind == "client_disconnected"
    assert ev.estimated
    endpoint = "chat.completions" if fmt == "openai" else "messages"
    assert ev.usage.input_tokens == ENDPOINTS[endpoint].estimate_input(body) > 0
    assert ev.usage.output_tokens > 0
    assert ev.cost_nanos is not None and ev.cost_nanos > 0
    assert (ev.org, ev.model, ev.stream) == ("acme", body["model"], True)


@pytest.mark.parametrize("fmt", ["openai", "anthropic"])
async def test_client_hanging_up_after_the_upstream_reported_usage_keeps_it_exact(
    gw: Harness, fmt: str
) -> None:
    """The provider's final usage arrived before the gateway noticed the hang-up.

    The upstream stalls after half its events, then sends the rest (usage included) at
    once; the gateway reads all of it before its next write to the client fails. The
    provider reported (and bills) exact numbers, so they are what the ledger must hold:
    README: tokens are only counted offline when a provider reports no usage or the
    stream *from the provider* is cut off.
    """
    upstream = gw.openai if fmt == "openai" else gw.anthropic
    upstream.usage = FakeUsage(cached_tokens=4)
    upstream.next_scenario.append("stall-1s")
    url, body, headers = stream_request(gw, fmt)
    rid = await hang_up_after_first_chunk(url, body, headers)
    ev = await eventually_event(gw, rid)
    assert (ev.status, ev.error_kind) == (499, "client_disconnected")
    assert ev.usage == Usage(
        input_tokens=PROMPT_WORDS + 4, cached_tokens=4, output_tokens=REPLY_WORDS
    )
    assert not ev.estimated


def client_text(fmt: str, events: list[tuple[str, bytes]]) -> str:
    """The generated text a client received in a stream of its own format."""
    text = ""
    for name, data in events:
        if data == b"[DONE]":
            continue
        obj = json.loads(data)
        if fmt == "openai":
            text += "".join(c["delta"].get("content") or "" for c in obj.get("choices", []))
        elif fmt == "responses" and name == "response.output_text.delta":
            text += obj["delta"]
        elif fmt == "anthropic" and name == "content_block_delta":
            text += obj["delta"].get("text", "")
    return text


def is_error_event(fmt: str, name: str, data: bytes) -> bool:
    """An in-stream error in the client's own wire format."""
    if data == b"[DONE]":
        return False
    obj = json.loads(data)
    if fmt == "openai":
        return isinstance(obj.get("error"), dict) and "message" in obj["error"]
    if fmt == "anthropic":
        return name == "error" and obj["type"] == "error" and "message" in obj["error"]
    return name == "error" and obj["type"] == "error" and "message" in obj


@pytest.mark.parametrize("fmt", ["openai", "anthropic", "responses"])
async def test_malformed_upstream_stream_event_ends_the_client_stream_with_an_error(
    gw: Harness, fmt: str
) -> None:
    """A broken JSON event from the upstream mid-stream is an upstream fault, like a broken
    non-stream body (502 upstream_error): the client's stream must end with an error in its
    own format, not hang, and the event must say what happened (not a gateway bug)."""
    if fmt == "responses":
        url, headers = gw.openai_base + "/responses", openai_headers(gw.key)
        body: dict[str, Any] = {
            "model": "gpt-4o-mini",
            "instructions": "You are terse.",
            "input": "What is the capital of France?",
            "stream": True,
        }
    else:
        url, body, headers = stream_request(gw, fmt)
    (gw.anthropic if fmt == "anthropic" else gw.openai).next_scenario.append("malformed-json")
    async with aiohttp.ClientSession() as s, s.post(url, json=body, headers=headers) as r:
        assert r.status == 200
        rid = r.headers[REQUEST_ID]
        try:
            async with asyncio.timeout(5):  # a guard against a hang, not a latency check
                raw = await r.read()
        except TimeoutError:
            pytest.fail("the gateway never ended the client's stream")
    parser = SSEParser()
    events = parser.feed(raw) + parser.flush()
    assert events, "the client received nothing at all"
    assert is_error_event(fmt, *events[-1]), events[-1]
    received = client_text(fmt, events[:-1])
    assert REPLY.startswith(received) and received != REPLY

    ev = gw.event(rid)
    assert ev.error_kind == "upstream_error", ev.error_message
    assert ev.status == 200  # the headers had gone out
    assert ev.estimated
    assert ev.usage.output_tokens >= count_text(received)
    assert ev.usage.input_tokens > 0


# ====================================================== missing usage and missing prices


@pytest.mark.parametrize("stream", [False, True])
async def test_upstream_without_usage_is_estimated_and_custom_priced(
    gw: Harness, oai_client: openai.AsyncOpenAI, stream: bool
) -> None:
    request: dict[str, Any] = {"model": "local-llama", "messages": MESSAGES}
    if stream:
        raw = await oai_client.chat.completions.with_raw_response.create(**request, stream=True)
        text = ""
        async for chunk in raw.parse():
            assert chunk.usage is None
            text += "".join(ch.delta.content or "" for ch in chunk.choices)
        assert gw.openai.last.json["stream_options"] == {"include_usage": True}
    else:
        raw = await oai_client.chat.completions.with_raw_response.create(**request)
        resp = raw.parse()
        assert resp.usage is None
        text = resp.choices[0].message.content or ""
    assert text == REPLY
    assert gw.openai.last.json["model"] == "fake-no-usage"

    ev = gw.event(raw.headers[REQUEST_ID])
    assert ev.estimated and ev.status == 200 and ev.error_kind == ""
    assert ev.usage.output_tokens == count_text(REPLY)
    assert ev.usage.input_tokens == ENDPOINTS["chat.completions"].estimate_input(request) > 0
    assert (ev.location, ev.price_source) == ("local", "custom:box")
    # [prices.box]: input 0.10, output 0.40 USD per million tokens.
    expected_usd = (
        ev.usage.input_tokens * Decimal("0.10") + ev.usage.output_tokens * Decimal("0.40")
    ) / 1_000_000
    assert ev.cost_nanos == expected_usd * 1_000_000_000
    if not stream:
        assert Decimal(raw.headers[COST]) == expected_usd


async def test_model_without_known_price_has_unknown_cost_not_zero(
    gw: Harness, oai_client: openai.AsyncOpenAI
) -> None:
    raw = await oai_client.chat.completions.with_raw_response.create(
        model="mystery", messages=MESSAGES
    )
    resp = raw.parse()
    assert COST not in raw.headers
    assert REQUEST_ID in raw.headers
    ev = gw.event(raw.headers[REQUEST_ID])
    assert ev.cost_nanos is None and ev.price_source == ""
    assert resp.usage is not None
    assert ev.usage.input_tokens == resp.usage.prompt_tokens and not ev.estimated
    (row,) = usage_report(gw.store, by=["model"])
    assert (row["model"], row["requests"], row["unpriced_requests"]) == ("mystery", 1, 1)


# ========================================================== every failure on the ledger


async def test_every_failed_request_is_on_the_ledger(
    gw: Harness, oai_client: openai.AsyncOpenAI, ant_client: anthropic.AsyncAnthropic
) -> None:
    """One of each failure in a row: exactly that many events, each with its status."""
    chat, messages = oai_client.chat.completions.create, ant_client.messages.create
    gw.openai.next_scenario.extend(["error-429", "error-500"])  # for the 5th and 6th
    gw.anthropic.next_scenario.append("error-529")  # for the 7th
    attempts: list[Callable[[], Awaitable[Any]]] = [
        lambda: chat(model="nope", messages=MESSAGES),
        lambda: chat(model="gpt-4o-mini", messages=[]),
        lambda: messages(model="nope", max_tokens=8, messages=ANT_MESSAGES),
        lambda: messages(model="claude-sonnet", max_tokens=0, messages=ANT_MESSAGES),
        lambda: chat(model="gpt-4o-mini", messages=MESSAGES),
        lambda: oai_client.embeddings.create(model="text-embedding-3-small", input="hi"),
        lambda: messages(model="claude-sonnet", max_tokens=8, messages=ANT_MESSAGES),
    ]
    ids: list[str] = []
    statuses: list[int] = []
    for call in attempts:
        with pytest.raises((openai.APIStatusError, anthropic.APIStatusError)) as info:
            await call()
        ids.append(info.value.response.headers[REQUEST_ID])
        statuses.append(info.value.status_code)
    assert statuses == [404, 400, 404, 400, 429, 500, 529]
    events = {ev.id: ev for ev in gw.events()}
    assert set(events) == set(ids)
    assert [events[i].status for i in ids] == statuses
    assert [events[i].error_kind for i in ids] == [
        "model_not_found",
        "invalid_request_error",
        "model_not_found",
        "invalid_request_error",
        "upstream_error",
        "upstream_error",
        "upstream_error",
    ]
    assert all(events[i].org == "acme" for i in ids)


async def test_a_translation_failure_after_the_upstream_answered_is_charged(
    gw: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upstream billed the call: whatever fails afterwards, its usage is on the ledger."""
    from tokenomy.wire.chat_messages import ChatToMessages

    def broken(self: Any, data: Any, model: str, body: Any) -> bytes | None:
        raise ValueError("a translator bug")

    monkeypatch.setattr(ChatToMessages, "response", broken)
    async with oai(gw) as c:
        with pytest.raises(openai.InternalServerError) as info:
            await c.chat.completions.create(model="gpt-via-anthropic", messages=MESSAGES)
    ev = gw.event(info.value.response.headers[REQUEST_ID])
    assert (ev.status, ev.error_kind) == (500, "internal_error")
    assert len(gw.anthropic.requests) == 1  # served upstream once ...
    assert ev.usage.input_tokens > 0 and ev.usage.output_tokens > 0  # ... and charged
    assert ev.cost_nanos is not None and ev.cost_nanos > 0
