"""``GET /health``: ok or not, and the details for a global admin key.

Without credentials (load balancers, probes) the answer is only ``{"status": "ok"}``
(200) or ``{"status": "not_ok"}`` (503): nothing about hosts, ports or errors. With
``Authorization: Bearer tka-...`` of a global admin key it adds each component's state
(``ledger``, ``budgets``, ``keys``, ``connections``), every text scrubbed of secrets.
A component is unhealthy when its ``health()`` says ``"ok": false``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

from tokenomy.admin.keys import authenticate
from tokenomy.credentials import bearer_token
from tokenomy.errors import RequestError
from tokenomy.gateway.wire_errors import OPENAI, error_response
from tokenomy.ledger.store import Store
from tokenomy.redact import scrub

log = logging.getLogger("tokenomy.gateway")


def _state(component: object) -> dict[str, Any]:
    probe: Callable[[], dict[str, Any]] | None = getattr(component, "health", None)
    if probe is None:
        return {"ok": True}
    try:
        return dict(probe())
    except Exception as exc:  # a health probe must never take /health down
        log.warning("health probe of %s failed: %s", type(component).__name__, exc)
        return {"ok": False, "error": type(exc).__name__}


def _ledger_state(writer: Any) -> dict[str, Any]:
    if callable(getattr(writer, "health", None)):
        return _state(writer)
    return {"ok": True, "pending": writer.pending, "last_error": writer.last_error or None}


def _scrubbed(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrubbed(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(v) for v in value]
    return value


def components(writer: Any, budgets: Any, keys: Any, guard: Any) -> dict[str, dict[str, Any]]:
    """Each component's state; ``connections`` is informational (always ok)."""
    return {
        "ledger": _ledger_state(writer),
        "budgets": _state(budgets),
        "keys": _state(keys),
        "connections": {"ok": True, **guard.health()},
    }


async def health(
    request: web.Request, *, store: Store, writer: Any, budgets: Any, keys: Any, guard: Any
) -> web.StreamResponse:
    """The ``/health`` handler (see the module docstring)."""
    details = False
    if request.headers.get("Authorization"):
        try:
            principal = await asyncio.to_thread(authenticate, store, bearer_token(request.headers))
        except RequestError as err:
            return error_response(OPENAI, err, {})
        except Exception as exc:  # the database is down: answer like a probe would get
            log.warning("health: admin key check failed: %s", scrub(str(exc)))
        else:
            details = principal.is_global
    state = components(writer, budgets, keys, guard)
    ok = all(c.get("ok") is not False for c in state.values())
    body: dict[str, Any] = {"status": "ok" if ok else "not_ok"}
    if details:
        body.update(_scrubbed(state))
    return web.Response(
        status=200 if ok else 503,
        body=orjson.dumps(body),
        content_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


__all__ = ["components", "health"]
