"""Circuit breaker per deployment: stop sending to a deployment that keeps failing.

Closed: calls flow; each outcome is kept for ``window_s``. When at least ``min_requests``
outcomes are in the window and the share of failures reaches ``failure_rate``, the breaker
opens. Open: the deployment is skipped until ``cooldown_s`` has passed; then one call (the
probe) may go. The probe's success closes the breaker (with a fresh window); its failure
opens it for another cool-down. A probe that never reports back (its request was cancelled)
frees the slot after one more cool-down.

An upstream's ``retry-after`` also takes its deployment out of plans until then (``cool``).
Only the upstream's own faults count (5xx, 408/409/429, connection errors, timeouts, streams
that fail before their first content); a client's bad request says nothing about health.
"""

from __future__ import annotations

from collections import deque

from tokenomy.config import BreakerSection

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


_BUCKETS = 10  # the window is counted in this many slices: O(1) memory per deployment


class Breaker:
    __slots__ = (
        "_buckets",
        "_calls",
        "_failed",
        "_failures",
        "_start",
        "_total",
        "_width",
        "cool_until",
        "opened_at",
        "policy",
        "probe_at",
        "state",
    )

    def __init__(self, policy: BreakerSection) -> None:
        self.policy = policy
        self.state = CLOSED
        self.opened_at = 0.0
        self.probe_at = 0.0  # monotonic start of the probe in flight (0: none)
        self.cool_until = 0.0  # the upstream's retry-after: skipped until then
        self._width = policy.window_s / _BUCKETS
        # Finished slices of the window: (start, calls, failures); the current one is in
        # the attributes below, so that counting a success allocates nothing.
        self._buckets: deque[tuple[float, int, int]] = deque()
        self._start = float("-inf")
        self._calls = self._failed = 0
        self._total = self._failures = 0  # over the whole window, current slice included

    def available(self, now: float) -> bool:
        """Whether a call may be planned on this deployment now (does not take the probe)."""
        if self.state == CLOSED:
            return now >= self.cool_until
        if now - self.opened_at < self.policy.cooldown_s:
            return False
        return not self.probe_at or now - self.probe_at >= self.policy.cooldown_s

    def acquire(self, now: float) -> bool:
        """Just before a call: True if it may go (takes the single probe when open)."""
        if self.state == CLOSED:
            return now >= self.cool_until
        if not self.available(now):
            return False
        self.state = HALF_OPEN
        self.probe_at = now
        return True

    def record(self, ok: bool, now: float) -> None:
        """The outcome of a call that ``acquire`` let through."""
        if self.state != CLOSED:
            if ok:
                self.state, self.probe_at = CLOSED, 0.0
                self._reset()
            else:
                self.state, self.opened_at, self.probe_at = OPEN, now, 0.0
            return
        if now - self._start >= self._width:
            self._roll(now)
        self._calls += 1
        self._total += 1
        if ok:
            return
        self._failed += 1
        self._failures += 1
        policy = self.policy
        if (
            self._total >= policy.min_requests
            and self._failures >= policy.failure_rate * self._total
        ):
            self.state, self.opened_at = OPEN, now
            self._reset()

    def cool(self, until: float) -> None:
        """The upstream asked for a pause (``retry-after``): plans skip it until then."""
        self.cool_until = max(self.cool_until, until)

    def _roll(self, now: float) -> None:
        """Start a new slice; forget the slices that left the window."""
        buckets = self._buckets
        if self._calls:
            buckets.append((self._start, self._calls, self._failed))
        self._start, self._calls, self._failed = now, 0, 0
        horizon = now - self.policy.window_s
        while buckets and buckets[0][0] < horizon:
            _, calls, failures = buckets.popleft()
            self._total -= calls
            self._failures -= failures

    def _reset(self) -> None:
        self._buckets.clear()
        self._start = float("-inf")
        self._calls = self._failed = self._total = self._failures = 0
