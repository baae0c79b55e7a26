"""The dashboard's HTTP side: sign-in, pages, static assets and the JSON API.

Mounted by the gateway at ``/dashboard`` (:func:`setup_dashboard`). Pages and API calls
need a session (``sessions.py``) or, for scripts and benchmarks, an admin key as
``Authorization: Bearer tka-...``; a team admin key sees only its team everywhere.
Database work runs in a thread, off the event loop that serves the gateway's traffic.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from html import escape
from importlib import resources
from typing import Any

import simplejson
from aiohttp import web

from tokenomy.admin import AdminPrincipal, authenticate
from tokenomy.clock import now_ms
from tokenomy.config import Settings
from tokenomy.credentials import bearer_token
from tokenomy.dashboard import data, pages, sessions
from tokenomy.errors import AuthenticationError, RequestError
from tokenomy.ledger import open_store, rollups
from tokenomy.ledger.reports import parse_time
from tokenomy.ledger.store import Store
from tokenomy.observe.live import LIVE_KEY

log = logging.getLogger("tokenomy.dashboard")

PREFIX = "/dashboard"
REFRESH_S = 10.0
BUDGETS_TTL_S = 60.0
_STATIC = {
    "htmx.min.js": "text/javascript",
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
}
_SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # keeps the Origin header on our own form posts
    "Cache-Control": "no-store",
}
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(payload: Any, status: int = 200) -> web.Response:
    return web.Response(
        text=simplejson.dumps(payload, use_decimal=True),
        status=status,
        content_type="application/json",
        headers=_SECURITY_HEADERS,
    )


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(
        text=text, status=status, content_type="text/html", headers=_SECURITY_HEADERS
    )


_ApiMethod = Callable[["Dashboard", web.Request, AdminPrincipal], Awaitable[web.StreamResponse]]


def _api(fn: _ApiMethod) -> Callable[[Dashboard, web.Request], Awaitable[web.StreamResponse]]:
    """Require a viewer; answer refused input as JSON 400 and errors with their status."""

    @functools.wraps(fn)
    async def run(self: Dashboard, request: web.Request) -> web.StreamResponse:
        try:
            who = await self._viewer(request)
            if who is None:
                return _json({"error": {"message": "Sign in first.", "code": "unauthorized"}}, 401)
            return await fn(self, request, who)
        except RequestError as err:
            return _json({"error": {"message": err.message, "code": err.code}}, err.status)
        except ValueError as err:
            return _json({"error": {"message": str(err), "code": "invalid_request"}}, 400)
        except Exception:  # the database away, or a bug: the log has it, not the answer
            log.exception("dashboard %s failed", request.path)
            return _json(
                {
                    "error": {
                        "message": "The dashboard failed; see the gateway's log.",
                        "code": "internal_error",
                    }
                },
                500,
            )

    return run


class Dashboard:
    """Handlers over one store; the live view reads the app's ``observe.live`` counters."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self._budgets_cache: tuple[float, list[Any]] | None = None
        self._budgets_lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None
        self._assets = {
            name: (resources.files("tokenomy.dashboard") / "static" / name).read_bytes()
            for name in _STATIC
        }

    async def start(self, app: web.Application) -> None:
        """Every ``REFRESH_S``: roll up new events, so a page view's catch-up is small, and
        recompute the budgets' rows once someone has looked at them."""

        async def loop() -> None:
            while True:
                await asyncio.sleep(REFRESH_S)
                try:
                    await asyncio.to_thread(rollups.refresh, self.store)
                    if self._budgets_cache is not None:  # keep a viewed page's rows warm
                        await self._budget_rows(BUDGETS_TTL_S - 2 * REFRESH_S)
                except Exception as exc:  # database away: the next round retries
                    log.warning("rolling up the ledger failed: %s", exc)

        self._task = asyncio.create_task(loop())

    async def stop(self, app: web.Application) -> None:
        """Stop the loop and close the connection on shutdown."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.store.close()

    # -- who is asking ---------------------------------------------------------------
    async def _viewer(self, request: web.Request) -> AdminPrincipal | None:
        token = bearer_token(request.headers)
        if token:
            try:
                return await asyncio.to_thread(authenticate, self.store, token)
            except AuthenticationError:
                return None
        cookie = request.cookies.get(sessions.COOKIE)
        if not cookie:
            return None
        session = await asyncio.to_thread(sessions.lookup, self.store, cookie)
        return None if session is None else session.who

    def _secure(self, request: web.Request) -> bool:
        return request.secure or request.headers.get("X-Forwarded-Proto") == "https"

    @staticmethod
    def _same_origin(request: web.Request) -> bool:
        # SameSite=Strict already keeps the cookie off cross-site posts; a browser's
        # Origin header, when sent, must name this host too.
        origin = request.headers.get("Origin")
        if origin is None or origin == "null":
            return origin is None
        return origin.split("://", 1)[-1] == request.host

    # -- sign-in ---------------------------------------------------------------------
    async def login(self, request: web.Request) -> web.StreamResponse:
        if not self._same_origin(request):
            return _html(pages.login_page("Sign-in refused: cross-site request."), 403)
        form = await request.post()
        secret = str(form.get("admin_key", "")).strip()
        try:
            token, session = await asyncio.to_thread(sessions.sign_in, self.store, secret)
        except AuthenticationError as err:
            return _html(pages.login_page(err.message), 401)
        response = web.Response(status=303, headers={"Location": PREFIX})
        response.set_cookie(
            sessions.COOKIE,
            token,
            max_age=max(1, (session.expires_ms - now_ms()) // 1000),
            path=PREFIX,
            httponly=True,
            samesite="Strict",
            secure=self._secure(request),
        )
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        if not self._same_origin(request):
            return _html(pages.login_page("Sign-out refused: cross-site request."), 403)
        await asyncio.to_thread(sessions.sign_out, self.store, request.cookies.get(sessions.COOKIE))
        response = web.Response(status=303, headers={"Location": PREFIX})
        response.del_cookie(sessions.COOKIE, path=PREFIX)
        return response

    # -- pages -----------------------------------------------------------------------
    async def page(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info.get("page", "") or "overview"
        if name not in pages.PAGES:
            return _html("<!doctype html><title>Not found</title><p>No such page.", 404)
        who = await self._viewer(request)
        if who is None:
            return _html(pages.login_page(), 200)
        since = request.query.get("since", "7d")
        if since not in dict(pages.RANGES):
            since = "7d"
        by = request.query.get("by", "team")
        if by not in pages.GROUP_BY:
            by = "team"
        return _html(pages.page(name, who, since, by))

    async def static(self, request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        body = self._assets.get(name)
        if body is None:
            raise web.HTTPNotFound()
        return web.Response(
            body=body,
            content_type=_STATIC[name],
            headers={"Cache-Control": "max-age=3600", "X-Content-Type-Options": "nosniff"},
        )

    # -- JSON API --------------------------------------------------------------------
    def _range(self, request: web.Request) -> data.Range:
        q = request.query
        now = now_ms()
        since = parse_time(q.get("since", "7d"))
        until = parse_time(q["until"], end_of_day=True) if q.get("until") else now
        return data.Range.of(since, until)

    @_api
    async def summary(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        rng = self._range(request)
        by = request.query.get("by", "team")
        started = time.perf_counter()
        out = await asyncio.to_thread(data.summary, self.store, who, rng, by)
        out["factories"] = data.factories(self.settings, int(out["mix"]["local"]["cost_nanos"]))
        out["value"] = await asyncio.to_thread(data.task_value, self.store, who, rng)
        out["elapsed_ms"] = round((time.perf_counter() - started) * 1000, 3)
        return _json(out)

    async def _budget_rows(self, max_age_s: float = BUDGETS_TTL_S) -> tuple[float, list[Any]]:
        """Every budget's row, computed at most every ``max_age_s`` (one computation at a
        time): the projection reads weeks of the ledger, far too slow for each page view."""
        async with self._budgets_lock:
            cached = self._budgets_cache
            if cached is None or time.time() - cached[0] > max_age_s:
                tz = self.settings.gateway.timezone
                rows = await asyncio.to_thread(data.budgets, self.store, tz, now_ms())
                cached = self._budgets_cache = (time.time(), rows)
            return cached

    @_api
    async def budgets(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        as_of, rows = await self._budget_rows()
        mine = await asyncio.to_thread(data.visible_budgets, self.store, who, rows)
        return _json({"data": mine, "as_of_ms": int(as_of * 1000)})

    @_api
    async def live_stats(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        live = request.app.get(LIVE_KEY)
        if live is None:
            return _json({"error": {"message": "No live counters here.", "code": "not_found"}}, 404)
        window = request.query.get("window", "10")
        window_s = int(window) if window.isdigit() and len(window) <= 3 else 10
        return _json(live.snapshot(window_s, org=who.org, team=who.team))

    @_api
    async def requests(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        q = request.query
        filters = {k: q.get(k, "").strip() for k in data.REQUEST_FILTERS if q.get(k)}
        before = int(q["before"]) if q.get("before", "").isdigit() else None
        limit = int(q["limit"]) if q.get("limit", "").isdigit() else 50
        since = parse_time(q["since"]) if q.get("since") else None
        rows = await asyncio.to_thread(
            data.request_log,
            self.store,
            who,
            filters,
            since_ms=since,
            before_ms=before,
            limit=limit,
        )
        if q.get("format") == "html":
            return _html(_log_table(rows))
        return _json({"data": rows})


def _log_table(rows: list[dict[str, Any]]) -> str:
    cols = (
        "time",
        "key_id",
        "team",
        "agent",
        "task",
        "model",
        "status",
        "tokens",
        "cost_usd",
        "latency_ms",
    )
    head = "".join(f"<th>{c}</th>" for c in cols)
    body = []
    for r in rows:
        when = datetime.fromtimestamp(r["ts_ms"] / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        cells = {
            **r,
            "time": when,
            "tokens": f"{r['input_tokens']:,} / {r['output_tokens']:,}",
            "cost_usd": "" if r["cost_usd"] is None else r["cost_usd"],
            "latency_ms": f"{r['latency_ms']:.1f}",
        }
        cls = "" if 200 <= int(r["status"]) < 400 else ' class="err"'
        body.append(
            f"<tr{cls}>" + "".join(f"<td>{escape(str(cells[c]))}</td>" for c in cols) + "</tr>"
        )
    if not body:
        body.append(f'<tr><td colspan="{len(cols)}">No requests match.</td></tr>')
    return (
        f'<table class="log"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    )


def routes(d: Dashboard) -> list[web.RouteDef]:
    """Path → handler, and nothing else."""
    return [
        web.get(PREFIX, d.page),
        web.get(PREFIX + "/", d.page),
        web.post(PREFIX + "/login", d.login),
        web.post(PREFIX + "/logout", d.logout),
        web.get(PREFIX + "/static/{name}", d.static),
        web.get(PREFIX + "/api/summary", d.summary),
        web.get(PREFIX + "/api/budgets", d.budgets),
        web.get(PREFIX + "/api/live", d.live_stats),
        web.get(PREFIX + "/api/requests", d.requests),
        web.get(PREFIX + "/{page}", d.page),
    ]


def setup_dashboard(app: web.Application, store: Store, settings: Settings) -> Dashboard:
    """Add the dashboard's routes to ``app`` (before any catch-all route).

    The dashboard reads over a connection of its own (to ``store``'s database, already
    migrated): its queries never queue behind, or hold up, the key look-ups, budget
    leases and admin calls on the gateway's connection.
    """
    dashboard = Dashboard(open_store(store.url, migrate=False), settings)
    app.add_routes(routes(dashboard))
    app.on_startup.append(dashboard.start)
    app.on_shutdown.append(dashboard.stop)
    return dashboard


__all__ = ["PREFIX", "Dashboard", "routes", "setup_dashboard"]
