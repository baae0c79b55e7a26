"""The admin REST API: JSON handlers under ``/admin/v1``, thin shells over the library.

Each handler does what the matching CLI command does — with the same library functions —
after authenticating the admin key and applying the team-admin rule
(``tokenomy.admin.access``). Database calls run in a worker thread so that admin requests
never stall the event loop the gateway's traffic runs on.

Wiring: ``admin_app(store, settings)`` is an aiohttp application of its own, with its own
error answers (JSON ``{"error": {...}}``, 404 for unknown paths under ``/admin/v1``, 405
with ``Allow``); ``setup_admin(app, store, settings)`` mounts it at ``/admin/v1``. Nothing
here imports the gateway: the gateway mounts the admin API, never the reverse.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import re
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
import simplejson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from tokenomy.admin import access
from tokenomy.admin.keys import AdminPrincipal, authenticate
from tokenomy.admin.models import CreateKeyBody, SetBudgetBody, SetLimitBody, TransferBody
from tokenomy.admin.openapi import PREFIX, document
from tokenomy.budgets import storage
from tokenomy.budgets.model import (
    BUDGET,
    RATE_LIMIT,
    Budget,
    from_amount,
    parse_scope,
    to_amount,
)
from tokenomy.budgets.report import budget_rows
from tokenomy.config import Settings
from tokenomy.credentials import bearer_token
from tokenomy.errors import (
    Conflict,
    InternalError,
    InvalidRequest,
    LedgerError,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    RequestError,
    ServiceUnavailable,
)
from tokenomy.ledger.reports import parse_fields, parse_time, parse_where, usage_report
from tokenomy.ledger.store import Store

log = logging.getLogger("tokenomy.admin")

# Admin bodies are a few hundred bytes; the gateway app itself accepts huge bodies (it
# checks sizes per endpoint), so the admin API sets its own bound.
MAX_BODY_BYTES = 64 * 1024
MAX_BODY_DEPTH = 8  # the deepest admin body is an object holding a list
_KEY_ID = re.compile(r"[0-9a-f]{12}")
_LIMIT = re.compile(r"[0-9]{1,4}")

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
_AdminMethod = Callable[["AdminApi", web.Request, AdminPrincipal], Awaitable[web.StreamResponse]]
_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    # simplejson writes a Decimal as its exact digits; orjson would have to go via float.
    return web.Response(
        text=simplejson.dumps(data, use_decimal=True),
        status=status,
        content_type="application/json",
    )


def _unavailable(exc: BaseException) -> bool:
    """True for a database that cannot be reached (retry later), not a bug."""
    if isinstance(exc, LedgerError):
        return True
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(exc, sqlite3.OperationalError):
        return True
    psycopg = sys.modules.get("psycopg")
    return psycopg is not None and isinstance(
        exc, psycopg.OperationalError | psycopg.InterfaceError
    )


def _answer(err: RequestError) -> web.Response:
    """An error as the admin API answers it: ``{"error": {message, type, param, code}}``."""
    # Messages quote the client's input; a lone surrogate in it must not break the answer.
    text = err.message.encode("utf-8", "backslashreplace").decode("utf-8")
    body = {
        "error": {"message": text, "type": err.openai_type, "param": err.param, "code": err.code}
    }
    return web.Response(
        body=orjson.dumps(body),
        status=err.status,
        content_type="application/json",
        headers=err.headers,
    )


async def _unknown_path(request: web.Request) -> web.StreamResponse:
    return _answer(
        NotFound(
            f"Unknown path {request.method} {request.path[:100]}. "
            f"The admin API's paths are in {PREFIX}/openapi.json."
        )
    )


def _admin(fn: _AdminMethod) -> Callable[[AdminApi, web.Request], Awaitable[web.StreamResponse]]:
    """Authenticate the admin key, run the handler, answer errors as JSON with their status.

    A 5xx never carries exception text (it may name hosts, files or SQL): the log has it.
    """

    @functools.wraps(fn)
    async def run(self: AdminApi, request: web.Request) -> web.StreamResponse:
        try:
            who = await asyncio.to_thread(authenticate, self.store, bearer_token(request.headers))
            return await fn(self, request, who)
        except RequestError as err:
            return _answer(err)
        except ValueError as err:  # the library's way of refusing input (as in the CLI)
            return _answer(InvalidRequest(str(err)))
        except Exception as err:
            if _unavailable(err):
                log.error(
                    "admin %s %s: database unavailable: %s", request.method, request.path, err
                )
                return _answer(
                    ServiceUnavailable(
                        "The ledger database is unavailable; try again shortly.", retry_after_s=5
                    )
                )
            # A bug: answer JSON like every other error, and log it with its traceback.
            log.exception("admin %s %s failed", request.method, request.path)
            return _answer(
                InternalError("Internal error in the admin API; the gateway's log has the details.")
            )

    return run


def _check_strings(data: Any) -> None:
    """Refuse bodies nested deeper than any admin body, or holding text no database stores
    (a lone surrogate from a ``\\ud800`` escape); walks iteratively."""
    stack = [(data, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_BODY_DEPTH:
            raise InvalidRequest(f"the request body is nested deeper than {MAX_BODY_DEPTH} levels")
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise InvalidRequest(
                    "the request body holds a lone UTF-16 surrogate (\\ud800-\\udfff), "
                    "which is not text"
                ) from exc
        elif isinstance(node, dict):
            stack.extend((k, depth + 1) for k in node)
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


async def _body(request: web.Request, model: type[M]) -> M:
    """Read and validate a JSON body; a 400 names the first field that is wrong."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"admin request bodies are limited to {MAX_BODY_BYTES} bytes")
    raw = bytearray()
    while chunk := await request.content.read(65536):
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLarge(f"admin request bodies are limited to {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        raise InvalidRequest("the request body is empty; send a JSON object")
    try:
        # Decimals, not floats: a limit of 0.1 USD must stay exactly 0.1.
        data = simplejson.loads(bytes(raw), use_decimal=True)
    except (simplejson.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from exc
    except RecursionError as exc:
        raise InvalidRequest("the request body is nested too deeply") from exc
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise InvalidRequest(f"the request body is not usable JSON: {exc}") from exc
    _check_strings(data)
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        field = ".".join(str(p) for p in err["loc"])
        msg = str(err["msg"]).removeprefix("Value error, ")
        more = f" (and {exc.error_count() - 1} more problems)" if exc.error_count() > 1 else ""
        text = f"{field}: {msg}{more}" if field else f"invalid body: {msg}{more}"
        raise InvalidRequest(text, param=field or None) from exc


def _param(name: str, parse: Callable[[], T]) -> T:
    """Run a query-parameter parser; its ValueError becomes a 400 naming the parameter."""
    try:
        return parse()
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}", param=name) from exc


def _query_scope(request: web.Request) -> str:
    scope = request.match_info["scope"]
    try:
        parse_scope(scope)
    except ValueError as exc:
        raise InvalidRequest(str(exc), param="scope") from exc
    return scope


def _not_allowed(allow: list[str]) -> _Handler:
    """The handler of every other method on a path: 405 with ``Allow`` (RFC 9110 §15.5.6)."""

    async def handler(request: web.Request) -> web.StreamResponse:
        return _answer(
            MethodNotAllowed(
                f"{request.method} is not allowed on {request.path[:100]}; use "
                + " or ".join(allow),
                allow=allow,
            )
        )

    return handler


def _unit(request: web.Request, allowed: tuple[str, ...]) -> str | None:
    unit = request.query.get("unit")
    if unit is not None and unit not in allowed:
        raise InvalidRequest(
            f"unit must be {' or '.join(allowed)}, got {unit[:20]!r}", param="unit"
        )
    return unit


def _amount(unit: str, value: Any, field: str) -> int:
    try:
        return to_amount(unit, value)
    except ValueError as exc:
        raise InvalidRequest(f"{field}: {exc}", param=field) from exc


def _budget(b: Budget) -> dict[str, Any]:
    return {
        "scope": b.scope,
        "kind": b.kind,
        "unit": b.unit,
        "limit": from_amount(b.unit, b.limit),
        "period": b.period,
        "hard": b.hard,
        "alerts": list(b.alerts),
    }


class AdminApi:
    """The admin handlers, bound to one ledger store and the gateway's settings."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.tz = settings.gateway.timezone
        # The document never changes while the process runs: serialise it once.
        self._openapi = simplejson.dumps(document())

    async def openapi(self, request: web.Request) -> web.StreamResponse:
        return web.Response(text=self._openapi, content_type="application/json")

    # -- gateway API keys ----------------------------------------------------------------
    @_admin
    async def list_keys(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        flag = request.query.get("include_revoked", "true").lower()
        if flag not in ("true", "false", "1", "0"):
            raise InvalidRequest("include_revoked must be true or false", param="include_revoked")
        keys = await asyncio.to_thread(access.visible_keys, self.store, who, flag in ("true", "1"))
        return _json({"data": [k.as_dict() for k in keys]})

    @_admin
    async def create_key(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        body = await _body(request, CreateKeyBody)
        org, team = await asyncio.to_thread(
            access.new_key_owner, self.store, who, body.org, body.team
        )
        record, secret = await asyncio.to_thread(
            self.store.create_key, org=org, team=team, user=body.user, name=body.name
        )
        log.info("admin %s created API key %s (team %r)", who.key_id, record.key_id, team)
        return _json({**record.as_dict(), "secret": secret}, status=201)

    @_admin
    async def revoke_key(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        key_id = request.match_info["key_id"]
        await asyncio.to_thread(access.require_key, self.store, who, key_id)
        if not _KEY_ID.fullmatch(key_id):  # not a key id: nothing to look up
            raise NotFound(f"no active API key with id {key_id[:40]!r}")
        if not await asyncio.to_thread(self.store.revoke_key, key_id):
            raise NotFound(f"no active API key with id {key_id!r}")
        log.info("admin %s revoked API key %s", who.key_id, key_id)
        return _json({"key_id": key_id, "revoked": True})

    # -- budgets -------------------------------------------------------------------------
    async def _rows(self, who: AdminPrincipal, kind: str) -> web.StreamResponse:
        scopes = await asyncio.to_thread(access.scopes_for, self.store, who)
        rows = await asyncio.to_thread(budget_rows, self.store, kind=kind, tz=self.tz)
        return _json({"data": [r for r in rows if scopes.allows(r["scope"])]})

    @_admin
    async def list_budgets(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        return await self._rows(who, BUDGET)

    @_admin
    async def set_budget(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        body = await _body(request, SetBudgetBody)
        (await asyncio.to_thread(access.scopes_for, self.store, who)).require(body.scope)
        b = await asyncio.to_thread(
            storage.set_budget,
            self.store,
            kind=BUDGET,
            scope=body.scope,
            unit=body.unit,
            limit=_amount(body.unit, body.limit, "limit"),
            period=body.period,
            hard=body.hard,
            alerts=body.alerts,
            actor=who.actor,
        )
        return _json(_budget(b))

    async def _delete(
        self, request: web.Request, who: AdminPrincipal, kind: str, units: tuple[str, ...]
    ) -> web.StreamResponse:
        scope = _query_scope(request)
        unit = _unit(request, units)
        (await asyncio.to_thread(access.scopes_for, self.store, who)).require(scope)
        n = await asyncio.to_thread(
            storage.delete_budgets, self.store, kind, scope, unit, who.actor
        )
        if n == 0:
            what = "budget" if kind == BUDGET else "rate limit"
            raise NotFound(f"no {what} on {scope}" + (f" in {unit}" if unit else ""))
        return _json({"scope": scope, "deleted": n})

    @_admin
    async def delete_budget(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        return await self._delete(request, who, BUDGET, ("usd", "tokens"))

    @_admin
    async def transfer(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        body = await _body(request, TransferBody)
        scopes = await asyncio.to_thread(access.scopes_for, self.store, who)
        scopes.require(body.from_scope)
        scopes.require(body.to)
        amount = _amount(body.unit, body.amount, "amount")
        if amount <= 0:
            raise InvalidRequest(
                "amount: must be positive (USD amounts round to whole nano-USD)", param="amount"
            )
        if body.from_scope == body.to:
            raise InvalidRequest("to: cannot transfer a budget to itself", param="to")
        src, dst = await asyncio.to_thread(self._transfer, body, amount, who)
        return _json({"from": _budget(src), "to": _budget(dst)})

    def _transfer(
        self, body: TransferBody, amount: int, who: AdminPrincipal
    ) -> tuple[Budget, Budget]:
        ends = {}
        for end, scope in (("from", body.from_scope), ("to", body.to)):
            b = storage.get_budget(self.store, BUDGET, scope, body.unit)
            if b is None:
                raise NotFound(f"{end}: no {body.unit} budget on {scope}; create it first")
            ends[end] = b
        try:
            return storage.transfer(
                self.store, body.from_scope, body.to, amount, body.unit, self.tz, who.actor
            )
        except storage.TransferTooLarge as exc:
            raise Conflict(f"amount: {exc}", param="amount") from exc
        except ValueError as exc:  # refused by the budgets' state (e.g. the headroom)
            raise Conflict(str(exc)) from exc

    @_admin
    async def audit(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        text = request.query.get("limit", "50")
        if not _LIMIT.fullmatch(text) or not 1 <= int(text) <= 1000:
            raise InvalidRequest(
                f"limit must be a whole number 1-1000, got {text[:20]!r}", param="limit"
            )
        scopes = await asyncio.to_thread(access.scopes_for, self.store, who)
        rows = await asyncio.to_thread(access.audit_for, self.store, scopes, int(text))
        return _json({"data": rows})

    # -- rate limits ---------------------------------------------------------------------
    @_admin
    async def list_limits(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        return await self._rows(who, RATE_LIMIT)

    @_admin
    async def set_limits(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        body = await _body(request, SetLimitBody)
        (await asyncio.to_thread(access.scopes_for, self.store, who)).require(body.scope)
        out = []
        for unit, value in (("requests", body.rpm), ("tokens", body.tpm)):
            if value is not None:
                limit = _amount(unit, value, "rpm" if unit == "requests" else "tpm")
                b = await asyncio.to_thread(
                    storage.set_budget,
                    self.store,
                    kind=RATE_LIMIT,
                    scope=body.scope,
                    unit=unit,
                    limit=limit,
                    period="minute",
                    hard=True,
                    actor=who.actor,
                )
                out.append(_budget(b))
        return _json({"data": out})

    @_admin
    async def delete_limits(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        return await self._delete(request, who, RATE_LIMIT, ("requests", "tokens"))

    # -- usage ---------------------------------------------------------------------------
    @_admin
    async def usage(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        q = request.query
        fields = _param("by", lambda: parse_fields(q.get("by")))
        since = q.get("since")
        until = q.get("until")
        since_ms = _param("since", lambda: parse_time(since) if since else None)
        until_ms = _param("until", lambda: parse_time(until, end_of_day=True) if until else None)
        try:
            filters = parse_where(q.getall("where", []))
        except ValueError as exc:  # its messages start with "where:"
            raise InvalidRequest(str(exc), param="where") from exc
        filters = access.usage_filters(who, filters)
        rows = await asyncio.to_thread(
            usage_report,
            self.store,
            since_ms=since_ms,
            until_ms=until_ms,
            by=fields,
            filters=filters,
        )
        return _json({"data": rows})

    # -- live traffic (tokenomy.observe.live) ---------------------------------------------
    @_admin
    async def live_stats(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        from tokenomy.observe.live import LIVE_KEY, LiveStats

        text = request.query.get("window", "10")
        if not _LIMIT.fullmatch(text) or not 1 <= int(text) <= 59:
            raise InvalidRequest(
                f"window must be a whole number of seconds 1-59, got {text[:20]!r}",
                param="window",
            )
        live = request.config_dict.get(LIVE_KEY) or LiveStats()  # no gateway: no traffic
        if who.is_global:
            return _json(live.snapshot(int(text)))
        own = access.usage_filters(who, {})  # the team admin's org and team
        return _json(live.snapshot(int(text), org=own["org"], team=own["team"]))


def routes(api: AdminApi) -> list[web.RouteDef]:
    """Path (under ``PREFIX``) → handler, and nothing else (``openapi.OPERATIONS``
    documents each one).

    Every other method on a known path is answered 405 with ``Allow``, every other path
    under ``PREFIX`` 404, both as JSON.
    """
    table: dict[str, dict[str, _Handler]] = {
        "/openapi.json": {"GET": api.openapi},
        "/keys": {"GET": api.list_keys, "POST": api.create_key},
        "/keys/{key_id}": {"DELETE": api.revoke_key},
        "/budgets": {"GET": api.list_budgets, "PUT": api.set_budget},
        "/budgets/transfer": {"POST": api.transfer},
        "/budgets/audit": {"GET": api.audit},
        "/budgets/{scope}": {"DELETE": api.delete_budget},
        "/limits": {"GET": api.list_limits, "PUT": api.set_limits},
        "/limits/{scope}": {"DELETE": api.delete_limits},
        "/usage": {"GET": api.usage},
        "/stats/live": {"GET": api.live_stats},
    }
    out: list[web.RouteDef] = []
    for path, methods in table.items():
        # aiohttp answers HEAD beside every GET.
        allow = [m for name in methods for m in ((name, "HEAD") if name == "GET" else (name,))]
        out += [
            web.get(path, handler) if method == "GET" else web.route(method, path, handler)
            for method, handler in methods.items()
        ]
        out.append(web.route("*", path, _not_allowed(allow)))
    # Mounted under PREFIX, the sub-application answers every path that starts with it
    # (``PREFIX`` itself is the empty path): unknown ones here, in the admin API's JSON.
    out += [web.route("*", "", _unknown_path), web.route("*", "/{tail:.*}", _unknown_path)]
    return out


def admin_app(store: Store, settings: Settings) -> web.Application:
    """The admin API as its own aiohttp application, serving from ``store``.

    The store stays owned by the caller (the gateway opens and closes it).
    """
    app = web.Application()
    app.add_routes(routes(AdminApi(store, settings)))
    return app


def setup_admin(app: web.Application, store: Store, settings: Settings) -> None:
    """Mount the admin API (``admin_app``) on ``app`` at ``/admin/v1``.

    Call it before adding a catch-all route to ``app``: routes match in the order added.
    """
    app.add_subapp(PREFIX, admin_app(store, settings))
