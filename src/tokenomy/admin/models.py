"""Request bodies and response shapes of the admin API, as pydantic models.

Bodies are validated with these models (admin traffic is rare, so a model per body costs
nothing that matters); responses are built by the library functions the CLI uses, and the
response models here only describe them for the OpenAPI document — the tests check that
real responses match them field for field.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    WithJsonSchema,
    model_validator,
)

from tokenomy.budgets.model import (
    MAX_ALERTS,
    MAX_COUNT,
    MAX_NAME,
    MAX_USD,
    SCOPE_KINDS,
    check_name,
    parse_alerts,
    parse_scope,
)

# The JSON Schema of each input states the bounds the server enforces, and never admits a
# value the server would refuse (schemathesis holds them to it): ECMA-262 patterns.
NAME_PATTERN = "^[^\\x00-\\x1f\\x7f]*$"
SCOPE_PATTERN = f"^({'|'.join(SCOPE_KINDS)}):[^\\x00-\\x1f\\x7f]{{1,{MAX_NAME}}}$"
_USD_DIGITS = len(str(int(MAX_USD))) - 1  # 9: every 9-digit amount is below MAX_USD
_COUNT_DIGITS = len(str(MAX_COUNT)) - 1  # 15


def _amount_schema(unit: str, *, positive: bool) -> dict[str, Any]:
    """An amount in ``unit``: a JSON number or a decimal string, within the server's bounds."""
    if unit == "usd":
        number: dict[str, Any] = {"type": "number", "maximum": int(MAX_USD)}
        # USD rounds to whole nano-USD: a positive amount must not round to 0.
        number["minimum"] = Decimal("0.000000001") if positive else 0
        d, places = _USD_DIGITS, 9
        text = (
            f"^([0-9]{{1,{d}}}\\.[0-9]{{0,{places - 1}}}[1-9]|0*[1-9][0-9]{{0,{d - 1}}}"
            f"(\\.[0-9]{{1,{places}}})?)$"
            if positive
            else f"^[0-9]{{1,{d}}}(\\.[0-9]{{1,{places}}})?$"
        )
    else:
        number = {"type": "integer", "minimum": 1 if positive else 0, "maximum": MAX_COUNT}
        d = _COUNT_DIGITS
        text = f"^0*[1-9][0-9]{{0,{d - 1}}}$" if positive else f"^[0-9]{{1,{d}}}$"
    return {"anyOf": [number, {"type": "string", "pattern": text}]}


def _by_unit(field: str, *, positive: bool) -> dict[str, Any]:
    """JSON Schema: ``field``'s bounds follow the body's ``unit`` (usd when absent)."""
    return {
        "allOf": [
            {
                "if": {"properties": {"unit": {"const": "tokens"}}, "required": ["unit"]},
                "then": {"properties": {field: _amount_schema("tokens", positive=positive)}},
                "else": {"properties": {field: _amount_schema("usd", positive=positive)}},
            }
        ]
    }


def _either_unit(positive: bool) -> dict[str, Any]:
    usd = _amount_schema("usd", positive=positive)["anyOf"]
    tokens = _amount_schema("tokens", positive=positive)["anyOf"]
    return {"anyOf": [*usd, *tokens]}


def _whole(value: Any) -> Any:
    """A JSON integer, written 60 or 60.0 (both are integers to JSON Schema); not a bool
    or a string. Bounded before int(): int(Decimal("1e999999")) would take minutes."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        raise ValueError("Input should be a valid integer")
    if isinstance(value, Decimal):
        if not value.is_finite() or value != value.to_integral_value():
            raise ValueError("Input should be a valid integer")
        if not 0 <= value <= MAX_COUNT:
            raise ValueError(f"Input should be between 0 and {MAX_COUNT:,}")
        return int(value)
    return value


def _check_scope(value: str) -> str:
    parse_scope(value)
    return value


def _check_name(value: str) -> str:
    return check_name("the value", value)


def _alerts(value: Any) -> Any:
    # The CLI's comma form ("0.5,0.8,1" or "50%,80%") is accepted as well as a list.
    return list(parse_alerts(value)) if isinstance(value, str) else value


def _check_alerts(value: list[Decimal]) -> list[Decimal]:
    if len(value) > 100:  # before joining: a long list is refused without the work
        raise ValueError(f"at most {MAX_ALERTS} alert thresholds")
    return list(parse_alerts(",".join(str(a) for a in value)))


Scope = Annotated[
    str,
    AfterValidator(_check_scope),
    Field(
        description="org:O, team:T, user:U, key:KEY_ID or agent:A",
        examples=["team:research"],
    ),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": SCOPE_PATTERN,
            "maxLength": MAX_NAME + 6,
            "description": "org:O, team:T, user:U, key:KEY_ID or agent:A",
            "examples": ["team:research"],
        }
    ),
]
# A name (org, team, user, label): no control characters, at most MAX_NAME characters.
Name = Annotated[
    str,
    AfterValidator(_check_name),
    WithJsonSchema({"type": "string", "maxLength": MAX_NAME, "pattern": NAME_PATTERN}),
]
# A limit or amount: a JSON number or a decimal string, read exactly (never via a float).
# Its bounds depend on the unit, so to_amount checks them (the schema states them per unit).
Amount = Annotated[
    Decimal,
    Field(allow_inf_nan=False),
    WithJsonSchema({**_either_unit(positive=False), "examples": ["500"]}),
]
PositiveAmount = Annotated[
    Decimal,
    Field(allow_inf_nan=False),
    WithJsonSchema({**_either_unit(positive=True), "examples": ["100"]}),
]
# Exact decimals in responses are JSON numbers written digit for digit.
Number = Annotated[Decimal, WithJsonSchema({"type": "number"})]
_PER_MINUTE: dict[str, JsonValue] = {"type": "integer", "minimum": 0, "maximum": MAX_COUNT}
PerMinute = Annotated[
    int, BeforeValidator(_whole), Field(ge=0, le=MAX_COUNT), WithJsonSchema(_PER_MINUTE)
]
Alerts = Annotated[
    list[Decimal],
    BeforeValidator(_alerts),
    AfterValidator(_check_alerts),
    WithJsonSchema(
        {
            "type": "array",
            "items": {"type": "number", "minimum": Decimal("0.000000001"), "maximum": 10},
            "maxItems": MAX_ALERTS,
            "description": "Alert thresholds as fractions of the limit, above 0 and at most "
            '10 (the CLI\'s comma form "0.5,0.8,1" or "50%,80%" is accepted too).',
        }
    ),
]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- request bodies ----------------------------------------------------------------------
class CreateKeyBody(_Body):
    """A new gateway API key. A team admin's keys always get its org and team."""

    org: Name | None = Field(
        default=None,
        description="Organisation the key bills to. Required for a global admin; a team "
        "admin's keys always get its own org.",
    )
    team: Name | None = Field(default=None, description="Team the key bills to.")
    user: Name = Field(default="", description="User (employee or agent owner).")
    name: Name = Field(default="", description="A label for the key.")


class SetBudgetBody(_Body):
    """Create or replace the budget of (scope, unit)."""

    model_config = ConfigDict(json_schema_extra=_by_unit("limit", positive=False))

    scope: Scope
    limit: Amount = Field(
        description=f"Limit in the unit: at most {int(MAX_USD):,} USD (exact decimals, rounded "
        f"to whole nano-USD) or {MAX_COUNT:,} tokens."
    )
    unit: Literal["usd", "tokens"] = "usd"
    period: Literal["day", "week", "month", "year", "total"] = "month"
    hard: bool = Field(default=True, strict=True, description="false: alert only, never refuse.")
    alerts: Alerts = Field(default_factory=lambda: [Decimal("0.5"), Decimal("0.8"), Decimal(1)])


class TransferBody(_Body):
    """Move part of one budget's limit to another budget of the same unit."""

    model_config = ConfigDict(json_schema_extra=_by_unit("amount", positive=True))

    from_scope: Scope = Field(alias="from")
    to: Scope
    amount: PositiveAmount = Field(
        description="How much limit to move (USD amounts round to whole nano-USD)."
    )
    unit: Literal["usd", "tokens"] = "usd"


class SetLimitBody(_Body):
    """Requests-per-minute and/or tokens-per-minute limits on a scope."""

    # At least one of the two, as a number (the server also reads null as "not given").
    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [{"required": [f], "properties": {f: _PER_MINUTE}} for f in ("rpm", "tpm")]
        }
    )

    scope: Scope
    rpm: PerMinute | None = Field(default=None, description="Requests per minute.")
    tpm: PerMinute | None = Field(default=None, description="Tokens per minute.")

    @model_validator(mode="after")
    def _one_of(self) -> SetLimitBody:
        if self.rpm is None and self.tpm is None:
            raise ValueError("give rpm and/or tpm")
        return self


# -- responses ---------------------------------------------------------------------------
class ApiKeyOut(_Out):
    key_id: str
    prefix: str
    name: str
    org: str
    team: str
    user: str
    created_ms: int
    revoked: bool
    revoked_ms: int | None


class CreatedKeyOut(ApiKeyOut):
    secret: str = Field(description="Shown once; only its hash is stored.")


class KeyList(_Out):
    data: list[ApiKeyOut]


class RevokedOut(_Out):
    key_id: str
    revoked: bool


class BudgetRowOut(_Out):
    """A budget or rate limit with its state in the current period."""

    scope: str
    kind: Literal["budget", "rate_limit"]
    unit: Literal["usd", "tokens", "requests"]
    hard: bool
    period: str
    limit: Number
    spent: Number
    reserved: Number = Field(description="Leased to gateways: in-flight reservations.")
    remaining: Number
    period_end: str | None = Field(description="ISO time of the reset; null for total.")
    burn_per_day: Number = Field(description="Consumed in the last 24 hours.")
    projected_exhaustion: str | None
    runs_out_before_reset: bool
    alerts: str


class BudgetList(_Out):
    data: list[BudgetRowOut]


class BudgetOut(_Out):
    """A budget or rate-limit definition as stored."""

    scope: str
    kind: Literal["budget", "rate_limit"]
    unit: Literal["usd", "tokens", "requests"]
    limit: Number
    period: str
    hard: bool
    alerts: list[Number]


class LimitsOut(_Out):
    data: list[BudgetOut]


class TransferOut(_Out):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_budget: BudgetOut = Field(alias="from")
    to: BudgetOut


class DeletedOut(_Out):
    scope: str
    deleted: int


class AuditEntryOut(_Out):
    time: str
    action: str
    budget_id: str
    actor: str
    detail: dict[str, Any]


class AuditList(_Out):
    data: list[AuditEntryOut]


class UsageRowOut(_Out):
    """Totals of one group; only the fields named in ``by`` are present."""

    org: str | None = None
    team: str | None = None
    user: str | None = None
    key: str | None = None
    agent: str | None = None
    task: str | None = None
    step: str | None = None
    model: str | None = None
    provider: str | None = None
    location: str | None = None
    status: int | None = None
    error_kind: str | None = None
    endpoint: str | None = None
    deployment: str | None = None
    region: str | None = None
    data_class: str | None = None
    fallback_reason: str | None = None
    parent_task: str | None = None
    day: str | None = None
    requests: int
    input_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    output_tokens: int
    reasoning_tokens: int
    cost_usd: Number
    estimated_requests: int
    unpriced_requests: int


class UsageReport(_Out):
    data: list[UsageRowOut]


class LiveRatesOut(_Out):
    """Calls over the window, and their rates (``tokenomy.observe.live``)."""

    name: str | None = None  # in a top list: the team, agent or model
    requests: int
    errors: int
    tokens: int
    cost_usd: str = Field(description="Exact decimal string.")
    requests_per_s: float
    tokens_per_s: float
    cost_usd_per_hour: str = Field(description="Exact decimal string.")
    error_rate: float


class LiveTopOut(_Out):
    teams: list[LiveRatesOut]
    agents: list[LiveRatesOut]
    models: list[LiveRatesOut]


class LiveProcessOut(_Out):
    pid: int
    started_ms: int


class LiveStatsOut(LiveRatesOut):
    """This gateway process's traffic over the last ``window_s`` seconds."""

    window_s: int
    now_ms: int
    process: LiveProcessOut
    p50_ms: float | None
    p99_ms: float | None
    top: LiveTopOut


class ErrorDetail(_Out):
    message: str
    type: str
    param: str | None
    code: str


class ErrorOut(_Out):
    error: ErrorDetail


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    CreateKeyBody,
    SetBudgetBody,
    TransferBody,
    SetLimitBody,
)
RESPONSE_MODELS: tuple[type[BaseModel], ...] = (
    KeyList,
    CreatedKeyOut,
    RevokedOut,
    BudgetList,
    BudgetOut,
    LimitsOut,
    TransferOut,
    DeletedOut,
    AuditList,
    UsageReport,
    LiveStatsOut,
    ErrorOut,
)
