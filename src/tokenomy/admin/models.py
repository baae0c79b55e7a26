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
    WithJsonSchema,
    model_validator,
)

from tokenomy.budgets.model import parse_alerts, parse_scope


def _check_scope(value: str) -> str:
    parse_scope(value)
    return value


def _alerts(value: Any) -> Any:
    # The CLI's comma form ("0.5,0.8,1" or "50%,80%") is accepted as well as a list.
    return list(parse_alerts(value)) if isinstance(value, str) else value


def _check_alerts(value: list[Decimal]) -> list[Decimal]:
    return list(parse_alerts(",".join(str(a) for a in value)))


Scope = Annotated[
    str,
    AfterValidator(_check_scope),
    Field(
        description="org:O, team:T, user:U, key:KEY_ID or agent:A",
        examples=["team:research"],
        json_schema_extra={"pattern": "^(org|team|user|key|agent):.+$"},
    ),
]
# A limit or amount: a JSON number or a decimal string, read exactly (never via a float).
Amount = Annotated[Decimal, Field(ge=0, allow_inf_nan=False, examples=["500", 12.5])]
# Exact decimals in responses are JSON numbers written digit for digit.
Number = Annotated[Decimal, WithJsonSchema({"type": "number"})]
PerMinute = Annotated[int, Field(strict=True, ge=0)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- request bodies ----------------------------------------------------------------------
class CreateKeyBody(_Body):
    """A new gateway API key. A team admin's keys always get its team."""

    org: str | None = Field(
        default=None,
        description="Organisation the key bills to. Required for a global admin; a team "
        "admin may omit it when the team's keys all use one org.",
    )
    team: str | None = Field(default=None, description="Team the key bills to.")
    user: str = Field(default="", description="User (employee or agent owner).")
    name: str = Field(default="", description="A label for the key.")


class SetBudgetBody(_Body):
    """Create or replace the budget of (scope, unit)."""

    scope: Scope
    limit: Amount = Field(description="Limit in the unit; USD amounts are exact decimals.")
    unit: Literal["usd", "tokens"] = "usd"
    period: Literal["day", "week", "month", "year", "total"] = "month"
    hard: bool = Field(default=True, strict=True, description="false: alert only, never refuse.")
    alerts: Annotated[list[Decimal], BeforeValidator(_alerts), AfterValidator(_check_alerts)] = (
        Field(
            default_factory=lambda: [Decimal("0.5"), Decimal("0.8"), Decimal(1)],
            description='Alert thresholds as fractions of the limit (also "0.5,0.8,1").',
        )
    )


class TransferBody(_Body):
    """Move part of one budget's limit to another budget of the same unit."""

    from_scope: Scope = Field(alias="from")
    to: Scope
    amount: Amount = Field(gt=0)
    unit: Literal["usd", "tokens"] = "usd"


class SetLimitBody(_Body):
    """Requests-per-minute and/or tokens-per-minute limits on a scope."""

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
    endpoint: str | None = None
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
    ErrorOut,
)
