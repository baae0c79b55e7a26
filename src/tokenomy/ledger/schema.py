"""Ledger schema: the event columns, and named, ordered migrations per SQL dialect.

Migrations are applied in order and recorded in ``_migrations`` (name, applied_at),
the way sqlite-utils does it: a migration never changes once released; add a new one.
"""

from __future__ import annotations

from typing import Any

from tokenomy.types import Usage, UsageEvent

# Column order of ``usage_events``; ``event_to_row`` and ``row_to_event`` follow it.
EVENT_COLUMNS: tuple[str, ...] = (
    "id",
    "ts_ms",
    "org",
    "team",
    "user_id",
    "key_id",
    "agent",
    "task",
    "step",
    "end_user",
    "metadata",
    "api_format",
    "endpoint",
    "model",
    "provider",
    "upstream_model",
    "location",
    "stream",
    "status",
    "error_kind",
    "error_message",
    "input_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
    "estimated",
    "cost_nanos",
    "price_source",
    "latency_ms",
    "ttft_ms",
    "upstream_request_id",
)

# Report group fields → SQL column (``day`` is dialect specific, see stores).
GROUP_FIELDS: dict[str, str] = {
    "org": "org",
    "team": "team",
    "user": "user_id",
    "key": "key_id",
    "agent": "agent",
    "task": "task",
    "step": "step",
    "model": "model",
    "provider": "provider",
    "location": "location",
    "status": "status",
    "endpoint": "endpoint",
}
REPORT_GROUPS = (*GROUP_FIELDS, "day")

_EVENTS_DDL = """
CREATE TABLE usage_events (
    id TEXT PRIMARY KEY,
    ts_ms BIGINT NOT NULL,
    org TEXT NOT NULL DEFAULT '',
    team TEXT NOT NULL DEFAULT '',
    user_id TEXT NOT NULL DEFAULT '',
    key_id TEXT NOT NULL DEFAULT '',
    agent TEXT NOT NULL DEFAULT '',
    task TEXT NOT NULL DEFAULT '',
    step TEXT NOT NULL DEFAULT '',
    end_user TEXT NOT NULL DEFAULT '',
    metadata TEXT,
    api_format TEXT NOT NULL,
    endpoint TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT NOT NULL DEFAULT '',
    upstream_model TEXT NOT NULL DEFAULT '',
    location TEXT NOT NULL DEFAULT '',
    stream SMALLINT NOT NULL DEFAULT 0,
    status INTEGER NOT NULL,
    error_kind TEXT NOT NULL DEFAULT '',
    error_message TEXT NOT NULL DEFAULT '',
    input_tokens BIGINT NOT NULL DEFAULT 0,
    cached_tokens BIGINT NOT NULL DEFAULT 0,
    cache_write_tokens BIGINT NOT NULL DEFAULT 0,
    cache_write_1h_tokens BIGINT NOT NULL DEFAULT 0,
    output_tokens BIGINT NOT NULL DEFAULT 0,
    reasoning_tokens BIGINT NOT NULL DEFAULT 0,
    audio_input_tokens BIGINT NOT NULL DEFAULT 0,
    audio_output_tokens BIGINT NOT NULL DEFAULT 0,
    estimated SMALLINT NOT NULL DEFAULT 0,
    cost_nanos BIGINT,
    price_source TEXT NOT NULL DEFAULT '',
    latency_ms DOUBLE PRECISION NOT NULL DEFAULT 0,
    ttft_ms DOUBLE PRECISION,
    upstream_request_id TEXT NOT NULL DEFAULT ''
)
"""

_KEYS_DDL = """
CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    name TEXT NOT NULL DEFAULT '',
    org TEXT NOT NULL,
    team TEXT NOT NULL DEFAULT '',
    user_id TEXT NOT NULL DEFAULT '',
    created_ms BIGINT NOT NULL,
    revoked_ms BIGINT
)
"""

COMMON_MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "0001_usage_events",
        [
            _EVENTS_DDL,
            "CREATE INDEX usage_events_ts ON usage_events (ts_ms)",
        ],
    ),
    ("0002_api_keys", [_KEYS_DDL]),
]

# Budgets, rate limits and admin keys (same SQL on both dialects).
BUDGET_MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "0004_budgets",
        [
            """CREATE TABLE budgets (
            id TEXT PRIMARY KEY,
            kind TEXT NOT NULL,
            scope TEXT NOT NULL,
            unit TEXT NOT NULL,
            limit_amount BIGINT NOT NULL,
            period TEXT NOT NULL,
            hard SMALLINT NOT NULL,
            alerts TEXT NOT NULL DEFAULT '',
            created_ms BIGINT NOT NULL,
            updated_ms BIGINT NOT NULL,
            UNIQUE (kind, scope, unit)
        )""",
            """CREATE TABLE budget_usage (
            budget_id TEXT NOT NULL,
            period_start_ms BIGINT NOT NULL,
            spent BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (budget_id, period_start_ms)
        )""",
            """CREATE TABLE budget_leases (
            budget_id TEXT NOT NULL,
            period_start_ms BIGINT NOT NULL,
            holder TEXT NOT NULL,
            amount BIGINT NOT NULL,
            heartbeat_ms BIGINT NOT NULL,
            PRIMARY KEY (budget_id, period_start_ms, holder)
        )""",
            """CREATE TABLE budget_alerts (
            budget_id TEXT NOT NULL,
            period_start_ms BIGINT NOT NULL,
            threshold TEXT NOT NULL,
            fired_ms BIGINT NOT NULL,
            spent BIGINT NOT NULL,
            PRIMARY KEY (budget_id, period_start_ms, threshold)
        )""",
            """CREATE TABLE budget_audit (
            ts_ms BIGINT NOT NULL,
            action TEXT NOT NULL,
            budget_id TEXT NOT NULL,
            actor TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT ''
        )""",
            "CREATE INDEX budget_audit_ts ON budget_audit (ts_ms)",
            """CREATE TABLE admin_keys (
            key_id TEXT PRIMARY KEY,
            secret_hash TEXT NOT NULL UNIQUE,
            prefix TEXT NOT NULL,
            name TEXT NOT NULL DEFAULT '',
            team TEXT,
            created_ms BIGINT NOT NULL,
            revoked_ms BIGINT
        )""",
        ],
    ),
]

SQLITE_MIGRATIONS: list[tuple[str, list[str]]] = [
    *COMMON_MIGRATIONS,
    # The ledger is append-only: the database itself refuses edits and deletions.
    (
        "0003_append_only_sqlite",
        [
            "CREATE TRIGGER usage_events_no_update BEFORE UPDATE ON usage_events "
            "BEGIN SELECT RAISE(ABORT, 'usage_events is append-only'); END",
            "CREATE TRIGGER usage_events_no_delete BEFORE DELETE ON usage_events "
            "BEGIN SELECT RAISE(ABORT, 'usage_events is append-only'); END",
        ],
    ),
    *BUDGET_MIGRATIONS,
]

POSTGRES_MIGRATIONS: list[tuple[str, list[str]]] = [
    *COMMON_MIGRATIONS,
    (
        "0003_append_only_postgres",
        [
            "CREATE FUNCTION tokenomy_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'usage_events is append-only'; END $$",
            "CREATE TRIGGER usage_events_append_only BEFORE UPDATE OR DELETE ON usage_events "
            "FOR EACH ROW EXECUTE FUNCTION tokenomy_append_only()",
        ],
    ),
    *BUDGET_MIGRATIONS,
]

Row = tuple[Any, ...]


def event_to_row(e: UsageEvent, metadata_json: str | None) -> Row:
    u = e.usage
    return (
        e.id,
        e.ts_ms,
        e.org,
        e.team,
        e.user,
        e.key_id,
        e.agent,
        e.task,
        e.step,
        e.end_user,
        metadata_json,
        e.api_format,
        e.endpoint,
        e.model,
        e.provider,
        e.upstream_model,
        e.location,
        int(e.stream),
        e.status,
        e.error_kind,
        e.error_message,
        u.input_tokens,
        u.cached_tokens,
        u.cache_write_tokens,
        u.cache_write_1h_tokens,
        u.output_tokens,
        u.reasoning_tokens,
        u.audio_input_tokens,
        u.audio_output_tokens,
        int(e.estimated),
        e.cost_nanos,
        e.price_source,
        e.latency_ms,
        e.ttft_ms,
        e.upstream_request_id,
    )


def row_to_event(r: Row, metadata: dict[str, Any] | None) -> UsageEvent:
    (
        id_,
        ts_ms,
        org,
        team,
        user,
        key_id,
        agent,
        task,
        step,
        end_user,
        _meta,
        api_format,
        endpoint,
        model,
        provider,
        upstream_model,
        location,
        stream,
        status,
        error_kind,
        error_message,
        inp,
        cached,
        cw,
        cw1h,
        out,
        reasoning,
        ain,
        aout,
        estimated,
        cost,
        price_source,
        latency_ms,
        ttft_ms,
        upstream_request_id,
    ) = r
    return UsageEvent(
        id=id_,
        ts_ms=ts_ms,
        api_format=api_format,
        endpoint=endpoint,
        model=model,
        status=status,
        org=org,
        team=team,
        user=user,
        key_id=key_id,
        agent=agent,
        task=task,
        step=step,
        end_user=end_user,
        metadata=metadata,
        provider=provider,
        upstream_model=upstream_model,
        location=location,
        stream=bool(stream),
        error_kind=error_kind,
        error_message=error_message,
        usage=Usage(inp, cached, cw, cw1h, out, reasoning, ain, aout),
        estimated=bool(estimated),
        cost_nanos=cost,
        price_source=price_source,
        latency_ms=latency_ms,
        ttft_ms=ttft_ms,
        upstream_request_id=upstream_request_id,
    )
