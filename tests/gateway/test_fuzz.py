"""Fuzzing every gateway endpoint: no 5xx of its own, errors in the client's format, and
every call an upstream served is on the ledger.

Hypothesis drives odd but transportable requests (bodies of every shape, header bytes
that are not UTF-8, compressed bodies, stream on and off, OpenAI- and Anthropic-backed
models, a model whose upstream fails) at one gateway. The gateway, its fake upstreams
and their event loop run in a background thread for the whole module; examples are sent
with ``http.client`` (synchronous, and it sends header bytes as they are).

After each example: the response is 2xx, or an error JSON in the client's wire format;
a 5xx is allowed only when relayed from the upstream (the event says so); the request
has its ledger event, and if an upstream served it, the event records that call.
"""

from __future__ import annotations

import asyncio
import gzip
import http.client
import json
import os
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fakes import FakeAnthropic, FakeOpenAI
from tests.gateway.harness import Harness, config_for, running_gateway

ENDPOINTS = {
    "/v1/chat/completions": "openai",
    "/v1/completions": "openai",
    "/v1/embeddings": "openai",
    "/v1/responses": "openai",
    "/v1/messages": "anthropic",
    "/v1/messages/count_tokens": "anthropic",
}
UPSTREAM_KINDS = ("upstream_error", "upstream_unavailable", "upstream_timeout")


# ------------------------------------------------------------- one gateway, own thread


@dataclass
class Served:
    harness: Harness
    openai: FakeOpenAI
    anthropic: FakeAnthropic
    host: str
    port: int

    def served(self) -> int:
        return len(self.openai.requests) + len(self.anthropic.requests)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    saved = {k: os.environ.get(k) for k in ("FAKE_OPENAI_KEY", "FAKE_ANTHROPIC_KEY")}
    os.environ.update(FAKE_OPENAI_KEY="sk-upstream-openai", FAKE_ANTHROPIC_KEY="sk-ant-x")
    db_url = f"sqlite:///{Path(tmp_path_factory.mktemp('fuzz')) / 'ledger.db'}"
    ready: list[Served] = []
    started, stop = threading.Event(), threading.Event()
    failure: list[BaseException] = []

    async def main() -> None:
        async with FakeOpenAI() as oai, FakeAnthropic() as ant:
            cfg = config_for(oai.base_url, ant.base_url)
            cfg["models"] += [
                {"name": "flaky", "deployments": [{"provider": "oai", "model": "fake-error-503"}]},
                {
                    "name": "flaky-claude",
                    "deployments": [{"provider": "ant", "model": "fake-error-529"}],
                },
            ]
            async with running_gateway(db_url, config=cfg) as h:
                host, port = h.url.removeprefix("http://").split(":")
                ready.append(Served(h, oai, ant, host, int(port)))
                started.set()
                while not stop.is_set():
                    await asyncio.sleep(0.05)

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:  # reported to the test below
            failure.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=run, name="fuzz-gateway", daemon=True)
    thread.start()
    started.wait(30)
    if failure or not ready:
        raise RuntimeError(f"gateway did not start: {failure}")
    try:
        yield ready[0]
    finally:
        stop.set()
        thread.join(30)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    assert not failure, failure


# ------------------------------------------------------------------------ strategies

text = st.text(max_size=24)  # includes NUL and any other code point JSON can carry
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | text
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


def _nested(depth: int) -> Any:
    value: Any = "x"
    for _ in range(depth - 1):
        value = [value]
    return {"k": value}


deep = st.integers(min_value=1, max_value=600).map(_nested)
# Models that can serve each endpoint (what a working client asks for), and anything else.
GOOD_MODELS = {
    "/v1/chat/completions": [
        "gpt-4o-mini",
        "gpt-via-anthropic",
        "claude-sonnet",
        "local-llama",
        "flaky",
        "flaky-claude",
    ],
    "/v1/completions": ["gpt-4o-mini", "local-llama", "flaky"],
    "/v1/embeddings": ["text-embedding-3-small", "flaky"],
    "/v1/responses": ["gpt-4o-mini", "flaky", "gpt-via-anthropic", "claude-sonnet"],
    "/v1/messages": ["claude-sonnet", "claude-via-openai", "flaky-claude", "gpt-4o-mini"],
    "/v1/messages/count_tokens": ["claude-sonnet", "claude-via-openai", "flaky-claude"],
}
odd_models = st.sampled_from(["no-such-model", "text-embedding-3-small", "claude-sonnet"]) | (
    st.one_of(text, st.integers(), st.none(), st.lists(text, max_size=2))
)
contents = (
    text
    | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": text}), max_size=2)
    | json_values
)
odd_messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["user", "system", "assistant", "developer"]) | text},
        optional={"content": contents, "name": text},
    )
    | json_values,
    max_size=3,
)
counts = st.integers(min_value=-5, max_value=2**66) | st.booleans() | st.none() | text


def usually(good: st.SearchStrategy[Any], odd: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``good`` three times in four, else ``odd``."""
    return st.integers(0, 3).flatmap(lambda i: odd if i == 3 else good)


optional_fields: dict[str, st.SearchStrategy[Any]] = {
    "stream": usually(st.booleans(), st.none() | text | st.integers()),
    "stream_options": usually(st.fixed_dictionaries({"include_usage": st.booleans()}), json_values),
    "max_tokens": usually(st.integers(1, 64), counts),
    "max_completion_tokens": usually(st.integers(1, 64), counts),
    "max_output_tokens": usually(st.integers(16, 64), counts),
    "n": usually(st.integers(1, 2), counts),
    "user": text | st.text(min_size=250, max_size=300) | json_values,
    "metadata": usually(st.dictionaries(text, text, max_size=4), deep | json_values),
    "temperature": usually(st.floats(0, 2), st.floats(allow_nan=False) | text),
    "system": text | json_values,
    "extra": json_values | deep,
}


@st.composite
def bodies(draw: st.DrawFn, path: str) -> bytes:
    if draw(st.integers(0, 29)) == 29:  # sometimes not JSON at all, or not an object
        return draw(st.binary(max_size=64) | json_values.map(lambda v: json.dumps(v).encode()))
    model = draw(usually(st.sampled_from(GOOD_MODELS[path]), odd_models))
    body: dict[str, Any] = {"model": model}
    prompt = draw(text.filter(str.strip) | text)
    user_message = [{"role": "user", "content": prompt}]
    if path in ("/v1/chat/completions", "/v1/messages", "/v1/messages/count_tokens"):
        body["messages"] = draw(usually(st.just(user_message), odd_messages))
    if path == "/v1/messages":
        body["max_tokens"] = draw(usually(st.integers(1, 64), counts))
    if path == "/v1/completions":
        body["prompt"] = draw(usually(st.just(prompt), st.lists(text, max_size=2) | json_values))
    if path in ("/v1/embeddings", "/v1/responses"):
        body["input"] = draw(usually(st.just(prompt), odd_messages | json_values))
    for name in draw(st.lists(st.sampled_from(sorted(optional_fields)), max_size=3)):
        body[name] = draw(optional_fields[name])
    if draw(st.integers(0, 9)) == 9:
        del body[draw(st.sampled_from(sorted(body)))]
    return json.dumps(body).encode()


# Bytes an HTTP/1.1 field value may hold (no CR, LF, NUL or other controls but tab);
# 0x80-0xFF included: they need not be UTF-8, and that is the point.
field_bytes = st.binary(max_size=300).map(
    lambda b: bytes(c for c in b if c == 9 or 32 <= c <= 126 or c >= 128).strip(b" \t")
)


@dataclass
class Request:
    path: str
    body: bytes
    headers: list[tuple[str, bytes]]


@st.composite
def requests(draw: st.DrawFn, key: str) -> Request:
    path = draw(st.sampled_from(sorted(ENDPOINTS)))
    body = draw(bodies(path))
    headers: list[tuple[str, bytes]] = [("Content-Type", b"application/json")]
    auth = draw(st.sampled_from(["bearer", "x-api-key"] * 4 + ["none", "bytes"]))
    if auth == "bearer":
        headers.append(("Authorization", b"Bearer " + key.encode()))
    elif auth == "x-api-key":
        headers.append(("x-api-key", key.encode()))
    elif auth == "bytes":
        headers.append(("Authorization", b"Bearer " + draw(field_bytes)))
    if ENDPOINTS[path] == "anthropic" and draw(st.booleans()):
        headers.append(("anthropic-version", b"2023-06-01"))
    for name in ("X-Tokenomy-Agent", "X-Tokenomy-Task", "X-Tokenomy-Step", "anthropic-beta"):
        if draw(st.integers(0, 3)) == 3:
            value = draw(usually(st.sampled_from([b"plan", b"act", b"ACT"]), field_bytes))
            if value:
                headers.append((name, value))
    encoding = draw(st.sampled_from([""] * 9 + ["gzip", "deflate", "identity", "xz"]))
    if encoding:
        headers.append(("Content-Encoding", encoding.encode()))
        if encoding == "gzip":
            body = gzip.compress(body)
        elif encoding == "deflate":
            body = zlib.compress(body)
    return Request(path, body, headers)


# ------------------------------------------------------------------------------ test


def send(gw: Served, req: Request) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection(gw.host, gw.port, timeout=30)
    try:
        conn.putrequest("POST", req.path, skip_accept_encoding=True)
        for name, value in req.headers:
            conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(req.body)))
        conn.endheaders(req.body)
        resp = conn.getresponse()
        payload = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, payload
    finally:
        conn.close()


def assert_error_format(fmt: str, payload: bytes) -> None:
    body = json.loads(payload)
    if fmt == "anthropic":
        assert body["type"] == "error", body
        assert isinstance(body["error"]["type"], str) and isinstance(body["error"]["message"], str)
    else:
        assert set(body) == {"error"}, body
        err = body["error"]
        assert {"message", "type", "param", "code"} <= set(err), err
        assert isinstance(err["message"], str) and isinstance(err["type"], str)


def test_fuzz_every_endpoint(gateway: Served) -> None:
    h = gateway.harness
    sent: list[str] = []
    reached: list[str] = []  # requests an upstream served

    @settings(
        max_examples=int(os.environ.get("TOKENOMY_FUZZ_EXAMPLES", "150")),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(req=requests(h.key))
    def one(req: Request) -> None:
        before = gateway.served()
        status, headers, payload = send(gateway, req)
        served = gateway.served() - before
        rid = headers.get("x-tokenomy-request-id")
        assert rid, (status, payload[:200])  # answered by the gateway, not by aiohttp
        sent.append(rid)
        fmt = ENDPOINTS[req.path]
        if status >= 300:
            assert_error_format(fmt, payload)
        h.flush()
        ev = h.store.get_event(rid)
        assert ev is not None, f"request {rid} ({status}) is not on the ledger"
        assert ev.status == status, (ev, status)
        if status >= 500:
            assert ev.error_kind in UPSTREAM_KINDS and served == 1, (status, ev.error_kind)
        assert ev.error_kind != "internal_error", ev.error_message
        if status == 200:  # served upstream, unless counted offline (and said so)
            assert served == (0 if headers.get("x-tokenomy-estimated") == "true" else 1)
        if served:
            assert ev.provider and ev.upstream_model, ev
            reached.append(rid)

    one()
    # Every request has exactly one event, and every call an upstream served is among them.
    h.flush()
    events = h.store.events()
    assert sorted(e.id for e in events) == sorted(sent)
    assert len(reached) == gateway.served() > 0
    recorded = {e.id: e for e in events}
    assert all(
        recorded[rid].status < 400 or recorded[rid].error_kind in UPSTREAM_KINDS for rid in reached
    )
