"""Failover that really fails over: what each fake served against what the ledger says.

Every test counts the calls the fakes served and the events on the ledger: one client
request is one event, whatever number of attempts it took.
"""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import openai
import pytest

from tests.gateway.harness import Fleet, running_fleet
from tests.routing.helpers import CHAT, chat, client

RETRY_FAST = {"max_attempts": 3, "backoff_initial_ms": 10, "backoff_max_ms": 20}


def failover(first: str, *, second: str = "gpt-4o", **extra: Any) -> list[dict[str, Any]]:
    """Model ``m``: cloud (upstream id ``first``, e.g. a fake scenario) then cloud2."""
    return [
        {
            "name": "m",
            "deployments": [
                {"provider": "cloud", "model": first},
                {"provider": "cloud2", "model": second},
            ],
            **extra,
        }
    ]


def one_event(f: Fleet, *, unreachable: int = 0) -> Any:
    """The one ledger event of the one client request; its attempts are what the fakes
    served (plus attempts on ``unreachable`` upstreams)."""
    (ev,) = f.events()
    assert ev.attempts == sum(f.served().values()) + unreachable
    return ev


async def test_retry_after_is_honoured_before_the_next_attempt(sqlite_url: str) -> None:
    models = [
        {
            "name": "m",
            "deployments": [{"provider": "cloud", "model": "gpt-4o"}],
            "retry": {"max_attempts": 2, "backoff_initial_ms": 10, "backoff_max_ms": 20},
        }
    ]
    async with running_fleet(sqlite_url, models) as f:
        f.fakes["cloud"].next_scenario.append("error-429+retry-after-2")
        status, _, headers = await chat(f, "m")
        assert status == 200
        first, second = f.fakes["cloud"].requests
        assert second.at - first.at >= 1.8  # behaviour: the upstream asked for 2 s
        assert headers["x-tokenomy-attempts"] == "2"
        assert headers["x-tokenomy-fallback-reason"] == "http_429"
        ev = one_event(f)
        assert (ev.status, ev.attempts, ev.fallback_reason) == (200, 2, "http_429")


async def test_a_persistent_429_makes_no_more_than_max_attempts(sqlite_url: str) -> None:
    models = [
        {
            "name": "m",
            "deployments": [
                {"provider": "cloud", "model": "fake-error-429"},
                {"provider": "cloud2", "model": "fake-error-429"},
            ],
            "retry": RETRY_FAST,
        }
    ]
    async with running_fleet(sqlite_url, models) as f:
        status, body, headers = await chat(f, "m")
        assert status == 429 and body["error"]["code"] == "upstream_error"
        assert headers["x-tokenomy-attempts"] == "3"
        assert f.served()["cloud"] + f.served()["cloud2"] == 3
        ev = one_event(f)
        assert (ev.status, ev.attempts, ev.error_kind) == (429, 3, "upstream_error")
        assert ev.cost_nanos == 0


@pytest.mark.parametrize("stream", [False, True])
async def test_a_silent_upstream_is_cut_at_ttft_and_the_fallback_serves(
    sqlite_url: str, stream: bool
) -> None:
    models = [
        {
            "name": "m",
            "deployments": [
                {"provider": "box", "model": "fake-slow-10s", "ttft_timeout_s": 0.3},
                {"provider": "cloud", "model": "gpt-4o"},
            ],
        }
    ]
    async with running_fleet(sqlite_url, models) as f:
        status, _, headers = await chat(f, "m", stream=stream)
        assert status == 200
        assert headers["x-tokenomy-deployment"] == "cloud/gpt-4o"
        assert headers["x-tokenomy-fallback-reason"] == "ttft_timeout"
        assert f.served()["box"] == 1 and f.served()["cloud"] == 1
        ev = one_event(f)
        assert (ev.attempts, ev.fallback_reason, ev.deployment) == (
            2,
            "ttft_timeout",
            "cloud/gpt-4o",
        )
        assert ev.error_kind == "" and ev.usage.output_tokens > 0


async def test_a_stream_silent_after_its_start_up_events_is_cut_at_ttft(sqlite_url: str) -> None:
    models = [
        {
            "name": "m",
            "deployments": [
                {"provider": "box", "model": "fake-hang-10s", "ttft_timeout_s": 0.3},
                {"provider": "cloud", "model": "gpt-4o"},
            ],
        }
    ]
    async with running_fleet(sqlite_url, models) as f, client(f) as c:
        stream = await c.chat.completions.create(model="m", messages=CHAT, stream=True)  # type: ignore[arg-type]
        text = "".join([ch.choices[0].delta.content or "" async for ch in stream if ch.choices])
        assert text.startswith("This is a fake reply")
        assert f.served() == {"cloud": 1, "cloud2": 0, "box": 1, "ant": 0}
        assert one_event(f).fallback_reason == "ttft_timeout"


@pytest.mark.parametrize(
    "fault", ["fail-before-content", "end-before-content", "garbage", "non-stream-body"]
)
async def test_a_stream_failing_before_content_fails_over_and_the_client_sees_one_clean_stream(
    sqlite_url: str, fault: str
) -> None:
    async with running_fleet(sqlite_url, failover(f"fake-{fault}")) as f, client(f) as c:
        stream = await c.chat.completions.create(model="m", messages=CHAT, stream=True)  # type: ignore[arg-type]
        chunks = [ch async for ch in stream]
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        assert text.startswith("This is a fake reply")
        roles = [
            ch.choices[0].delta.role for ch in chunks if ch.choices and ch.choices[0].delta.role
        ]
        assert roles == ["assistant"]  # one stream: the failed one's start-up never showed
        assert f.served()["cloud"] == 1 and f.served()["cloud2"] == 1
        ev = one_event(f)
        assert (ev.status, ev.error_kind, ev.attempts) == (200, "", 2)
        assert ev.fallback_reason == "stream_failed_before_content"
        assert ev.deployment == "cloud2/gpt-4o" and ev.usage.output_tokens > 0


async def test_an_anthropic_stream_failing_before_content_fails_over(sqlite_url: str) -> None:
    models = [
        {
            "name": "claude",
            "deployments": [
                {"provider": "ant", "model": "fake-fail-before-content"},
                {"provider": "cloud", "model": "gpt-4o"},
            ],
        }
    ]
    async with (
        running_fleet(sqlite_url, models) as f,
        anthropic.AsyncAnthropic(base_url=f.url, api_key=f.key, max_retries=0) as c,
        c.messages.stream(model="claude", max_tokens=64, messages=CHAT) as s,  # type: ignore[arg-type]
    ):
        text = await s.get_final_text()
        assert text.startswith("This is a fake reply")
        assert f.served()["ant"] == 1 and f.served()["cloud"] == 1
        ev = one_event(f)
        assert (ev.attempts, ev.provider, ev.error_kind) == (2, "cloud", "")


async def test_a_stream_failing_before_content_with_nothing_left_is_a_proper_http_error(
    sqlite_url: str,
) -> None:
    models = [
        {"name": "m", "deployments": [{"provider": "cloud", "model": "fake-fail-before-content"}]}
    ]
    async with running_fleet(sqlite_url, models) as f, client(f) as c:
        with pytest.raises(openai.APIStatusError) as exc:
            await c.chat.completions.create(model="m", messages=CHAT, stream=True)  # type: ignore[arg-type]
        assert exc.value.status_code == 502
        ev = one_event(f)
        assert ev.status == 502 and ev.error_kind == "upstream_error" and ev.attempts == 1


async def test_a_stream_cut_after_content_is_an_error_never_a_success(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, failover("fake-drop-mid-stream")) as f, client(f) as c:
        stream = await c.chat.completions.create(model="m", messages=CHAT, stream=True)  # type: ignore[arg-type]
        with pytest.raises(openai.APIError):
            async for _ in stream:
                pass
        assert f.served()["cloud"] == 1 and f.served()["cloud2"] == 0  # committed: no failover
        ev = one_event(f)
        assert ev.error_kind.startswith("upstream") and ev.attempts == 1
        assert ev.usage.output_tokens > 0  # what was produced is billed


async def test_a_content_policy_refusal_gets_exactly_one_attempt(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, failover("fake-content-policy", retry=RETRY_FAST)) as f:
        status, body, headers = await chat(f, "m")
        assert status == 400 and "safety system" in body["error"]["message"]
        assert headers["x-tokenomy-attempts"] == "1"
        assert f.served()["cloud"] == 1 and f.served()["cloud2"] == 0
        ev = one_event(f)
        assert (ev.attempts, ev.fallback_reason) == (1, "")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_other_4xx_are_never_retried(sqlite_url: str, status: int) -> None:
    async with running_fleet(sqlite_url, failover(f"fake-error-{status}", retry=RETRY_FAST)) as f:
        assert (await chat(f, "m"))[0] == status
        assert f.served()["cloud"] == 1 and f.served()["cloud2"] == 0
        assert one_event(f).attempts == 1


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503])
async def test_retryable_statuses_fail_over(sqlite_url: str, status: int) -> None:
    async with running_fleet(sqlite_url, failover(f"fake-error-{status}")) as f:
        status_, _, headers = await chat(f, "m")
        assert status_ == 200 and headers["x-tokenomy-fallback-reason"] == f"http_{status}"
        assert f.served()["cloud"] == 1 and f.served()["cloud2"] == 1
        assert one_event(f).attempts == 2


async def test_a_connection_error_fails_over(sqlite_url: str) -> None:
    models = failover("gpt-4o")
    async with running_fleet(
        sqlite_url, models, providers={"cloud": {"base_url": "http://127.0.0.1:9/v1"}}
    ) as f:
        status, _, headers = await chat(f, "m")
        assert status == 200 and headers["x-tokenomy-fallback-reason"] == "unavailable"
        assert f.served()["cloud2"] == 1 and one_event(f, unreachable=1).attempts == 2


@pytest.mark.parametrize("fault", ["malformed-json", "garbage", "drop-mid-stream"])
async def test_a_broken_non_streamed_answer_fails_over(sqlite_url: str, fault: str) -> None:
    async with running_fleet(sqlite_url, failover(f"fake-{fault}")) as f:
        status, body, headers = await chat(f, "m")
        assert status == 200 and body["choices"][0]["message"]["content"]
        assert headers["x-tokenomy-deployment"] == "cloud2/gpt-4o"
        assert one_event(f).attempts == 2


async def test_an_anthropic_client_gets_its_own_error_when_nothing_is_left(
    sqlite_url: str,
) -> None:
    models = [
        {"name": "c", "deployments": [{"provider": "ant", "model": "fake-end-before-content"}]}
    ]
    async with (
        running_fleet(sqlite_url, models) as f,
        anthropic.AsyncAnthropic(base_url=f.url, api_key=f.key, max_retries=0) as c,
    ):
        with pytest.raises(anthropic.APIStatusError) as exc:
            async with c.messages.stream(model="c", max_tokens=64, messages=CHAT) as s:  # type: ignore[arg-type]
                await s.get_final_text()
        assert exc.value.status_code == 502
        body = exc.value.body
        assert isinstance(body, dict) and body["type"] == "error"
        assert one_event(f).status == 502


@pytest.mark.parametrize("fake", ["cloud", "ant"])
async def test_a_context_window_error_falls_back_to_the_named_model(
    sqlite_url: str, fake: str
) -> None:
    models = [
        {
            "name": "small",
            "deployments": [{"provider": fake, "model": "fake-context-length"}],
            "context_window_fallback": "big",
        },
        {"name": "big", "deployments": [{"provider": "cloud2", "model": "gpt-4.1"}]},
    ]
    async with running_fleet(sqlite_url, models) as f:
        status, body, headers = await chat(f, "small")
        assert status == 200, body
        assert headers["x-tokenomy-fallback-reason"] == "context_window"
        assert f.served()[fake] == 1 and f.fakes["cloud2"].last.json["model"] == "gpt-4.1"
        ev = one_event(f)
        assert (ev.model, ev.upstream_model, ev.attempts) == ("small", "gpt-4.1", 2)


async def test_a_context_window_error_without_fallback_is_answered_once(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, failover("fake-context-length")) as f:
        status, body, _ = await chat(f, "m")
        assert status == 400 and "maximum context length" in body["error"]["message"]
        assert f.served()["cloud2"] == 0


async def test_retry_after_keeps_other_requests_away_until_then(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, failover("gpt-4o")) as f:
        f.fakes["cloud"].next_scenario.append("error-429+retry-after-1")
        assert (await chat(f, "m"))[2]["x-tokenomy-fallback-reason"] == "http_429"
        _, _, headers = await chat(f, "m")  # cloud asked for 1 s: not tried meanwhile
        assert headers["x-tokenomy-deployment"] == "cloud2/gpt-4o"
        assert headers["x-tokenomy-attempts"] == "1"
        await asyncio.sleep(1.1)
        assert (await chat(f, "m"))[2]["x-tokenomy-deployment"] == "cloud/gpt-4o"
        assert f.served() == {"cloud": 2, "cloud2": 2, "box": 0, "ant": 0}


async def test_retry_after_on_every_deployment_waits_instead_of_giving_up(
    sqlite_url: str,
) -> None:
    models = [
        {
            "name": "m",
            "deployments": [
                {"provider": "cloud", "model": "gpt-4o"},
                {"provider": "cloud2", "model": "gpt-4o"},
            ],
            "retry": {"max_attempts": 3, "backoff_initial_ms": 10, "backoff_max_ms": 20},
        }
    ]
    async with running_fleet(sqlite_url, models) as f:
        f.fakes["cloud"].next_scenario.append("error-429+retry-after-1")
        f.fakes["cloud2"].next_scenario.append("error-429+retry-after-1")
        status, _, headers = await chat(f, "m")
        assert status == 200 and headers["x-tokenomy-attempts"] == "3"
        first, second = f.fakes["cloud"].requests
        assert second.at - first.at >= 0.9
