"""The tasks office of one gateway process: caps before a call, the shredder after it.

The gateway calls :meth:`TaskOffice.admit` for every call carrying a task id, after its
budgets are reserved and before the upstream is called: the per-task caps reserve (429
``task_cap_exceeded``) and what the step adds is fingerprinted (hashes of the new part of
the conversation only). :meth:`TaskOffice.finish` runs where the call is recorded, on
every exit path, exactly once: the cap hold settles (queued, not awaited) and the
detector sees the call. Findings are stored and alerted in the background, so neither
slows the response.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from dataclasses import dataclass, replace
from typing import Any, Protocol

from tokenomy.budgets.alerts import AlertSink
from tokenomy.config import Deployment, Settings
from tokenomy.events import Usage, UsageEvent
from tokenomy.ledger.store import Store
from tokenomy.money import nanos_to_usd
from tokenomy.pricing import PriceBook
from tokenomy.tasks import storage
from tokenomy.tasks.caps import CapOffice, Hold
from tokenomy.tasks.shredder import Detector, Finding, Observation
from tokenomy.wire import Endpoint
from tokenomy.wire.base import DEFAULT_OUTPUT_CAP
from tokenomy.wire.steps import Fragment

log = logging.getLogger("tokenomy.tasks")
MAX_KNOWN_TASKS = 200_000


class CallLike(Protocol):
    """What the office reads of the gateway's per-request state (``proxy.Call``)."""

    event: UsageEvent
    endpoint: Endpoint
    body: dict[str, Any] | None
    body_bytes: int
    deployment: Deployment | None
    bridge: Any
    worst: tuple[int, int, int | None] | None


@dataclass(slots=True)
class _Pending:
    items: int
    fragments: list[Fragment]
    hold: Hold | None
    call: CallLike
    cache_min: int
    cache_ttl_ms: int


class TaskOffice:
    def __init__(
        self,
        store: Store,
        settings: Settings,
        prices: PriceBook,
        alerts: AlertSink | None = None,
    ) -> None:
        section = settings.raw.tasks
        self.store = store
        self.settings = settings
        self.prices = prices
        self.alerts = alerts
        stale_ms = round(settings.gateway.request_timeout_s * 1000) + 60_000
        self.caps = CapOffice(store, section, stale_ms=stale_ms)
        self.detect = section.detect
        self.detector = Detector()
        self._pending: dict[str, _Pending] = {}
        # (org, task) → team of the tasks this process served lately: an outcome may come
        # in before the ledger writer has flushed the task's calls.
        self._teams: OrderedDict[tuple[str, str], str] = OrderedDict()
        self._jobs: set[asyncio.Task[None]] = set()

    # -- before the upstream -------------------------------------------------------------
    async def admit(self, call: CallLike) -> None:
        ev = call.event
        endpoint, body = call.endpoint, call.body
        if not ev.task or body is None or not endpoint.billed:
            return
        key = (ev.org, ev.task)
        if key not in self._teams:
            self._teams[key] = ev.team
            if len(self._teams) > MAX_KNOWN_TASKS:
                self._teams.popitem(last=False)
        items, fragments = 0, list[Fragment]()
        if self.detect:  # what this step adds: hashes of the new items only
            items, fragments = endpoint.step_fragments(body, self.detector.seen(ev.org, ev.task))
        hold = None
        if self.caps.active:
            tokens, cost = self._worst(call)
            hold = await self.caps.reserve(ev.org, ev.team, ev.agent, ev.task, ev.id, tokens, cost)
        if hold is None and not self.detect:
            return
        wire = call.bridge.upstream.wire if call.bridge is not None else endpoint.wire
        self._pending[ev.id] = _Pending(
            items,
            fragments,
            hold,
            call,
            wire.cache_min_tokens,
            round(wire.cache_ttl_s * 1000),
        )

    def _worst(self, call: CallLike) -> tuple[int, int]:
        """The call's worst case (tokens, cost): the budgets' if they computed one."""
        if call.worst is not None:
            i, o, c = call.worst
            return i + o, c or 0
        ev, body, dep = call.event, call.body or {}, call.deployment
        out = call.endpoint.output_cap(body)
        if out is None:
            model = self.settings.models.get(ev.model)
            out = (model.max_output_tokens if model else None) or DEFAULT_OUTPUT_CAP
        # Byte-level tokenizers never make more tokens than the body has bytes.
        cost = self.prices.max_cost_nanos(dep, call.body_bytes, out, ev.ts_ms) if dep else 0
        return call.body_bytes + out, cost or 0

    # -- once recorded -------------------------------------------------------------------
    def finish(self, ev: UsageEvent) -> None:
        """The call is recorded (any exit path): settle its cap hold, show it the detector."""
        p = self._pending.pop(ev.id, None)
        if p is None:
            return
        if p.hold is not None:
            self.caps.settle(p.hold, ev.usage.total_tokens, ev.cost_nanos)
        if not self.detect:
            return
        # The detectors run once the answer is on its way, not before.
        try:
            asyncio.get_running_loop().call_soon(self._detect, ev, p)
        except RuntimeError:  # no loop (never on the request path)
            self._detect(ev, p)

    def _detect(self, ev: UsageEvent, p: _Pending) -> None:
        try:
            self._observe(ev, p)
        except Exception:  # a detector bug must not cost the gateway anything else
            log.exception("token-shredder detection failed for task %s", ev.task[:80])

    def _observe(self, ev: UsageEvent, p: _Pending) -> None:
        usage = ev.usage
        ob = Observation(
            ev.ts_ms,
            ev.latency_ms,
            ev.status,
            ev.error_kind,
            p.items,
            p.fragments,
            usage.input_tokens,
            usage.cached_tokens,
            usage.output_tokens,
            ev.cost_nanos or 0,
            p.cache_min,
            p.cache_ttl_ms,
            self._saver(p.call.deployment, usage, ev.ts_ms),  # the one that served
        )
        st = self.detector.state(ev.org, ev.task, ev.team, ev.agent)
        found = self.detector.observe(st, ob)
        if found:
            self._spawn(self._report(found))

    def _saver(self, dep: Deployment | None, usage: Usage, ts_ms: int) -> Any:
        if dep is None:
            return None
        prices = self.prices

        def saving(resent: int) -> int:
            now = prices.price(dep, usage, ts_ms).cost_nanos
            cached = replace(usage, cached_tokens=usage.cached_tokens + resent)
            then = prices.price(dep, cached, ts_ms).cost_nanos
            return max(0, now - then) if now is not None and then is not None else 0

        return saving

    def outcome_recorded(self, org: str, task: str) -> None:
        """The task has ended: its tokens join its agent's history (for outliers)."""
        self.detector.finish(org, task)

    def team_of(self, org: str, task: str) -> str | None:
        """The team of a task this process has seen calls of (the ledger may lag)."""
        return self._teams.get((org, task))

    # -- background ----------------------------------------------------------------------
    def _spawn(self, coro: Any) -> None:
        try:
            job = asyncio.get_running_loop().create_task(coro)
        except RuntimeError:
            coro.close()
            return
        self._jobs.add(job)
        job.add_done_callback(self._jobs.discard)

    async def _report(self, found: list[Finding]) -> None:
        try:
            first = await asyncio.to_thread(storage.record_findings, self.store, found)
        except Exception as exc:
            log.error("shredder findings not stored: %s", exc)
            first = found
        for f in first:
            log.warning("token shredder: task %s (%s): %s", f.task[:80], f.kind, f.evidence)
            if self.alerts is not None:
                await alert(self.alerts, f)

    async def close(self) -> None:
        if self._jobs:
            with contextlib.suppress(Exception):
                await asyncio.gather(*self._jobs, return_exceptions=True)
        await asyncio.to_thread(self.caps.close)


async def alert(sink: AlertSink, f: Finding) -> None:
    """One finding as a webhook alert (the ``[alerts]`` webhook of budget alerts)."""
    payload: dict[str, object] = {
        "type": "task.shredder",
        "kind": f.kind,
        "org": f.org,
        "team": f.team,
        "agent": f.agent,
        "task": f.task,
        "evidence": f.evidence,
        "tokens": f.tokens,
        "cost_usd": str(nanos_to_usd(f.cost_nanos)),
    }
    await sink.deliver(payload)


__all__ = ["CallLike", "TaskOffice", "alert"]
