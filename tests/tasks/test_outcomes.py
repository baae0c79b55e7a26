"""POST /v1/tasks/{task_id}/outcome: authorization, validation, idempotency, replacement;
and the task headers other tools already send."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from tests.gateway.harness import Harness, running_gateway
from tokenomy.tasks.storage import get_outcome


@pytest.fixture
async def gw(sqlite_url: str, upstream_keys: None) -> AsyncIterator[Harness]:
    async with running_gateway(sqlite_url) as h:
        yield h


async def _chat(h: Harness, headers: dict[str, str], key: str | None = None) -> int:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            h.url + "/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key or h.key}", **headers},
        ) as r,
    ):
        await r.read()
        return r.status


async def _outcome(
    h: Harness, task: str, body: Any, key: str | None = None, raw: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key or h.key}"} if key != "" else {}
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            f"{h.url}/v1/tasks/{task}/outcome",
            data=raw,
            json=None if raw is not None else body,
            headers={**headers, "Content-Type": "application/json"},
        ) as r,
    ):
        return r.status, await r.json()


async def test_only_the_tasks_team_may_record_its_outcome(gw: Harness) -> None:
    assert await _chat(gw, {"X-Tokenomy-Task": "t-1"}) == 200
    _, ops = gw.store.create_key(org="acme", team="ops", user="bob")
    _, other_org = gw.store.create_key(org="globex", team="research", user="eve")
    for key in (ops, other_org):
        status, body = await _outcome(gw, "t-1", {"status": "succeeded"}, key)
        assert status == 404 and body["error"]["code"] == "not_found"
    status, body = await _outcome(gw, "no-such-task", {"status": "succeeded"})
    assert status == 404
    status, body = await _outcome(gw, "t-1", {"status": "succeeded"}, key="")
    assert status == 401 and body["error"]["code"] == "invalid_api_key"
    assert get_outcome(gw.store, "acme", "t-1") is None

    status, body = await _outcome(gw, "t-1", {"status": "succeeded", "value_usd": 0.1})
    assert status == 200, body
    assert body["status"] == "succeeded" and body["replaced"] is False
    stored = get_outcome(gw.store, "acme", "t-1")
    assert stored is not None and stored.value_nanos == 100_000_000  # exact, no float


async def test_posting_again_replaces_and_an_outcome_id_makes_retries_idempotent(
    gw: Harness,
) -> None:
    assert await _chat(gw, {"X-Tokenomy-Task": "t-2"}) == 200
    first = {"status": "failed", "outcome_id": "run-1", "metrics": {"tests": 3}}
    assert (await _outcome(gw, "t-2", first))[0] == 200
    # The same outcome_id again (a retry after a lost answer): nothing changes.
    status, body = await _outcome(gw, "t-2", {**first, "status": "succeeded"})
    assert status == 200 and body["status"] == "failed" and body["replaced"] is False
    # A new post replaces the outcome.
    status, body = await _outcome(
        gw,
        "t-2",
        {"status": "succeeded", "value_usd": 12.5, "note": "fixed", "outcome_id": "run-2"},
    )
    assert status == 200 and body["replaced"] is True
    stored = get_outcome(gw.store, "acme", "t-2")
    assert stored is not None
    assert (stored.status, stored.value_nanos, stored.note) == (
        "succeeded",
        12_500_000_000,
        "fixed",
    )
    assert stored.metrics == {}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "status"),
        ({"status": "done"}, "status"),
        ({"status": "succeeded", "value_usd": "12"}, "value_usd"),
        ({"status": "succeeded", "value_usd": True}, "value_usd"),
        ({"status": "succeeded", "value_usd": 1e12}, "value_usd"),
        ({"status": "succeeded", "metrics": {"x": "1"}}, "metrics.x"),
        ({"status": "succeeded", "metrics": [1]}, "metrics"),
        ({"status": "succeeded", "metrics": {f"m{i}": i for i in range(65)}}, "metrics"),
        ({"status": "succeeded", "note": "x" * 2001}, "note"),
        ({"status": "succeeded", "note": 5}, "note"),
        ({"status": "succeeded", "outcome_id": "a\nb"}, "outcome_id"),
        ({"status": "succeeded", "colour": "red"}, "colour"),
    ],
)
async def test_outcome_bodies_are_validated(gw: Harness, body: Any, param: str) -> None:
    assert await _chat(gw, {"X-Tokenomy-Task": "t-3"}) == 200
    status, answer = await _outcome(gw, "t-3", body)
    assert status == 400, answer
    assert answer["error"]["type"] == "invalid_request_error"
    assert answer["error"]["param"] == param


async def test_outcome_body_limits(gw: Harness) -> None:
    assert await _chat(gw, {"X-Tokenomy-Task": "t-4"}) == 200
    status, answer = await _outcome(
        gw, "t-4", None, raw=b'{"status": "succeeded", "value_usd": NaN}'
    )
    assert status == 400
    status, answer = await _outcome(gw, "t-4", None, raw=b"[1]")
    assert status == 400
    big = b'{"status": "succeeded", "note": "' + b"x" * 70_000 + b'"}'
    status, answer = await _outcome(gw, "t-4", None, raw=big)
    assert status == 413 and answer["error"]["code"] == "request_too_large"
    status, answer = await _outcome(
        gw, "t-4", None, raw=b'{"status": "succeeded", "value_usd": 0.123456789123}'
    )
    assert status == 200 and Decimal(str(answer["value_usd"])) == Decimal("0.123456789")


async def test_task_id_from_the_headers_other_tools_send(gw: Harness) -> None:
    cases = [
        ({"Helicone-Session-Id": "helicone-7"}, "helicone-7"),
        ({"x-litellm-trace-id": "litellm-9"}, "litellm-9"),
        ({"X-Tokenomy-Task": "mine", "Helicone-Session-Id": "theirs"}, "mine"),
        ({"Helicone-Session-Id": "h", "x-litellm-trace-id": "l"}, "h"),
    ]
    for headers, _ in cases:
        assert await _chat(gw, headers) == 200
    assert await _chat(gw, {"X-Tokenomy-Task": "child", "X-Tokenomy-Parent-Task": "mine"}) == 200
    tasks = [(e.task, e.parent_task) for e in sorted(gw.events(), key=lambda e: e.ts_ms)]
    assert tasks == [*((task, "") for _, task in cases), ("child", "mine")]
    # Checked like every recorded header.
    assert await _chat(gw, {"Helicone-Session-Id": "x" * 300}) == 400
    assert await _chat(gw, {"X-Tokenomy-Parent-Task": "p" * 300}) == 400
    # The alias identifies the task for its outcome too.
    assert (await _outcome(gw, "helicone-7", {"status": "abandoned"}))[0] == 200
    # A task id with a slash, sent URL-encoded.
    assert await _chat(gw, {"X-Tokenomy-Task": "repo/issue-9"}) == 200
    assert (await _outcome(gw, "repo%2Fissue-9", {"status": "succeeded"}))[0] == 200
    assert get_outcome(gw.store, "acme", "repo/issue-9") is not None
