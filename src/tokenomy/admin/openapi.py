"""The admin API's OpenAPI 3.1 document: operations written as data, schemas from models.

Every route in ``tokenomy.admin.api.routes`` has an entry here (a test holds them to
each other), with its parameters, request body and responses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from tokenomy.admin import models as m
from tokenomy.budgets.model import MAX_NAME, SCOPE_KINDS
from tokenomy.ledger.reports import MAX_FILTER_CHARS, MAX_TIME_CHARS
from tokenomy.ledger.schema import GROUP_FIELDS, REPORT_GROUPS

PREFIX = "/admin/v1"
_REF = "#/components/schemas/{model}"


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    where: str  # "path" | "query"
    description: str
    schema: dict[str, Any] = field(default_factory=lambda: {"type": "string"})
    required: bool = False
    repeat: bool = False  # a query parameter that may be given several times

    def as_dict(self) -> dict[str, Any]:
        schema = {"type": "array", "items": self.schema} if self.repeat else self.schema
        out: dict[str, Any] = {
            "name": self.name,
            "in": self.where,
            "description": self.description,
            "required": self.required or self.where == "path",
            "schema": schema,
        }
        if self.repeat:
            out["style"], out["explode"] = "form", True
        return out


@dataclass(frozen=True, slots=True)
class Operation:
    method: str
    path: str
    operation_id: str
    summary: str
    tag: str
    response: type[BaseModel] | None
    status: int = 200
    body: type[BaseModel] | None = None
    params: tuple[Param, ...] = ()
    public: bool = False  # served without an admin key
    errors: tuple[int, ...] = (400, 401, 403)


# Query and path parameters state what the server accepts (ECMA-262 patterns); the
# server checks the same bounds and answers 400 outside them.
_TEXT = "[^\\x00-\\x1f\\x7f]"
_SCOPE_PATH = Param(
    "scope",
    "path",
    "The budget scope, e.g. team:research (URL-encoded).",
    # In a path a scope's name cannot hold "/" (set such budgets through the body).
    {
        "type": "string",
        "pattern": f"^({'|'.join(SCOPE_KINDS)}):[^\\x00-\\x1f\\x7f/]{{1,{MAX_NAME}}}$",
    },
)
_TEAM_NOTE = " A team admin sees only its own team's."
_FIELDS = "|".join(REPORT_GROUPS)
_TEXT_FIELDS = "|".join(f for f in GROUP_FIELDS if f != "status")
_RELATIVE = {"type": "string", "pattern": "^[0-9]{1,6}[mhdw]$"}


def _time_param(name: str, description: str) -> Param:
    return Param(
        name,
        "query",
        description,
        {
            "anyOf": [
                _RELATIVE,
                {"type": "string", "format": "date"},
                {"type": "string", "format": "date-time", "maxLength": MAX_TIME_CHARS},
            ]
        },
    )


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "get",
        f"{PREFIX}/openapi.json",
        "getOpenApi",
        "This OpenAPI document.",
        "meta",
        None,
        public=True,
        errors=(),
    ),
    Operation(
        "get",
        f"{PREFIX}/keys",
        "listKeys",
        "List gateway API keys (never secrets)." + _TEAM_NOTE,
        "keys",
        m.KeyList,
        params=(
            Param(
                "include_revoked",
                "query",
                "Include revoked keys (default true).",
                {"type": "boolean", "default": True},
            ),
        ),
    ),
    Operation(
        "post",
        f"{PREFIX}/keys",
        "createKey",
        "Create a gateway API key; the secret is in this response only. A team admin's keys "
        "get its team and an org the team's keys already use.",
        "keys",
        m.CreatedKeyOut,
        status=201,
        body=m.CreateKeyBody,
    ),
    Operation(
        "delete",
        f"{PREFIX}/keys/{{key_id}}",
        "revokeKey",
        "Revoke a gateway API key; gateways refuse it within about a second.",
        "keys",
        m.RevokedOut,
        params=(
            Param(
                "key_id",
                "path",
                "The key id (12 hex digits).",
                {"type": "string", "pattern": "^[0-9a-f]{12}$"},
            ),
        ),
        errors=(401, 403, 404),
    ),
    Operation(
        "get",
        f"{PREFIX}/budgets",
        "listBudgets",
        "Budgets with spent, reserved, remaining, period end and projected exhaustion."
        + _TEAM_NOTE,
        "budgets",
        m.BudgetList,
        errors=(401,),
    ),
    Operation(
        "put",
        f"{PREFIX}/budgets",
        "setBudget",
        "Create or replace the budget of (scope, unit); recorded in the audit trail.",
        "budgets",
        m.BudgetOut,
        body=m.SetBudgetBody,
    ),
    Operation(
        "delete",
        f"{PREFIX}/budgets/{{scope}}",
        "deleteBudget",
        "Delete the budget(s) on a scope.",
        "budgets",
        m.DeletedOut,
        params=(
            _SCOPE_PATH,
            Param(
                "unit",
                "query",
                "Only this unit (default: all).",
                {"type": "string", "enum": ["usd", "tokens"]},
            ),
        ),
        errors=(400, 401, 403, 404),
    ),
    Operation(
        "post",
        f"{PREFIX}/budgets/transfer",
        "transferBudget",
        "Move part of one budget's limit to another of the same unit (audited). 404 when "
        "either budget does not exist; 409 when the giving budget lacks the headroom or the "
        "receiving one would pass the maximum limit.",
        "budgets",
        m.TransferOut,
        body=m.TransferBody,
        errors=(400, 401, 403, 404, 409),
    ),
    Operation(
        "get",
        f"{PREFIX}/budgets/audit",
        "budgetAudit",
        "The audit trail of budget and rate-limit changes, newest first." + _TEAM_NOTE,
        "budgets",
        m.AuditList,
        params=(
            Param(
                "limit",
                "query",
                "Most recent N entries (1-1000, default 50).",
                {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
            ),
        ),
    ),
    Operation(
        "get",
        f"{PREFIX}/limits",
        "listLimits",
        "Rate limits (per minute) with what is used in the current minute." + _TEAM_NOTE,
        "limits",
        m.BudgetList,
        errors=(401,),
    ),
    Operation(
        "put",
        f"{PREFIX}/limits",
        "setLimits",
        "Set requests-per-minute and/or tokens-per-minute limits on a scope.",
        "limits",
        m.LimitsOut,
        body=m.SetLimitBody,
    ),
    Operation(
        "delete",
        f"{PREFIX}/limits/{{scope}}",
        "deleteLimits",
        "Remove rate limits from a scope.",
        "limits",
        m.DeletedOut,
        params=(
            _SCOPE_PATH,
            Param(
                "unit",
                "query",
                "Only this limit (default: both).",
                {"type": "string", "enum": ["requests", "tokens"]},
            ),
        ),
        errors=(400, 401, 403, 404),
    ),
    Operation(
        "get",
        f"{PREFIX}/stats/live",
        "liveStats",
        "Requests, tokens, spend and errors per second of this gateway process over the last "
        "seconds, with the top teams, agents and models (what `tokenomy top` shows)." + _TEAM_NOTE,
        "usage",
        m.LiveStatsOut,
        params=(
            Param(
                "window",
                "query",
                "Seconds to average over, 1-59 (default 10).",
                {"type": "string", "pattern": "^([1-9]|[1-5][0-9])$"},
            ),
        ),
    ),
    Operation(
        "get",
        f"{PREFIX}/usage",
        "usageReport",
        "Token usage and exact cost from the ledger, grouped. A team admin's report is "
        "always filtered to its org and team.",
        "usage",
        m.UsageReport,
        params=(
            _time_param(
                "since", "From: YYYY-MM-DD, an ISO time, or relative (24h, 7d; up to 6 digits)."
            ),
            _time_param("until", "To (a bare date includes that day)."),
            Param(
                "by",
                "query",
                "Group by a comma list of: " + ", ".join(REPORT_GROUPS) + ".",
                {"type": "string", "pattern": f"^({_FIELDS})(,({_FIELDS}))*$"},
            ),
            Param(
                "where",
                "query",
                "Filter FIELD=VALUE (repeatable); FIELD is one of "
                + ", ".join(GROUP_FIELDS)
                + "; status takes an HTTP status.",
                {
                    "type": "string",
                    "pattern": f"^(({_TEXT_FIELDS})={_TEXT}{{0,{MAX_FILTER_CHARS}}}"
                    "|status=[0-9]{1,3})$",
                },
                repeat=True,
            ),
        ),
    ),
)

_ERROR_TEXT = {
    400: "The request is invalid; the message names the field.",
    401: "Missing, invalid or revoked admin key.",
    403: "Outside what this admin key may see or change (team admins: their own team).",
    404: "No such key or budget.",
    409: "Refused by the current state (e.g. not enough headroom to transfer).",
    413: "The request body is larger than 64 KiB.",
    503: "The ledger database is unreachable; retry after Retry-After seconds.",
}


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the admin API."""
    _, defs = models_json_schema(
        [(model, "validation") for model in m.REQUEST_MODELS]
        + [(model, "serialization") for model in m.RESPONSE_MODELS],
        ref_template=_REF,
    )
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "tokenomy admin API",
            "version": "1",
            "description": "Gateway API keys, budgets, rate limits and usage — what the "
            "`tokenomy keys|budgets|limits|usage` commands offer. Authenticate with an admin "
            "key from `tokenomy admin create-key`. A team-admin key (`--org O --team T`) sees "
            "and changes only team T of org O: its keys, budgets and rate limits on key:KEY_ID "
            "of its keys and on team:T (unless another org also has a team T), and usage "
            "filtered to org O and team T. Money amounts are exact decimal JSON numbers (parse "
            "them as decimals, not binary floats). Every number has stated bounds; a value "
            "outside them is answered 400 with a message naming the field.",
        },
        "servers": [{"url": "/"}],
        "security": [{"adminKey": []}],
        "tags": [{"name": t} for t in ("keys", "budgets", "limits", "usage", "meta")],
        "paths": paths,
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {
                "adminKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An admin key: Authorization: Bearer tka-...",
                }
            },
        },
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": _REF.format(model=model.__name__)}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _operation(op: Operation) -> dict[str, Any]:
    out: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "tags": [op.tag],
    }
    if op.params:
        out["parameters"] = [p.as_dict() for p in op.params]
    if op.body is not None:
        out["requestBody"] = {"required": True, **_json(_ref(op.body), op.body.__doc__ or "")}
    ok = _ref(op.response) if op.response is not None else {"type": "object"}
    responses = {str(op.status): _json(ok, "Success.")}
    errors = set(op.errors)
    if not op.public:
        errors.add(503)
    if op.body is not None:
        errors.add(413)
    for status in sorted(errors):
        responses[str(status)] = _json(_ref(m.ErrorOut), _ERROR_TEXT[status])
    out["responses"] = responses
    if op.public:
        out["security"] = []
    return out
