"""The circuit breaker: opens on a failure rate, one probe per cool-down, closes on success."""

from __future__ import annotations

import asyncio

from tests.gateway.harness import running_fleet
from tests.routing.helpers import chat
from tokenomy.config import BreakerSection
from tokenomy.routing.breaker import CLOSED, HALF_OPEN, OPEN, Breaker

POLICY = BreakerSection(failure_rate=0.5, window_s=10, min_requests=4, cooldown_s=5)


def test_opens_only_past_the_minimum_number_of_requests_and_the_rate() -> None:
    b = Breaker(POLICY)
    for t, ok in enumerate([False, True, False]):
        assert b.acquire(t)
        b.record(ok, t)
    assert b.state == CLOSED  # 3 < min_requests
    b.record(False, 3.0)  # 3 failures of 4
    assert b.state == OPEN and not b.available(4.0) and not b.acquire(4.0)


def test_successes_keep_it_closed_and_old_outcomes_leave_the_window() -> None:
    b = Breaker(POLICY)
    for t in range(4):
        b.record(t % 2 == 0, float(t))  # 2 of 4 failed: at the rate
    assert b.state == OPEN
    b = Breaker(POLICY)
    for t in range(3):
        b.record(False, float(t))
    b.record(True, 20.0)  # the failures are older than the window
    b.record(False, 21.0)
    assert b.state == CLOSED


def test_one_probe_per_cool_down_and_recovery() -> None:
    b = Breaker(POLICY)
    for t in range(4):
        b.record(False, float(t))
    opened = 3.0
    assert not b.acquire(opened + 4.9)
    assert b.acquire(opened + 5.0) and b.state == HALF_OPEN  # the probe
    assert not b.acquire(opened + 5.1) and not b.available(opened + 5.1)  # only one
    b.record(False, opened + 6.0)  # probe failed: another cool-down
    assert b.state == OPEN and not b.acquire(opened + 10.0)
    assert b.acquire(opened + 11.0)
    b.record(True, opened + 11.5)  # probe succeeded
    assert b.state == CLOSED and b.acquire(opened + 11.6)


def test_a_probe_that_never_reports_frees_the_slot_after_a_cool_down() -> None:
    b = Breaker(POLICY)
    for t in range(4):
        b.record(False, float(t))
    assert b.acquire(8.0)
    assert not b.acquire(12.0)
    assert b.acquire(13.0)


async def test_open_breaker_skips_the_deployment_probes_once_and_recovers(
    sqlite_url: str,
) -> None:
    models = [
        {
            "name": "m",
            "deployments": [
                {"provider": "cloud", "model": "gpt-4o"},
                {"provider": "cloud2", "model": "gpt-4o"},
            ],
            "breaker": {"failure_rate": 0.5, "window_s": 30, "min_requests": 2, "cooldown_s": 0.5},
        }
    ]
    async with running_fleet(sqlite_url, models) as f:
        cloud = f.fakes["cloud"]
        cloud.scenario = ["error-503"]
        for _ in range(2):  # each fails over to cloud2; the second failure opens it
            assert (await chat(f, "m"))[0] == 200
        assert f.served()["cloud"] == 2 and f.served()["cloud2"] == 2
        for _ in range(3):  # open: cloud is not called at all
            _, _, headers = await chat(f, "m")
            assert headers["x-tokenomy-attempts"] == "1"
        assert f.served()["cloud"] == 2 and f.served()["cloud2"] == 5
        await asyncio.sleep(0.6)
        cloud.scenario = ["slow-200ms"]  # healthy again, and slow enough to overlap
        results = await asyncio.gather(*(chat(f, "m") for _ in range(4)))
        assert all(r[0] == 200 for r in results)
        assert f.served()["cloud"] == 3  # exactly one probe while it was half open
        for _ in range(2):  # the probe succeeded: closed, cloud serves first again
            assert (await chat(f, "m"))[2]["x-tokenomy-deployment"] == "cloud/gpt-4o"
        assert f.served()["cloud"] == 5
        evs = f.events()
        assert len(evs) == 11 and sum(e.attempts for e in evs) == sum(f.served().values())
