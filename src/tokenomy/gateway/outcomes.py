"""``POST /v1/tasks/{task_id}/outcome``: how a task ended, and what it was worth.

Body (JSON object, at most 64 KiB)::

    {"status": "succeeded" | "failed" | "abandoned" | "indeterminate",
     "value_usd": number, "metrics": {name: number}, "note": string,
     "outcome_id": string}

Only ``status`` is required. Authenticated by a gateway API key of the task's team: a
task of another team (or of no team known) is answered 404, exactly as a task that does
not exist, so keys cannot probe other teams' task ids. Posting again replaces the
outcome; the same ``outcome_id`` again is a retry and changes nothing. Errors are the
OpenAI error JSON.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import Any

from aiohttp import web

from tokenomy import clock, exact_json
from tokenomy.budgets.periods import iso_utc
from tokenomy.credentials import api_key
from tokenomy.errors import (
    InvalidRequest,
    LedgerError,
    NotFound,
    RequestError,
    ServiceUnavailable,
)
from tokenomy.events import Principal
from tokenomy.gateway.auth import KeyCache
from tokenomy.gateway.bodies import read_body
from tokenomy.gateway.wire_errors import OPENAI, error_response
from tokenomy.ledger.store import Store
from tokenomy.money import nanos_to_usd, usd_to_nanos
from tokenomy.tasks import storage
from tokenomy.tasks.office import TaskOffice
from tokenomy.tasks.storage import STATUSES, Outcome
from tokenomy.wire.base import MAX_TEXT_CHARS

# Task ids may hold slashes (sent URL-encoded): the id is everything before /outcome.
PATH = "/v1/tasks/{task_id:.+}/outcome"
MAX_BODY = 64 * 1024
MAX_METRICS = 64
MAX_METRIC_NAME = 64
MAX_NOTE = 2_000
MAX_OUTCOME_ID = 128
MAX_VALUE_USD = Decimal(1_000_000_000)
log = logging.getLogger("tokenomy.tasks")
_FIELDS = frozenset({"status", "value_usd", "metrics", "note", "outcome_id"})
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_NANO = Decimal("1e-9")


def _reject_constant(name: str) -> Any:
    raise InvalidRequest(f"Request body holds {name}, which is not a JSON number.")


def parse_body(raw: bytes | bytearray) -> dict[str, Any]:
    """The outcome body as checked values; ``InvalidRequest`` naming the field otherwise."""
    if not raw:
        raise InvalidRequest("Request body is empty; expected a JSON object with 'status'.")
    try:
        body = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        raise InvalidRequest(f"Request body is not valid JSON: {str(exc)[:200]}") from None
    if not isinstance(body, dict):
        raise InvalidRequest("Request body must be a JSON object.")
    unknown = sorted(set(body) - _FIELDS)
    if unknown:
        raise InvalidRequest(
            f"Unknown field {unknown[0][:40]!r}; an outcome takes {', '.join(sorted(_FIELDS))}.",
            param=unknown[0][:40],
        )
    status = body.get("status")
    if status not in STATUSES:
        raise InvalidRequest(
            f"'status' is required and must be one of {', '.join(STATUSES)}.", param="status"
        )
    value = body.get("value_usd")
    value_nanos = None if value is None else usd_to_nanos(_number(value, "value_usd"))
    metrics_in = body.get("metrics", {})
    if metrics_in is None:
        metrics_in = {}
    if not isinstance(metrics_in, dict):
        raise InvalidRequest("'metrics' must be an object of numbers.", param="metrics")
    if len(metrics_in) > MAX_METRICS:
        raise InvalidRequest(f"'metrics' takes at most {MAX_METRICS} entries.", param="metrics")
    metrics: dict[str, Decimal] = {}
    for name, v in metrics_in.items():
        _text(name, MAX_METRIC_NAME, "metrics name", control=True)
        metrics[name] = _number(v, f"metrics.{name}")
    note = body.get("note", "")
    note = "" if note is None else _text(note, MAX_NOTE, "note")
    oid = body.get("outcome_id", "")
    oid = "" if oid is None else _text(oid, MAX_OUTCOME_ID, "outcome_id", control=True)
    return {
        "status": status,
        "value_nanos": value_nanos,
        "metrics": metrics,
        "note": note,
        "outcome_id": oid,
    }


def _number(v: Any, param: str) -> Decimal:
    if isinstance(v, bool) or not isinstance(v, int | Decimal):
        raise InvalidRequest(f"'{param}' must be a number.", param=param)
    d = Decimal(v)
    if not d.is_finite() or abs(d) > MAX_VALUE_USD:
        raise InvalidRequest(
            f"'{param}' must be a number from -{MAX_VALUE_USD:,} to {MAX_VALUE_USD:,}.",
            param=param,
        )
    try:
        return d.quantize(_NANO, rounding=ROUND_HALF_EVEN)
    except InvalidOperation:  # pragma: no cover - bounded above
        raise InvalidRequest(f"'{param}' is out of range.", param=param) from None


def _text(v: Any, limit: int, param: str, *, control: bool = False) -> str:
    if not isinstance(v, str):
        raise InvalidRequest(f"'{param}' must be a string.", param=param)
    if len(v) > limit:
        raise InvalidRequest(f"'{param}' must be at most {limit} characters.", param=param)
    if "\x00" in v or (control and _CONTROL.search(v)):
        raise InvalidRequest(f"'{param}' must not contain control characters.", param=param)
    try:
        v.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidRequest(f"'{param}' is not valid Unicode text.", param=param) from None
    return v


def outcome_json(o: Outcome, replaced: bool) -> dict[str, Any]:
    return {
        "object": "task.outcome",
        "task": o.task,
        "status": o.status,
        "value_usd": nanos_to_usd(o.value_nanos) if o.value_nanos is not None else None,
        "metrics": o.metrics,
        "note": o.note,
        "outcome_id": o.outcome_id or None,
        "recorded_at": iso_utc(o.recorded_ms, "milliseconds"),
        "replaced": replaced,
    }


async def _team_check(store: Store, office: TaskOffice | None, who: Principal, task: str) -> None:
    team = office.team_of(who.org, task) if office is not None else None
    if team is None:
        team = await asyncio.to_thread(storage.task_team, store, who.org, task)
    if team is None or team != who.team:
        raise NotFound(f"No task {task[:80]!r} for this key's team.")


def outcome_handler(keys: KeyCache, store: Store, office: TaskOffice | None) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        try:
            who = await keys.authenticate(api_key(request.headers))
            task = request.match_info["task_id"]
            _text(task, MAX_TEXT_CHARS, "task_id", control=True)
            await _team_check(store, office, who, task)
            fields = parse_body(await read_body(request, MAX_BODY))
            outcome = Outcome(
                who.org,
                task,
                who.team,
                fields["status"],
                fields["value_nanos"],
                fields["metrics"],
                fields["note"],
                fields["outcome_id"],
                who.key_id,
                clock.now_ms(),
            )
            stored, replaced = await asyncio.to_thread(storage.save_outcome, store, outcome)
        except RequestError as err:
            return error_response(OPENAI, err, {})
        except LedgerError as exc:  # the database is unreachable
            log.error("task outcome not recorded: %s", exc)
            down = ServiceUnavailable("The gateway cannot reach its database; retry the outcome.")
            return error_response(OPENAI, down, {})
        if office is not None:
            office.outcome_recorded(who.org, task)
        return web.Response(
            body=exact_json.dumps(outcome_json(stored, replaced)),
            content_type="application/json",
        )

    return handle


def routes(keys: KeyCache, store: Store, office: TaskOffice | None) -> list[web.RouteDef]:
    return [web.post(PATH, outcome_handler(keys, store, office))]


__all__ = ["PATH", "outcome_json", "parse_body", "routes"]
