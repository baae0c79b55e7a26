"""Watching the gateway: Prometheus metrics, OpenTelemetry spans, an access log and the
live numbers behind ``tokenomy top`` (docs/observability.md).

Two hooks, both cheap and both off when nothing needs them:

* **The call seam.** ``Gateway._record`` — which every call passes exactly once, whatever
  its exit path — hands the call's usage event, its upstream wait and the client's request
  headers to ``Observers.on_event``, which works out the gateway's own time for it
  (``timing``) and passes it on to each observer that is on; the tracer gets the headers
  (for the client's ``traceparent``).
* **The response hook.** What the access log needs of the HTTP exchange itself (the path
  and status of *every* request, unknown paths and failed authentication included) comes
  from aiohttp's access-logger interface, called once per request when its response is
  done: no middleware, which would cost on every request. A call's event is matched to its
  response by the request id header. Without ``--access-log`` aiohttp's access logging
  stays off: it costs on every request.

Wiring, in two phases because aiohttp takes the response hook as a server argument:
``prepare(settings, access_log=...)`` before the app exists (its ``handler_args`` go into
``web.Application(handler_args=...)``), then ``Setup.install(app, store, ...)``:
``GET /metrics``, the live stats the admin API serves at ``/admin/v1/stats/live``, and
start/stop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

from tokenomy.events import UsageEvent
from tokenomy.observe.live import LIVE_KEY, LiveStats
from tokenomy.observe.timing import overhead_s

if TYPE_CHECKING:
    from tokenomy.budgets.engine import BudgetEngine
    from tokenomy.config import Settings
    from tokenomy.ledger.store import Store
    from tokenomy.observe.access_log import AccessLog
    from tokenomy.observe.metrics import Metrics
    from tokenomy.observe.otel import Otel

# The gateway's answers name their call (``gateway.proxy.REQUEST_ID_HEADER``; not
# imported: the gateway imports this package).
REQUEST_ID_HEADER = "x-tokenomy-request-id"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"  # Prometheus' text format
MAX_UNMATCHED = 10_000  # recorded calls whose response never finished (connection lost)

# ``tokenomy.admin.authenticate``: (store, bearer token) → admin principal, or raises.
AdminAuth = Callable[[Any, str | None], Any]
Recorded = tuple[UsageEvent, float, int]  # the event, the gateway's own time, end (ns)


class Observer(Protocol):
    def on_event(self, ev: UsageEvent, overhead_s: float) -> None: ...


class ResponseObserver(Protocol):
    def on_response(
        self, request: web.BaseRequest, status: int, duration_s: float, recorded: Recorded | None
    ) -> None: ...


class Tracer(Protocol):
    def on_call(self, ev: UsageEvent, headers: Mapping[str, str] | None) -> None: ...


class Observers:
    """The observers that are on, called once per recorded call."""

    def __init__(
        self,
        observers: Sequence[Observer] = (),
        *,
        timed: bool = True,
        tracer: Tracer | None = None,
    ) -> None:
        self.observers = tuple(observers)
        # ``timed``: some observer reads the gateway's own time (else the overhead passed
        # on is 0).
        self.timed = timed and bool(self.observers)
        self.tracer = tracer

    def __bool__(self) -> bool:
        return bool(self.observers) or self.tracer is not None

    def on_event(
        self, ev: UsageEvent, upstream_s: float, headers: Mapping[str, str] | None = None
    ) -> None:
        """The seam: ``ev`` has just been recorded (its status and latency are final); the
        call waited ``upstream_s`` seconds on upstreams; ``headers`` are the client's."""
        if self.observers:
            own = overhead_s(ev, upstream_s) if self.timed else 0.0
            for observer in self.observers:
                observer.on_event(ev, own)
        if self.tracer is not None:
            self.tracer.on_call(ev, headers)


class _Matcher:
    """Keeps each recorded call until its response is done (the two hooks meet here)."""

    def __init__(self, observers: Sequence[ResponseObserver]) -> None:
        self.observers = tuple(observers)
        self.pending: dict[str, Recorded] = {}

    def on_event(self, ev: UsageEvent, overhead_s: float) -> None:
        import time

        pending = self.pending
        if len(pending) >= MAX_UNMATCHED:
            del pending[next(iter(pending))]
        pending[ev.id] = (ev, overhead_s, time.time_ns())

    def on_response(self, request: web.BaseRequest, response: web.StreamResponse, t: float) -> None:
        rid = response.headers.get(REQUEST_ID_HEADER)
        recorded = self.pending.pop(rid, None) if rid else None
        for observer in self.observers:
            observer.on_response(request, response.status, t, recorded)


def _hook_class(matcher: _Matcher) -> type[AbstractAccessLogger]:
    class ResponseHook(AbstractAccessLogger):
        """aiohttp's access-logger interface, used as the response hook."""

        def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
            matcher.on_response(request, response, time)

    return ResponseHook


class Setup:
    """What ``prepare`` chose; ``install`` wires it into the app."""

    def __init__(self, settings: Settings, access_log: str | None) -> None:
        self.settings = settings
        self.live = LiveStats()
        self.metrics: Metrics | None = None
        self.otel: Otel | None = None
        self.access_log: AccessLog | None = None
        if settings.raw.metrics.enabled:
            from tokenomy.observe.metrics import Metrics

            self.metrics = Metrics(settings.raw.metrics.labels)
        if settings.raw.otel.enabled:
            from tokenomy.observe.otel import Otel

            self.otel = Otel(settings)
        if access_log is not None:
            from tokenomy.observe.access_log import AccessLog

            self.access_log = AccessLog(access_log)
        self.matcher = _Matcher([self.access_log]) if self.access_log is not None else None
        # aiohttp server arguments: the response hook, when something needs it.
        self.handler_args: dict[str, Any] = {}
        if self.matcher is not None:
            self.handler_args = {
                "access_log": logging.getLogger("tokenomy.access"),  # unused; must be set
                "access_log_class": _hook_class(self.matcher),
            }

    def install(
        self,
        app: web.Application,
        store: Store,
        budgets: BudgetEngine,
        *,
        breaker_states: Callable[[], dict[str, str]],
        admin_auth: AdminAuth | None = None,
    ) -> Observers:
        """Add ``GET /metrics`` and the live stats, start/stop what needs it, and return
        the observers for ``Gateway.observers``. Call it before the app's catch-all route.

        ``breaker_states``: routing's circuit breakers, deployment name → state
        (``Router.breaker_states``).

        ``admin_auth``: ``tokenomy.admin.authenticate``, to check the admin key of
        ``/metrics`` when ``[metrics] require_admin_key`` (passed in: the admin API
        imports the live stats from here, so this package must not import it back).
        """
        app[LIVE_KEY] = self.live
        chosen: list[Observer] = [self.live]
        if self.metrics is not None:
            cfg = self.settings.raw.metrics
            self.metrics.attach(store=store, budgets=budgets, breakers=_open(breaker_states))
            if cfg.require_admin_key and admin_auth is None:
                raise ValueError("[metrics] require_admin_key needs the admin key check")
            auth = admin_auth if cfg.require_admin_key else None
            app.router.add_get("/metrics", _metrics_handler(self.metrics, store, auth))
            chosen.append(self.metrics)
        if self.matcher is not None:
            chosen.append(self.matcher)
        otel, log = self.otel, self.access_log
        if otel is not None:

            async def tracing(app: web.Application) -> AsyncIterator[None]:
                yield
                await asyncio.to_thread(otel.close)  # exports what is still queued

            app.cleanup_ctx.append(tracing)
        if log is not None:
            app.cleanup_ctx.append(log.running)
        # The live stats need no timing.
        return Observers(chosen, timed=len(chosen) > 1, tracer=otel)


def prepare(settings: Settings, *, access_log: str | None = None) -> Setup:
    """The observers ``settings`` (and ``--access-log``) ask for, before the app exists."""
    return Setup(settings, access_log)


def _open(states: Callable[[], dict[str, str]]) -> Callable[[], dict[str, bool]]:
    """Deployment name → breaker open (half-open counts as open)."""
    return lambda: {name: state != "closed" for name, state in states().items()}


def _metrics_handler(
    metrics: Metrics, store: Store, admin_auth: AdminAuth | None
) -> Callable[[web.Request], Any]:
    from tokenomy.credentials import bearer_token
    from tokenomy.errors import PermissionDenied, RequestError

    async def handler(request: web.Request) -> web.StreamResponse:
        if admin_auth is not None:
            try:
                who = await asyncio.to_thread(admin_auth, store, bearer_token(request.headers))
                if getattr(who, "team", None) is not None:
                    raise PermissionDenied("/metrics covers every team: use a global admin key.")
            except RequestError as err:
                error = {"message": err.message, "type": err.openai_type, "code": err.code}
                return web.json_response(
                    {"error": error}, status=err.status, headers=err.headers, dumps=_dumps
                )
        await metrics.refresh()
        body = metrics.exposition()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    return handler


def _dumps(data: Any) -> str:
    return orjson.dumps(data).decode()


__all__ = ["Observer", "Observers", "Setup", "prepare"]
