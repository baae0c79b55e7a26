"""The admin REST API: JSON handlers under ``/admin/v1``, thin shells over the library.

Each handler does what the matching CLI command does — with the same library functions —
after authenticating the admin key and applying the team-admin rule
(``tokenomy.admin.access``). Database calls run in a worker thread so that admin requests
never stall the event loop the gateway's traffic runs on.

Wiring: ``setup_admin(app, store, settings)`` adds the routes to a gateway app.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import simplejson
from aiohttp import web
from pydantic import BaseModel, ValidationError

from tokenomy.admin import access
from tokenomy.admin.keys import AdminPrincipal, authenticate
from tokenomy.admin.models import CreateKeyBody, SetBudgetBody, SetLimitBody, TransferBody
from tokenomy.admin.openapi import PREFIX, document
from tokenomy.budgets import storage
from tokenomy.budgets.model import BUDGET, RATE_LIMIT, Budget, from_amount, parse_scope, to_amount
from tokenomy.budgets.report import budget_rows
from tokenomy.config import Settings
from tokenomy.errors import (
    InternalError,
    InvalidRequest,
    LedgerError,
    NotFound,
    PayloadTooLarge,
    RequestError,
)
from tokenomy.gateway.wire_errors import OPENAI, error_response
from tokenomy.ledger.reports import parse_fields, parse_time, usage_report
from tokenomy.ledger.schema import GROUP_FIELDS
from tokenomy.ledger.store import Store

log = logging.getLogger("tokenomy.admin")

# Admin bodies are a few hundred bytes; the gateway app itself accepts huge bodies (it
# checks sizes per endpoint), so the admin API sets its own bound.
MAX_BODY_BYTES = 64 * 1024

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
_AdminMethod = Callable[["AdminApi", web.Request, AdminPrincipal], Awaitable[web.StreamResponse]]


def _json(data: Any, status: int = 200) -> web.Response:
    # simplejson writes a Decimal as its exact digits; orjson would have to go via float.
    return web.Response(
        text=simplejson.dumps(data, use_decimal=True),
        status=status,
        content_type="application/json",
    )


def _bearer(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def _admin(fn: _AdminMethod) -> Callable[[AdminApi, web.Request], Awaitable[web.StreamResponse]]:
    """Authenticate the admin key, run the handler, answer errors as JSON with their status."""

    @functools.wraps(fn)
    async def run(self: AdminApi, request: web.Request) -> web.StreamResponse:
        try:
            who = await asyncio.to_thread(authenticate, self.store, _bearer(request))
            return await fn(self, request, who)
        except RequestError as err:
            return error_response(OPENAI, err, {})
        except ValueError as err:  # the library's way of refusing input (as in the CLI)
            return error_response(OPENAI, InvalidRequest(str(err)), {})
        except LedgerError as err:
            log.error("admin %s %s: %s", request.method, request.path, err)
            return error_response(OPENAI, InternalError(f"ledger error: {err}"), {})
        except Exception as err:  # a bug: answer JSON like every other error, and log it
            log.exception("admin %s %s failed", request.method, request.path)
            return error_response(OPENAI, InternalError(f"internal error: {err}"), {})

    return run


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


def _unit(request: web.Request, allowed: tuple[str, ...]) -> str | None:
    unit = request.query.get("unit")
    if unit is not None and unit not in allowed:
        raise InvalidRequest(f"unit must be {' or '.join(allowed)}, got {unit!r}", param="unit")
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
        keys = await asyncio.to_thread(self.store.list_keys, flag in ("true", "1"), who.team)
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
        src, dst = await asyncio.to_thread(
            storage.transfer,
            self.store,
            body.from_scope,
            body.to,
            _amount(body.unit, body.amount, "amount"),
            body.unit,
            self.tz,
            who.actor,
        )
        return _json({"from": _budget(src), "to": _budget(dst)})

    @_admin
    async def audit(self, request: web.Request, who: AdminPrincipal) -> web.StreamResponse:
        text = request.query.get("limit", "50")
        if not text.isdigit() or not 1 <= int(text) <= 1000:
            raise InvalidRequest(
                f"limit must be a whole number 1-1000, got {text!r}", param="limit"
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
                b = await asyncio.to_thread(
                    storage.set_budget,
                    self.store,
                    kind=RATE_LIMIT,
                    scope=body.scope,
                    unit=unit,
                    limit=value,
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
        filters: dict[str, str] = {}
        for item in q.getall("where", []):
            name, sep, value = item.partition("=")
            name = name.strip()
            if not sep or name not in GROUP_FIELDS:
                raise InvalidRequest(
                    f"where takes FIELD=VALUE with FIELD one of {', '.join(GROUP_FIELDS)}; "
                    f"got {item!r}",
                    param="where",
                )
            if name == "status" and not value.strip().isdigit():
                raise InvalidRequest(
                    f"where status= takes an HTTP status, got {value!r}", param="where"
                )
            filters[name] = value.strip()
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


def routes(api: AdminApi) -> list[web.RouteDef]:
    """Path → handler, and nothing else (``openapi.OPERATIONS`` documents each one)."""
    return [
        web.get(f"{PREFIX}/openapi.json", api.openapi),
        web.get(f"{PREFIX}/keys", api.list_keys),
        web.post(f"{PREFIX}/keys", api.create_key),
        web.delete(f"{PREFIX}/keys/{{key_id}}", api.revoke_key),
        web.get(f"{PREFIX}/budgets", api.list_budgets),
        web.put(f"{PREFIX}/budgets", api.set_budget),
        web.post(f"{PREFIX}/budgets/transfer", api.transfer),
        web.get(f"{PREFIX}/budgets/audit", api.audit),
        web.delete(f"{PREFIX}/budgets/{{scope}}", api.delete_budget),
        web.get(f"{PREFIX}/limits", api.list_limits),
        web.put(f"{PREFIX}/limits", api.set_limits),
        web.delete(f"{PREFIX}/limits/{{scope}}", api.delete_limits),
        web.get(f"{PREFIX}/usage", api.usage),
    ]


def setup_admin(app: web.Application, store: Store, settings: Settings) -> None:
    """Add the admin API (``/admin/v1/...``) to ``app``, serving from ``store``.

    The store stays owned by the caller (the gateway opens and closes it).
    """
    app.add_routes(routes(AdminApi(store, settings)))
