"""The gateway's own time per call: its duration minus the time spent waiting on upstreams.

The gateway measures the wait itself, on the call (``gateway.proxy.Call.upstream_s``), and
passes it to ``Observers.on_event`` with the recorded event. Several attempts (retries,
fallbacks) add up:

* a unary attempt waits from just before its request is sent until its response body
  has been read in full (or sending or reading failed);
* a stream waits from its first request sent until the call is recorded, so everything
  from then to the end of the stream counts as upstream time (relaying its chunks
  included).

The gateway's own time is what it spends before (auth, parsing, routing, budgets) and
after (metering, pricing, recording). Two ``perf_counter()`` calls per attempt: an aiohttp
response class (one more Python class layer on every response) or a ``TraceConfig`` (a
signal dispatch for each of its ~8 events) measured dearer.
"""

from __future__ import annotations

from tokenomy.events import UsageEvent


def overhead_s(ev: UsageEvent, upstream_s: float) -> float:
    """The gateway's own time for the call ``ev``, which waited ``upstream_s`` upstream."""
    return max(ev.latency_ms / 1000 - upstream_s, 0.0)
