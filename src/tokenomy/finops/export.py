"""Stream the ledger out: FOCUS CSV or Parquet, or the raw events as CSV or JSON lines.

The ledger is read a page at a time by keyset pagination on ``(ts_ms, id)``, each page in
a short transaction of its own: memory stays flat whatever the ledger's size, and a SQLite
gateway writing at the same time is never held up for the length of an export.
Parquet needs ``pyarrow`` (the optional extra ``tokenomy[parquet]``; ~170 MB installed,
too heavy to be a core dependency).
"""

from __future__ import annotations

import csv
import enum
from collections.abc import Callable, Iterator
from typing import IO, Any

import orjson

from tokenomy.finops.focus import (
    BOOL_COLUMNS,
    DECIMAL_COLUMNS,
    FOCUS_COLUMNS,
    INT_COLUMNS,
    csv_cell,
    focus_row,
)
from tokenomy.ledger.schema import EVENT_COLUMNS
from tokenomy.ledger.store import Store

PAGE = 5_000


class ExportFormat(enum.StrEnum):
    focus_csv = "focus-csv"
    focus_parquet = "focus-parquet"
    csv = "csv"
    jsonl = "jsonl"


def count(store: Store, since_ms: int | None, until_ms: int | None) -> int:
    """Events in the range (for the progress bar)."""
    where, params = _range(since_ms, until_ms)
    with store.transaction() as cur:
        cur.execute(store.sql(f"SELECT COUNT(*) FROM usage_events{where}"), params)
        return int(cur.fetchone()[0])


def _range(since_ms: int | None, until_ms: int | None) -> tuple[str, list[Any]]:
    clauses, params = [], []
    if since_ms is not None:
        clauses.append("ts_ms >= ?")
        params.append(since_ms)
    if until_ms is not None:
        clauses.append("ts_ms < ?")
        params.append(until_ms)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def pages(
    store: Store, since_ms: int | None, until_ms: int | None, page: int = PAGE
) -> Iterator[list[tuple[Any, ...]]]:
    """Event rows (``EVENT_COLUMNS`` order) in ``(ts_ms, id)`` order, a page at a time."""
    where, params = _range(since_ms, until_ms)
    cols = ", ".join(EVENT_COLUMNS)
    after: tuple[int, str] | None = None
    while True:
        clause = where
        args = list(params)
        if after is not None:
            # The plain bound lets the ts_ms index start at the page's first row.
            clause += (" AND " if clause else " WHERE ") + "ts_ms >= ? AND (ts_ms > ? OR id > ?)"
            args += [after[0], after[0], after[1]]
        with store.transaction() as cur:
            cur.execute(
                store.sql(
                    f"SELECT {cols} FROM usage_events{clause} ORDER BY ts_ms, id LIMIT {page}"
                ),
                args,
            )
            rows = [tuple(r) for r in cur.fetchall()]
        if not rows:
            return
        yield rows
        last = rows[-1]
        after = (int(last[1]), str(last[0]))
        if len(rows) < page:
            return


Progress = Callable[[int], None]


def export(
    store: Store,
    fmt: ExportFormat,
    out: IO[bytes],
    *,
    since_ms: int | None = None,
    until_ms: int | None = None,
    progress: Progress | None = None,
    page: int = PAGE,
) -> int:
    """Write the events of the range to ``out`` in ``fmt``; returns how many were written."""
    if fmt is ExportFormat.focus_parquet:
        return _parquet(store, out, since_ms, until_ms, progress, page)
    import io

    text = io.TextIOWrapper(out, encoding="utf-8", newline="", write_through=True)
    written = 0
    try:
        if fmt is ExportFormat.jsonl:
            meta = EVENT_COLUMNS.index("metadata")
            for rows in pages(store, since_ms, until_ms, page):
                for r in rows:
                    rec = dict(zip(EVENT_COLUMNS, r, strict=True))
                    rec["metadata"] = orjson.loads(r[meta]) if r[meta] else None
                    text.write(orjson.dumps(rec).decode() + "\n")
                written += len(rows)
                if progress:
                    progress(len(rows))
            return written
        w = csv.writer(text, lineterminator="\n")
        focus = fmt is ExportFormat.focus_csv
        w.writerow(FOCUS_COLUMNS if focus else EVENT_COLUMNS)
        for rows in pages(store, since_ms, until_ms, page):
            if focus:
                for r in rows:
                    f = focus_row(r)
                    w.writerow([csv_cell(f[c]) for c in FOCUS_COLUMNS])
            else:
                w.writerows(["" if v is None else v for v in r] for r in rows)
            written += len(rows)
            if progress:
                progress(len(rows))
        return written
    finally:
        text.flush()
        text.detach()  # the caller owns ``out``


def _parquet(
    store: Store,
    out: IO[bytes],
    since_ms: int | None,
    until_ms: int | None,
    progress: Progress | None,
    page: int,
) -> int:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise ValueError(
            "focus-parquet needs pyarrow: pip install 'tokenomy[parquet]' (or use focus-csv)"
        ) from exc

    def column_type(name: str) -> Any:
        if name in DECIMAL_COLUMNS:
            return pa.decimal128(38, 9)  # nano-USD exact; token counts fit too
        if name in INT_COLUMNS:
            return pa.int64()
        if name in BOOL_COLUMNS:
            return pa.bool_()
        return pa.string()

    schema = pa.schema(
        [pa.field(c, column_type(c)) for c in FOCUS_COLUMNS],
        metadata={"focus_version": "1.2", "generator": "tokenomy"},
    )
    written = 0
    with pq.ParquetWriter(pa.PythonFile(out, mode="w"), schema) as writer:
        for rows in pages(store, since_ms, until_ms, page):
            focus = [focus_row(r) for r in rows]
            batch = pa.RecordBatch.from_pydict(
                {c: [f[c] for f in focus] for c in FOCUS_COLUMNS}, schema=schema
            )
            writer.write_batch(batch)
            written += len(rows)
            if progress:
                progress(len(rows))
    return written


__all__ = ["PAGE", "ExportFormat", "count", "export", "pages"]
