"""The data policy in the request path: a confidential request never reaches a cloud fake,
not first, not as a retry, a context-window fallback or a downgrade."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.gateway.harness import Fleet, running_fleet
from tests.routing.helpers import chat, client

POLICY = {"policy": {"confidential": ["local"], "restricted": ["local"]}}
EMAIL = [{"role": "user", "content": "Write to jane.doe@acmecorp.com about the invoice."}]
PLAIN = [{"role": "user", "content": "What is the capital of France?"}]


def cloud_then_box(**extra: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": "m",
            "deployments": [
                {"provider": "cloud", "model": "gpt-4o"},
                {"provider": "box", "model": "gemma"},
            ],
            **extra,
        }
    ]


def cloud_texts(f: Fleet) -> str:
    return "".join(
        r.body.decode()
        for name, fake in f.fakes.items()
        if not name.startswith("box")
        for r in fake.requests
    )


async def test_a_detected_identifier_goes_only_to_a_local_deployment(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, cloud_then_box(), sections=POLICY) as f:
        status, _, headers = await chat(f, "m", messages=EMAIL)
        assert status == 200 and headers["x-tokenomy-location"] == "local"
        status, _, headers = await chat(f, "m", messages=PLAIN)
        assert status == 200 and headers["x-tokenomy-location"] == "cloud"
        assert "jane.doe" not in cloud_texts(f)
        evs = sorted(f.events(), key=lambda e: e.ts_ms)
        assert [(e.data_class, e.location) for e in evs] == [
            ("confidential", "local"),
            ("internal", "cloud"),
        ]


async def test_the_header_label_counts_and_tool_results_are_scanned(sqlite_url: str) -> None:
    tool_msgs = [
        {"role": "user", "content": "Look the customer up."},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "crm", "arguments": "{}"}}
            ],
        },
        {
            "role": "tool",
            "tool_call_id": "c1",
            "content": "phone +1 415 555 2671, jane@corp.example",
        },
    ]
    async with running_fleet(sqlite_url, cloud_then_box(), sections=POLICY) as f:
        _, _, h1 = await chat(f, "m", headers={"X-Tokenomy-Data-Class": "confidential"})
        _, _, h2 = await chat(f, "m", messages=tool_msgs)
        assert h1["x-tokenomy-location"] == h2["x-tokenomy-location"] == "local"
        assert f.served()["cloud"] == 0


async def test_failover_never_leaves_the_allowed_places(sqlite_url: str) -> None:
    models = [
        {
            "name": "m",
            "deployments": [
                {"provider": "box", "model": "fake-error-503"},
                {"provider": "cloud", "model": "gpt-4o"},
            ],
            "retry": {"max_attempts": 3, "backoff_initial_ms": 10, "backoff_max_ms": 20},
        }
    ]
    async with running_fleet(sqlite_url, models, sections=POLICY) as f:
        status, _, headers = await chat(f, "m", messages=EMAIL)
        assert status == 503 and headers["x-tokenomy-attempts"] == "3"
        assert f.served()["box"] == 3 and f.served()["cloud"] == 0
        (ev,) = f.events()
        assert ev.data_class == "confidential" and ev.attempts == 3


async def test_no_allowed_deployment_is_a_403_data_policy_and_nothing_is_sent(
    sqlite_url: str,
) -> None:
    models = [{"name": "m", "deployments": [{"provider": "cloud", "model": "gpt-4o"}]}]
    async with running_fleet(sqlite_url, models, sections=POLICY) as f, client(f) as c:
        with pytest.raises(openai.PermissionDeniedError) as exc:
            await c.chat.completions.create(model="m", messages=EMAIL)  # type: ignore[arg-type]
        err = exc.value.body
        assert isinstance(err, dict) and err["type"] == "data_policy"
        assert "confidential" in err["message"] and "cloud" in err["message"]
        assert sum(f.served().values()) == 0
        (ev,) = f.events()
        assert (ev.status, ev.error_kind, ev.data_class, ev.attempts) == (
            403,
            "data_policy",
            "confidential",
            0,
        )


async def test_fallbacks_and_downgrades_stay_inside_the_policy(sqlite_url: str) -> None:
    models = [
        {
            "name": "m",
            "deployments": [{"provider": "box", "model": "fake-context-length"}],
            "context_window_fallback": "big",
        },
        {"name": "big", "deployments": [{"provider": "cloud", "model": "gpt-4.1"}]},
    ]
    async with running_fleet(sqlite_url, models, sections=POLICY) as f:
        status, _, _ = await chat(f, "m", messages=EMAIL)
        assert status == 400  # the larger model is cloud-only: no fallback for this data
        assert f.served()["cloud"] == 0
        status, _, headers = await chat(f, "m", messages=PLAIN)
        assert status == 200 and headers["x-tokenomy-fallback-reason"] == "context_window"


async def test_responses_input_and_instructions_are_scanned(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, cloud_then_box(), sections=POLICY) as f, client(f) as c:
        raw = await c.responses.with_raw_response.create(
            model="m", instructions="Reply to jane.doe@acmecorp.com", input="Draft it."
        )
        assert raw.headers["x-tokenomy-location"] == "local"
        raw = await c.responses.with_raw_response.create(
            model="m", input=[{"role": "user", "content": "Card 4111 1111 1111 1111 failed"}]
        )
        assert raw.headers["x-tokenomy-location"] == "local"
        assert f.served()["cloud"] == 0 and "jane.doe" not in cloud_texts(f)


async def test_without_a_policy_the_label_is_recorded_and_checked(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, cloud_then_box()) as f:
        status, _, headers = await chat(f, "m", headers={"X-Tokenomy-Data-Class": "Confidential"})
        assert status == 200 and headers["x-tokenomy-location"] == "cloud"  # nothing restricts
        status, body, _ = await chat(f, "m", headers={"X-Tokenomy-Data-Class": "secret"})
        assert status == 400 and "X-Tokenomy-Data-Class" in body["error"]["message"]
        evs = sorted(f.events(), key=lambda e: e.ts_ms)
        assert [(e.status, e.data_class) for e in evs] == [(200, "confidential"), (400, "")]
