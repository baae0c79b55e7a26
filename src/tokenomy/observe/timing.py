"""The gateway's own time per call: its duration minus the time spent waiting on upstreams.

The wait is measured by the response class of the gateway's client session
(``TimedResponse``): a request written to an upstream opens the wait, its response body
read in full (or failing) closes it. A stream's wait stays open until the call is
recorded, so for a stream everything from the request sent upstream to the end of the
stream counts as upstream time (relaying its chunks included), and the gateway's own
time is what it spends before (auth, parsing, routing, budgets, opening a connection)
and after (metering, pricing, recording).

The wait lives in a context variable: aiohttp runs every request in a task of its own,
and the response object is made inside it, so no lookup table is needed and nothing
leaks from one request to the next. Several attempts (retries, fallbacks) add up.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from typing import Any

import aiohttp

from tokenomy.events import UsageEvent


class _Wait:
    __slots__ = ("since", "waited")

    def __init__(self) -> None:
        self.waited = 0.0
        self.since: float | None = None


_WAIT: ContextVar[_Wait | None] = ContextVar("tokenomy_upstream_wait", default=None)


class TimedResponse(aiohttp.ClientResponse):
    """The gateway client's response class while an observer reads the gateway's own time.

    aiohttp creates the response object as soon as the request has been written to the
    upstream's connection: that opens the wait. ``read()`` returning (the whole body is
    in, or reading it failed) closes it. A response class costs two method calls per
    request; an aiohttp ``TraceConfig`` would cost a signal dispatch (an awaited
    coroutine and a parameters object) for each of its ~8 events, measured at ~8% of the
    gateway's instructions per request.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        wait = _WAIT.get()
        if wait is None:
            wait = _Wait()
            _WAIT.set(wait)
        if wait.since is None:
            wait.since = time.perf_counter()

    async def read(self) -> bytes:
        try:
            return await super().read()
        finally:
            wait = _WAIT.get()
            if wait is not None and wait.since is not None:
                wait.waited += time.perf_counter() - wait.since
                wait.since = None


def upstream_wait_s() -> float:
    """Seconds this request has waited on upstreams so far (an open wait counts to now)."""
    wait = _WAIT.get()
    if wait is None:
        return 0.0
    if wait.since is None:
        return wait.waited
    return wait.waited + time.perf_counter() - wait.since


def overhead_s(ev: UsageEvent) -> float:
    """The gateway's own time for the call ``ev`` (recorded just now): duration − wait."""
    return max(ev.latency_ms / 1000 - upstream_wait_s(), 0.0)
