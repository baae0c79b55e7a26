"""Ledger schema: the event columns, and named, ordered migrations per SQL dialect.

``LEDGER_MIGRATIONS`` holds the ledger's own tables (``usage_events``, ``api_keys``,
``usage_dead_letters``); ``tokenomy.sql`` runs it and records each step in ``_migrations``
(name, applied_ms). A migration never changes once released; add a new one.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import fields
from operator import itemgetter
from typing import Any

from tokenomy.events import Usage, UsageEvent
from tokenomy.ledger.rollups import ROLLUP_MIGRATION
from tokenomy.sql import Migration, MigrationSet

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
    # Added by 0006: where routing sent the call and why, and the task tree.
    "deployment",
    "region",
    "data_class",
    "attempts",
    "fallback_reason",
    "parent_task",
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
    "error_kind": "error_kind",
    "endpoint": "endpoint",
    "deployment": "deployment",
    "region": "region",
    "data_class": "data_class",
    "fallback_reason": "fallback_reason",
    "parent_task": "parent_task",
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

# Quarantine: journal lines the database refused (the row as JSON, or base64 when the line
# itself is not readable). Resolved once an event with that id is in usage_events.
_DEAD_LETTERS_DDL = """
CREATE TABLE usage_dead_letters (
    {seq},
    event_id TEXT NOT NULL DEFAULT '',
    quarantined_ms BIGINT NOT NULL,
    source TEXT NOT NULL,
    error TEXT NOT NULL,
    encoding TEXT NOT NULL,
    line TEXT NOT NULL
)
"""

# The ledger's tables. Budgets and admin keys declare theirs in their own packages; the
# runner is ``tokenomy.sql.apply_migrations``.
LEDGER_MIGRATIONS = MigrationSet(
    "ledger",
    (
        Migration.same(
            "0001_usage_events",
            _EVENTS_DDL,
            "CREATE INDEX usage_events_ts ON usage_events (ts_ms)",
        ),
        Migration.same("0002_api_keys", _KEYS_DDL),
        # The ledger is append-only: the database itself refuses edits and deletions. Each
        # dialect records its own name (a database never changes dialect).
        Migration(
            "0003_append_only_sqlite",
            sqlite=(
                "CREATE TRIGGER usage_events_no_update BEFORE UPDATE ON usage_events "
                "BEGIN SELECT RAISE(ABORT, 'usage_events is append-only'); END",
                "CREATE TRIGGER usage_events_no_delete BEFORE DELETE ON usage_events "
                "BEGIN SELECT RAISE(ABORT, 'usage_events is append-only'); END",
            ),
            postgresql=None,
        ),
        Migration(
            "0003_append_only_postgres",
            sqlite=None,
            postgresql=(
                "CREATE FUNCTION tokenomy_append_only() RETURNS trigger LANGUAGE plpgsql AS "
                "$$ BEGIN RAISE EXCEPTION 'usage_events is append-only'; END $$",
                "CREATE TRIGGER usage_events_append_only BEFORE UPDATE OR DELETE ON "
                "usage_events FOR EACH ROW EXECUTE FUNCTION tokenomy_append_only()",
            ),
        ),
        Migration(
            "0005_usage_dead_letters",
            sqlite=(_DEAD_LETTERS_DDL.format(seq="seq INTEGER PRIMARY KEY AUTOINCREMENT"),),
            postgresql=(
                _DEAD_LETTERS_DDL.format(
                    seq="seq BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"
                ),
            ),
        ),
        # Routing (which deployment served, where, under which data class, after how many
        # attempts and why it fell back) and sub-agent tasks (the parent task's id).
        Migration.same(
            "ledger.0006_routing_and_task_columns",
            *(
                f"ALTER TABLE usage_events ADD COLUMN {column} TEXT NOT NULL DEFAULT ''"
                for column in ("deployment", "region", "data_class", "fallback_reason")
            ),
            "ALTER TABLE usage_events ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0",
            "ALTER TABLE usage_events ADD COLUMN parent_task TEXT NOT NULL DEFAULT ''",
        ),
        # Hourly, daily and per-task rollups for dashboards (ledger/rollups.py).
        ROLLUP_MIGRATION,
    ),
)

Row = tuple[Any, ...]


# Limits of the last line of defence in ``event_to_row`` (the gateway refuses longer input
# before the upstream is called; these hold whatever arrives after it has answered).
_MAX_TEXT = 1024
_MAX_ID_TEXT = 256  # upstream_request_id: an upstream's header, any length
_MAX_ERROR_TEXT = 4096
_MAX_METADATA_JSON = 64 * 1024
DROPPED_METADATA = '{"tokenomy_dropped": "metadata not storable"}'
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def storable_text(value: object, limit: int = _MAX_TEXT) -> str:
    """``value`` as text that SQLite, PostgreSQL and the journal (orjson) all accept.

    NUL characters are dropped (PostgreSQL refuses them in text), invalid UTF-8 (lone
    surrogates, e.g. header bytes aiohttp decoded with ``surrogateescape``) becomes U+FFFD,
    and the text is cut to ``limit`` characters. Never raises.
    """
    if type(value) is not str:
        if value is None:
            return ""
        try:
            value = str(value)
        except Exception:
            return f"<unprintable {type(value).__name__}>"
    if len(value) > limit:
        value = value[:limit]
    if "\x00" in value:
        value = value.replace("\x00", "")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            try:  # the bytes a client or upstream really sent, where they were escaped
                raw = value.encode("utf-8", "surrogateescape")
            except UnicodeEncodeError:
                raw = value.encode("utf-8", "replace")
            value = raw.decode("utf-8", "replace").replace("\x00", "")
    return value


def _int(value: object, default: int | None = 0) -> int | None:
    """A 64-bit integer (SQL BIGINT, orjson) from whatever arrived; ``default`` if none."""
    if type(value) is not int:
        if isinstance(value, int) or (isinstance(value, float) and math.isfinite(value)):
            value = int(value)  # bool, int subclasses, finite floats
        else:
            return default
    return min(max(value, _INT64_MIN), _INT64_MAX)


def _float(value: object, default: float | None = 0.0) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        f = float(value) if abs(value) < 1e300 else math.inf
        return f if math.isfinite(f) else default
    return default


def _metadata_text(value: object) -> str | None:
    if value is None:
        return None
    if type(value) is not str or len(value) > _MAX_METADATA_JSON:
        return DROPPED_METADATA
    if value.isascii() and "\x00" not in value:
        return value
    # JSON text from orjson never holds these; anything else is not worth storing.
    return value if storable_text(value, _MAX_METADATA_JSON) == value else DROPPED_METADATA


def _text_ok(value: object, limit: int = _MAX_TEXT) -> bool:
    return type(value) is str and value.isascii() and len(value) <= limit and "\x00" not in value


def event_to_row(e: UsageEvent, metadata_json: str | None) -> Row:
    """The event as a row SQLite, PostgreSQL and the journal all accept. Never raises.

    The gateway validates what it records before calling the upstream; this is the last
    line: a served call must be journaled whatever its fields hold (an upstream's error
    text, request id or usage numbers arrive after it has answered).
    """
    u = e.usage if isinstance(e.usage, Usage) else Usage()
    row = (
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
        _metadata_text(metadata_json),
        e.api_format,
        e.endpoint,
        e.model,
        e.provider,
        e.upstream_model,
        e.location,
        1 if e.stream is True else 0,
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
        1 if e.estimated is True else 0,
        e.cost_nanos,
        e.price_source,
        e.latency_ms,
        e.ttft_ms,
        e.upstream_request_id,
        e.deployment,
        e.region,
        e.data_class,
        e.attempts,
        e.fallback_reason,
        e.parent_task,
    )
    # Almost every row is short clean ASCII text and 64-bit ints: one check for all of it
    # on the hot path; the field-by-field cleaning only when that check fails.
    return row if _is_clean(row) else _cleaned(row)


def _is_clean(row: Row) -> bool:
    try:
        texts = _TEXTS(row)
        joined = "".join(texts)  # TypeError if any is not a str
        array("q", _INTS(row))  # TypeError unless ints, OverflowError past 64 bits
    except (TypeError, OverflowError):
        return False
    cost, latency, ttft = _OTHERS(row)
    return (
        joined.isascii()
        and "\x00" not in joined
        and max(map(len, texts)) <= _MAX_ID_TEXT  # the smallest of the column limits
        and (cost is None or (type(cost) is int and _INT64_MIN <= cost <= _INT64_MAX))
        and type(latency) is float
        and math.isfinite(latency)
        and (ttft is None or (type(ttft) is float and math.isfinite(ttft)))
    )


def _cleaned(row: Row) -> Row:
    cleaned = list(row)
    for i in _TEXT_COLUMNS:
        cleaned[i] = storable_text(row[i], _TEXT_LIMITS.get(i, _MAX_TEXT))
    for i in _INT_COLUMNS:
        cleaned[i] = _int(row[i])
    cleaned[_COST] = _int(row[_COST], None)
    cleaned[_LATENCY] = _float(row[_LATENCY])
    cleaned[_TTFT] = _float(row[_TTFT], None)
    return tuple(cleaned)


_TEXT_COLUMNS: tuple[int, ...] = tuple(
    EVENT_COLUMNS.index(c)
    for c in (
        "id",
        "org",
        "team",
        "user_id",
        "key_id",
        "agent",
        "task",
        "step",
        "end_user",
        "api_format",
        "endpoint",
        "model",
        "provider",
        "upstream_model",
        "location",
        "error_kind",
        "error_message",
        "price_source",
        "upstream_request_id",
        "deployment",
        "region",
        "data_class",
        "fallback_reason",
        "parent_task",
    )
)
_TEXT_LIMITS: dict[int, int] = {
    EVENT_COLUMNS.index("error_message"): _MAX_ERROR_TEXT,
    EVENT_COLUMNS.index("upstream_request_id"): _MAX_ID_TEXT,
}
# The integer columns: the request's time and status, and every token counter of Usage.
_INT_COLUMNS: tuple[int, ...] = tuple(
    EVENT_COLUMNS.index(c)
    for c in ("ts_ms", "status", "attempts", *(f.name for f in fields(Usage)))
)
_COST, _LATENCY, _TTFT = (EVENT_COLUMNS.index(c) for c in ("cost_nanos", "latency_ms", "ttft_ms"))
_TEXTS = itemgetter(*_TEXT_COLUMNS)
_INTS = itemgetter(*_INT_COLUMNS)
_OTHERS = itemgetter(_COST, _LATENCY, _TTFT)


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
        deployment,
        region,
        data_class,
        attempts,
        fallback_reason,
        parent_task,
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
        deployment=deployment,
        region=region,
        data_class=data_class,
        attempts=attempts,
        fallback_reason=fallback_reason,
        parent_task=parent_task,
    )
