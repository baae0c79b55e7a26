"""The aiohttp application: wiring, start-up and clean shutdown."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import orjson
from aiohttp import web

from tokenomy.admin import authenticate, setup_admin
from tokenomy.budgets.alerts import AlertSink
from tokenomy.budgets.engine import BudgetEngine
from tokenomy.config import Settings
from tokenomy.credentials import api_key
from tokenomy.dashboard.web import setup_dashboard
from tokenomy.database import open_database
from tokenomy.economics import factory_token_prices
from tokenomy.errors import LedgerError, NotFound, RequestError
from tokenomy.gateway import routes
from tokenomy.gateway.auth import KeyCache
from tokenomy.gateway.connections import GUARD_KEY, ConnectionGuard
from tokenomy.gateway.health import health as health_check
from tokenomy.gateway.outcomes import routes as task_routes
from tokenomy.gateway.proxy import Gateway
from tokenomy.gateway.wire_errors import ANTHROPIC, OPENAI, error_response
from tokenomy.ledger.postgres import PostgresStore
from tokenomy.ledger.store import Store
from tokenomy.ledger.writer import LedgerWriter
from tokenomy.metering import tokenizer
from tokenomy.observe import prepare as prepare_observers
from tokenomy.pricing import PriceBook
from tokenomy.redact import mask_url, register_settings
from tokenomy.simulated import attach as attach_simulated
from tokenomy.tasks.office import TaskOffice
from tokenomy.wire import Endpoint, Wire

log = logging.getLogger("tokenomy.gateway")

GATEWAY_KEY: web.AppKey[Gateway] = web.AppKey("gateway", Gateway)
STORE_KEY: web.AppKey[Store] = web.AppKey("store", Store)


def journal_dir(settings: Settings, db_url: str) -> Path:
    """Where the crash journal lives: configured, else beside the SQLite file, else ./.tokenomy."""
    if settings.gateway.journal_dir:
        return Path(settings.gateway.journal_dir)
    if db_url.startswith("sqlite:///") and not db_url.endswith(":memory:"):
        db_path = Path(db_url[len("sqlite:///") :])
        return db_path.parent / (db_path.name + ".journal")
    return Path(".tokenomy") / "journal"


def _client_format(request: web.Request) -> Wire:
    h = request.headers
    return ANTHROPIC if ("anthropic-version" in h or "x-api-key" in h) else OPENAI


def _open_store(db_url: str) -> Store:
    """Open the database and migrate every component's tables (ledger, budgets, admin keys,
    in that order); PostgreSQL being down does not stop the gateway.

    A PostgreSQL store connects on first use, so the gateway starts, reports not-ready in
    ``/health`` and answers 503 to calls that need the database until it is back; the
    migrations then run on the first connection.
    """
    store = open_database(db_url, migrate=False)
    try:
        store.migrate()
    except LedgerError as exc:
        if not isinstance(store, PostgresStore):
            raise
        store.migrate_on_connect = True
        log.error("ledger database unavailable at start-up (%s); starting anyway", exc)
    return store


def build_app(settings: Settings, db_url: str, *, access_log: str | None = None) -> web.Application:
    """The gateway as an aiohttp app; resources open on startup and drain on cleanup.

    ``access_log``: a file (or ``-``, standard output) for one JSON line per request.
    """
    # Simulated providers get the loopback URL of the built-in factory (served below).
    settings, simulated = attach_simulated(settings)
    register_settings(settings, db_url)  # scrubbed from upstream errors, logs, /health
    guard = ConnectionGuard.from_settings(settings.gateway)
    # Bodies are read, inflated and size-checked by the gateway itself (bodies.py: 413 in
    # the client's format, a bomb never inflated past the limit, the rest never inflated).
    # keepalive_timeout here reaches any runner; the header and body timeouts and the
    # connection cap need connections.GatewayRunner (used by `tokenomy serve`).
    # Observers (metrics, traces, access log) may add aiohttp's response hook.
    observed = prepare_observers(settings, access_log=access_log)
    app = web.Application(
        client_max_size=1 << 62,
        handler_args={
            "max_field_size": 65536,
            "keepalive_timeout": guard.keepalive_timeout_s,
            "auto_decompress": False,
            **observed.handler_args,
        },
    )
    app[GUARD_KEY] = guard
    store = _open_store(db_url)
    # The batch writer gets a connection of its own: its inserts never queue behind (or
    # hold up) key look-ups, budget leases and admin queries on the other one.
    writer_store = open_database(db_url, migrate=False)
    if isinstance(store, PostgresStore) and isinstance(writer_store, PostgresStore):
        # Whichever connects first once the database is back migrates it.
        writer_store.migrate_on_connect = store.migrate_on_connect
    writer = LedgerWriter(
        writer_store,
        journal_dir(settings, db_url),
        batch_size=settings.gateway.ledger_batch_size,
        flush_interval_s=settings.gateway.ledger_flush_interval_s,
    )
    keys = KeyCache(store)
    alerts = settings.raw.alerts
    budgets = BudgetEngine(
        store,
        tz=settings.gateway.timezone,
        alerts=AlertSink(alerts.webhook_url, alerts.timeout_s),
        ledger_replayed=lambda: writer.replayed,  # spend is rebuilt after a journal replay
    )
    gateway = Gateway(
        settings,
        keys,
        PriceBook.from_settings(settings, factory_token_prices(settings.factories)),
        writer,
        budgets,
    )
    app[GATEWAY_KEY] = gateway
    app[STORE_KEY] = store
    # Per-task caps, the token shredder and POST /v1/tasks/{id}/outcome (tokenomy.tasks).
    tasks = gateway.tasks = TaskOffice(store, settings, gateway.prices, budgets.alerts)
    app.add_routes(task_routes(keys, store, tasks))
    setup_admin(app, store, settings)
    setup_dashboard(app, store, settings)  # /dashboard: reads rollups, never raw events
    # /metrics, traces, access log, live stats (before the catch-all route below).
    gateway.observers = observed.install(
        app,
        store,
        budgets,
        breaker_states=gateway.router.breaker_states,
        admin_auth=authenticate,
    )

    async def proxy(request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
        return await gateway.handle(request, endpoint)

    async def models(request: web.Request) -> web.StreamResponse:
        wire = _client_format(request)
        try:
            await keys.authenticate(api_key(request.headers))
        except RequestError as err:
            return error_response(wire, err, {})
        # Glob names ("claude-*") are not ids a client can list; aliases are not listed.
        data = wire.models([n for n, m in settings.models.items() if not m.pattern])
        return web.Response(body=orjson.dumps(data), content_type="application/json")

    async def health(request: web.Request) -> web.StreamResponse:
        return await health_check(
            request, store=store, writer=writer, budgets=budgets, keys=keys, guard=guard
        )

    app.add_routes(routes.table(proxy, models, health))

    async def not_found(request: web.Request) -> web.StreamResponse:
        # A catch-all route rather than a middleware: middlewares cost on every request.
        err = NotFound(
            f"Unknown path {request.method} {request.path}. See the README for the endpoints."
        )
        return error_response(_client_format(request), err, {})

    app.router.add_route("*", "/{tail:.*}", not_found)

    # Services start in this order and stop in the reverse one (aiohttp's cleanup_ctx):
    # the databases last, after the writer has drained and the budgets have settled.
    async def databases(app: web.Application) -> AsyncIterator[None]:
        yield
        writer_store.close()
        store.close()

    async def ledger_writer(app: web.Application) -> AsyncIterator[None]:
        writer.start()
        yield
        writer.close()

    async def key_cache(app: web.Application) -> AsyncIterator[None]:
        await keys.start()
        yield
        await keys.stop()

    async def budget_engine(app: web.Application) -> AsyncIterator[None]:
        await budgets.start()
        yield
        await budgets.close()

    async def upstreams(app: web.Application) -> AsyncIterator[None]:
        await gateway.start()
        # The offline tokenizer loads in ~0.5 s; do it now, off the loop, not on first use.
        asyncio.get_running_loop().run_in_executor(None, tokenizer.warm_up)
        if settings.policy.active:  # the data-class detectors' libraries (~0.1 s), likewise
            from tokenomy.sovereignty import warm_up

            asyncio.get_running_loop().run_in_executor(None, warm_up)
        log.info("ledger %s; %d models", mask_url(db_url), len(settings.models))
        yield
        await gateway.close()

    app.cleanup_ctx.extend((databases, ledger_writer, key_cache, budget_engine, upstreams))

    async def task_office(app: web.Application) -> AsyncIterator[None]:
        yield
        await tasks.close()  # queued cap settlements and findings, before the databases

    app.cleanup_ctx.append(task_office)
    if simulated is not None:  # the built-in simulated token factory (tokenomy.simulated)
        app.cleanup_ctx.append(simulated.serve)
    return app


__all__ = ["GATEWAY_KEY", "STORE_KEY", "build_app", "journal_dir"]
