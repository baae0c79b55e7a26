"""Import usage history from elsewhere (another gateway, a provider's usage export).

One event per row, as JSON lines or CSV with a header. Fields (``IMPORT_FIELDS``):

* ``id`` (required): the event's id; a row whose id the ledger already holds is skipped,
  so importing the same file twice imports it once.
* ``ts`` (required): ISO-8601 (``2026-11-01T12:00:00Z``; no offset means UTC) or Unix
  epoch milliseconds.
* ``model`` (required), ``provider``, ``org``, ``team``, ``user``, ``agent``, ``task``.
* ``input_tokens`` (all input, caches included), ``cached_tokens`` and
  ``cache_write_tokens`` (parts of it), ``output_tokens``, ``reasoning_tokens`` (part of it):
  whole numbers >= 0 (empty or absent: 0).
* ``cost_usd`` (optional, exact decimal): what the call cost. When absent, the call is
  priced from the genai-prices catalog in force at ``ts`` (caches at their own rates).

Every row is validated (and priced) before anything is written: a bad row is reported with
its line number and nothing is imported. The rows then go in through ``event_to_row``, the
path the gateway's own events take, in one transaction.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

from tokenomy.events import Usage, UsageEvent
from tokenomy.ledger.schema import Row, event_to_row
from tokenomy.ledger.store import Store, metadata_json
from tokenomy.money import NANOS_PER_USD

IMPORT_FIELDS: tuple[str, ...] = (
    "id",
    "ts",
    "org",
    "team",
    "user",
    "agent",
    "task",
    "provider",
    "model",
    "input_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
)
_TEXT_FIELDS = ("org", "team", "user", "agent", "task", "provider")
_TOKEN_FIELDS = (
    "input_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
)
FORMATS = ("jsonl", "csv")
_MAX_TEXT = 200
_MAX_TOKENS = 10**15
_MAX_COST_USD = Decimal(10) ** 9
_MS_2000, _MS_2200 = 946_684_800_000, 7_258_118_400_000
IMPORT_ENDPOINT = "import"


class ImportRowError(ValueError):
    """A row that cannot be imported; ``line`` is its line number in the file (1-based)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


@dataclass(frozen=True, slots=True)
class ImportResult:
    """What an import did (or, with ``dry_run``, would do)."""

    rows: int
    imported: int
    skipped_ids: list[str] = field(default_factory=list)  # already in the ledger
    priced_from_catalog: int = 0
    cost_usd: Decimal = Decimal(0)
    first_ts_ms: int | None = None
    last_ts_ms: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""

        def iso(ms: int | None) -> str | None:
            if ms is None:
                return None
            return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")

        return {
            "rows": self.rows,
            "imported": self.imported,
            "skipped_existing": len(self.skipped_ids),
            "skipped_ids": self.skipped_ids[:100],
            "priced_from_catalog": self.priced_from_catalog,
            "cost_usd": self.cost_usd,
            "first_ts": iso(self.first_ts_ms),
            "last_ts": iso(self.last_ts_ms),
        }


def detect_format(path: Path, fmt: str | None) -> str:
    """``fmt`` if given, else from the file extension (``.csv`` → csv, else jsonl)."""
    if fmt is not None:
        if fmt not in FORMATS:
            raise ValueError(f"--format: jsonl or csv, got {fmt!r}")
        return fmt
    return "csv" if path.suffix.lower() == ".csv" else "jsonl"


def read_rows(path: Path, file_format: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, fields)`` for every row of the file (blank JSON lines skipped)."""
    with path.open(encoding="utf-8", newline="") as fh:
        if file_format == "csv":
            reader = csv.DictReader(fh)
            unknown = [f for f in reader.fieldnames or () if f not in IMPORT_FIELDS]
            if unknown:
                raise ImportRowError(1, _unknown_message(unknown))
            for record in reader:
                if None in record:
                    raise ImportRowError(reader.line_num, "more values than header columns")
                yield reader.line_num, dict(record)
            return
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text, parse_float=Decimal)
            except json.JSONDecodeError as exc:
                raise ImportRowError(number, f"not JSON ({exc.msg})") from None
            if not isinstance(value, dict):
                raise ImportRowError(number, "expected a JSON object")
            yield number, value


def _unknown_message(names: Sequence[str]) -> str:
    return f"unknown field {names[0]!r} (fields: {', '.join(IMPORT_FIELDS)})"


def parse_ts(value: Any) -> int:
    """Epoch milliseconds from ISO-8601 text or epoch milliseconds (int or digits)."""
    if isinstance(value, bool):
        raise ValueError("ts: expected ISO-8601 or epoch milliseconds")
    if isinstance(value, int):
        ms = value
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        ms = int(value.strip())
    elif isinstance(value, str) and value.strip():
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"ts: not ISO-8601 or epoch milliseconds: {value!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
        ms = (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000
    else:
        raise ValueError("ts: required (ISO-8601 or epoch milliseconds)")
    if not _MS_2000 <= ms < _MS_2200:
        raise ValueError(f"ts: {value!r} is not between 2000 and 2200 (epoch milliseconds?)")
    return ms


def _tokens(name: str, value: Any) -> int:
    if value is None or value == "":
        return 0
    if isinstance(value, bool):
        raise ValueError(f"{name}: expected a whole number >= 0, got {value!r}")
    if isinstance(value, str):
        text = value.strip()
        if not text.isdigit():
            raise ValueError(f"{name}: expected a whole number >= 0, got {value!r}")
        value = int(text)
    if isinstance(value, Decimal) and value == value.to_integral_value():
        value = int(value)
    if not isinstance(value, int) or not 0 <= value <= _MAX_TOKENS:
        raise ValueError(f"{name}: expected a whole number >= 0, got {value!r}")
    return value


def _text(name: str, value: Any) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected text, got {value!r}")
    if len(value) > _MAX_TEXT or any(ord(c) < 32 or c == "\x7f" for c in value):
        raise ValueError(f"{name}: at most {_MAX_TEXT} characters, no control characters")
    return value


def _cost_nanos(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ValueError(f"cost_usd: expected a decimal number, got {value!r}")
    try:
        usd = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
    except InvalidOperation:
        raise ValueError(f"cost_usd: expected a decimal number, got {value!r}") from None
    if not usd.is_finite() or not 0 <= usd <= _MAX_COST_USD:
        raise ValueError(f"cost_usd: expected 0 to {_MAX_COST_USD:,} USD, got {value!r}")
    return int((usd * NANOS_PER_USD).to_integral_value())


class Pricer(Protocol):
    """Prices a call without ``cost_usd`` (``tokenomy.pricing.history.CatalogPricer``)."""

    def price(self, provider: str, model: str, usage: Usage, ts_ms: int) -> tuple[int, str]:
        """``(cost_nanos, price_source)``; ValueError when it cannot."""
        ...


class _NoPricer:
    def price(self, provider: str, model: str, usage: Usage, ts_ms: int) -> tuple[int, str]:
        raise ValueError("cost_usd: required (no price catalog given to the import)")


def row_to_event(fields: dict[str, Any], pricer: Pricer) -> tuple[UsageEvent, bool]:
    """Validate one row and build its event; True when it was priced from the catalog."""
    unknown = [k for k in fields if k not in IMPORT_FIELDS]
    if unknown:
        raise ValueError(_unknown_message(unknown))
    event_id = _text("id", fields.get("id"))
    if not event_id.strip():
        raise ValueError("id: required (it makes a second import of the same file a no-op)")
    model = _text("model", fields.get("model"))
    if not model:
        raise ValueError("model: required")
    ts_ms = parse_ts(fields.get("ts"))
    texts = {name: _text(name, fields.get(name)) for name in _TEXT_FIELDS}
    tokens = {name: _tokens(name, fields.get(name)) for name in _TOKEN_FIELDS}
    if tokens["cached_tokens"] + tokens["cache_write_tokens"] > tokens["input_tokens"]:
        raise ValueError(
            "cached_tokens + cache_write_tokens exceed input_tokens (input includes caches)"
        )
    if tokens["reasoning_tokens"] > tokens["output_tokens"]:
        raise ValueError("reasoning_tokens exceed output_tokens (output includes reasoning)")
    usage = Usage(
        input_tokens=tokens["input_tokens"],
        cached_tokens=tokens["cached_tokens"],
        cache_write_tokens=tokens["cache_write_tokens"],
        output_tokens=tokens["output_tokens"],
        reasoning_tokens=tokens["reasoning_tokens"],
    )
    cost = _cost_nanos(fields.get("cost_usd"))
    priced = cost is None
    if cost is None:
        cost, source = pricer.price(texts["provider"], model, usage, ts_ms)
    else:
        source = "import:cost_usd"
    event = UsageEvent(
        id=event_id,
        ts_ms=ts_ms,
        api_format=IMPORT_ENDPOINT,
        endpoint=IMPORT_ENDPOINT,
        model=model,
        status=200,
        org=texts["org"],
        team=texts["team"],
        user=texts["user"],
        agent=texts["agent"],
        task=texts["task"],
        provider=texts["provider"],
        upstream_model=model,
        usage=usage,
        cost_nanos=cost,
        price_source=source,
    )
    return event, priced


def existing_ids(store: Store, ids: Sequence[str]) -> set[str]:
    """The ids of ``ids`` the ledger already holds."""
    found: set[str] = set()
    with store.transaction() as cur:
        for i in range(0, len(ids), 500):
            chunk = list(ids[i : i + 500])
            marks = ", ".join("?" * len(chunk))
            cur.execute(store.sql(f"SELECT id FROM usage_events WHERE id IN ({marks})"), chunk)
            found.update(str(r[0]) for r in cur.fetchall())
    return found


Progress = Callable[[int], None]


def import_file(
    store: Store,
    path: str | Path,
    fmt: str | None = None,
    *,
    dry_run: bool = False,
    progress: Progress | None = None,
    pricer: Pricer | None = None,
) -> ImportResult:
    """Validate every row of ``path``, then insert the new ones in one transaction.

    ``progress`` is called now and then with the number of rows validated so far;
    ``pricer`` prices rows without ``cost_usd`` (without one, such rows are refused).

    Raises:
        ImportRowError: the first bad row, with its line number (nothing was written).
        OSError: the file cannot be read.
    """
    source = Path(path)
    kind = detect_format(source, fmt)
    pricing: Pricer = pricer if pricer is not None else _NoPricer()
    events: list[UsageEvent] = []
    lines: dict[str, int] = {}
    priced = 0
    for number, fields in read_rows(source, kind):
        try:
            event, from_catalog = row_to_event(fields, pricing)
        except ValueError as exc:
            raise ImportRowError(number, str(exc)) from None
        if event.id in lines:
            raise ImportRowError(number, f"id {event.id!r} repeats line {lines[event.id]}")
        lines[event.id] = number
        events.append(event)
        priced += from_catalog
        if progress is not None and len(events) % 1000 == 0:
            progress(len(events))
    skipped = existing_ids(store, [e.id for e in events])
    new = [e for e in events if e.id not in skipped]
    rows: list[Row] = [event_to_row(e, metadata_json(e.metadata)) for e in new]
    if not dry_run:
        store.insert_rows(rows)
    if progress is not None:
        progress(len(events))
    cost = sum((Decimal(e.cost_nanos or 0) for e in new), Decimal(0)) / NANOS_PER_USD
    stamps = [e.ts_ms for e in new]
    return ImportResult(
        rows=len(events),
        imported=len(new),
        skipped_ids=sorted(skipped, key=lambda i: lines[i]),
        priced_from_catalog=priced,
        cost_usd=cost,
        first_ts_ms=min(stamps) if stamps else None,
        last_ts_ms=max(stamps) if stamps else None,
    )


def count_rows(path: str | Path) -> int:
    """Lines in the file (an upper bound of its rows, for a progress bar's total)."""
    with Path(path).open("rb") as fh:
        return sum(1 for _ in fh)
