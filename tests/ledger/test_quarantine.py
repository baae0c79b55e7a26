"""A row the database refuses is quarantined and never blocks the rows after it.

Poisoned rows are submitted to the writer directly (bypassing the gateway's input checks):
a token count beyond BIGINT (refused by both backends) and, on PostgreSQL, a NUL in a text
column. Then the same at replay, from an orphaned journal segment.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tests.builders import usage_event
from tokenomy.cli import app
from tokenomy.events import Usage, UsageEvent
from tokenomy.ledger import open_store
from tokenomy.ledger import writer as writer_module
from tokenomy.ledger.schema import EVENT_COLUMNS, event_to_row
from tokenomy.ledger.store import Store, dead_letter
from tokenomy.ledger.writer import DEAD_LETTER_FILE, INTERRUPTED, LedgerWriter

OVERFLOW = 2**63  # no BIGINT holds it (JSON does): SQLite and PostgreSQL both refuse it


def _event(i: int) -> UsageEvent:
    usage = Usage(input_tokens=10, output_tokens=1)
    return usage_event(i, id=f"e{i:03d}", model="m", usage=usage, cost_nanos=100)


@pytest.fixture
def poison(monkeypatch: pytest.MonkeyPatch) -> dict[str, tuple[str, object]]:
    """Event id → (column, value) put into its row after ``event_to_row`` made it storable:
    the writer's second line of defence, for a value the first line let through."""
    poisoned: dict[str, tuple[str, object]] = {}
    original = writer_module.event_to_row

    def unsafe_event_to_row(e: UsageEvent, metadata: str | None) -> tuple[object, ...]:
        row = list(original(e, metadata))
        if e.id in poisoned:
            column, value = poisoned[e.id]
            row[EVENT_COLUMNS.index(column)] = value
        return tuple(row)

    monkeypatch.setattr(writer_module, "event_to_row", unsafe_event_to_row)
    return poisoned


def _poisoned_row(i: int, dialect: str) -> tuple[object, ...]:
    """A journal row the database refuses (built by hand: no sanitising on the way)."""
    row = list(event_to_row(_event(i), None))
    if dialect == "postgresql":
        row[EVENT_COLUMNS.index("model")] = "m\x00"
    else:
        row[EVENT_COLUMNS.index("input_tokens")] = OVERFLOW
    return tuple(row)


def test_refused_row_never_blocks_the_rows_after_it(
    db_url: str, tmp_path: Path, poison: dict[str, tuple[str, object]]
) -> None:
    store = open_store(db_url)
    poison["e010"] = ("input_tokens", OVERFLOW)
    if store.dialect == "postgresql":
        poison["e011"] = ("model", "m\x00")
        poison["e012"] = ("user_id", "al\x00ice")
    writer = LedgerWriter(store, tmp_path / "j", batch_size=50, flush_interval_s=0.01)
    writer.start()
    for i in range(30):
        writer.submit(_event(i))
    assert writer.flush(10), "the writer is stuck on a refused row"
    ids = {e.id for e in store.events()}
    assert ids == {f"e{i:03d}" for i in range(30)} - set(poison)
    letters = store.dead_letters()
    assert sorted(d.event_id for d in letters) == sorted(poison)
    assert writer.dead_letters == len(letters)
    overflow = next(d for d in letters if d.event_id == "e010")
    assert overflow.source == "runtime" and overflow.encoding == "json"
    assert orjson.loads(overflow.line)[EVENT_COLUMNS.index("input_tokens")] == OVERFLOW
    health = writer.health()
    assert health["ok"] is True and health["dead_letters"] == len(letters)
    assert health["pending"] == 0 and health["journal_writable"] is True
    writer.close()
    assert list((tmp_path / "j").iterdir()) == []  # refused rows do not pin the journal
    store.close()


def _orphan(directory: Path, lines: list[bytes]) -> None:
    """A segment left by a process that died (no lock held)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"seg-{os.getpid()}-dead-000000.jsonl").write_bytes(b"".join(lines))


def test_replay_quarantines_a_poisoned_row_and_restarts(db_url: str, tmp_path: Path) -> None:
    store = open_store(db_url)
    journal = tmp_path / "j"
    started = list(event_to_row(_event(40), None))
    started[EVENT_COLUMNS.index("status")] = 0
    started[EVENT_COLUMNS.index("error_kind")] = INTERRUPTED
    lines = [
        orjson.dumps(event_to_row(_event(1), None)) + b"\n",
        orjson.dumps(_poisoned_row(2, store.dialect)) + b"\n",
        b'{"neither": "an event nor a start"}\n',
        orjson.dumps(event_to_row(_event(3), None)) + b"\n",
        orjson.dumps(event_to_row(_event(4), None)) + b"\n",
        orjson.dumps({"begin": started, "holds": []}) + b"\n",
    ]
    _orphan(journal, lines)
    writer = LedgerWriter(store, journal)
    writer.start()  # before: replay hit the same row on every start and never finished
    assert {e.id for e in store.events()} == {"e001", "e003", "e004", "e040"}
    assert writer.replayed == 4 and writer.interrupted == 1
    letters = store.dead_letters()
    assert sorted((d.event_id, d.source, d.encoding) for d in letters) == [
        ("", "replay", "base64"),  # the unreadable line, kept as it was
        ("e002", "replay", "json"),
    ]
    writer.close()
    assert list(journal.iterdir()) == []

    # A restart finds nothing left to replay, and quarantines nothing twice.
    writer = LedgerWriter(store, journal)
    writer.start()
    assert writer.replayed == 0 and writer.dead_letters == 2
    writer.close()
    store.close()


def test_the_same_dead_letter_is_stored_once(sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    letter = dead_letter(("x", 1), "row has 2 fields", "replay")
    store.add_dead_letters([letter])
    store.add_dead_letters([letter])
    assert store.count_dead_letters() == 1
    store.close()


def test_dead_letter_file_when_the_database_refuses_the_quarantine(
    sqlite_url: str, tmp_path: Path, poison: dict[str, tuple[str, object]]
) -> None:
    poison["e001"] = ("input_tokens", OVERFLOW)
    store = open_store(sqlite_url)
    with store.transaction() as cur:
        cur.execute("DROP TABLE usage_dead_letters")
    writer = LedgerWriter(store, tmp_path / "j", flush_interval_s=0.01)
    writer.start()
    writer.submit(_event(1))
    writer.submit(_event(2))
    assert writer.flush(10)
    assert store.get_event("e002") is not None
    kept = (tmp_path / "j" / DEAD_LETTER_FILE).read_bytes().splitlines()
    assert [orjson.loads(line)["event_id"] for line in kept] == ["e001"]
    assert writer.health()["dead_letters"] == 1
    writer.close()
    store.close()


@pytest.mark.parametrize("fmt", ["json", "csv", "table"])
def test_cli_lists_and_retries_dead_letters(
    sqlite_url: str, tmp_path: Path, fmt: str, poison: dict[str, tuple[str, object]]
) -> None:
    poison["e001"] = ("input_tokens", OVERFLOW)
    store = open_store(sqlite_url)
    writer = LedgerWriter(store, tmp_path / "j", flush_interval_s=0.01)
    writer.start()
    writer.submit(_event(1))
    assert writer.flush(10)
    writer.close()
    # A quarantined row that the database takes now (e.g. after a schema fix).
    store.add_dead_letters([dead_letter(event_to_row(_event(2), None), "was refused", "replay")])
    store.close()

    runner = CliRunner()
    result = runner.invoke(app, ["ledger", "dead-letters", "--db", sqlite_url, "--format", fmt])
    assert result.exit_code == 0, result.output
    assert "e001" in result.output and "e002" in result.output
    if fmt == "json":
        rows = orjson.loads(result.output)
        assert [r["event_id"] for r in rows] == ["e001", "e002"]
        assert rows[0]["error"].startswith("OverflowError")

    result = runner.invoke(app, ["ledger", "retry-dead-letters", "--db", sqlite_url])
    assert result.exit_code == 0, result.output
    assert "1 inserted, 1 still refused" in result.output
    store = open_store(sqlite_url)
    assert store.get_event("e002") is not None
    assert [d.event_id for d in store.dead_letters()] == ["e001"]
    assert len(store.dead_letters(include_resolved=True)) == 2
    store.close()


class _Outage:
    """While ``down``, the store's inserts fail like a database that is unreachable."""

    def __init__(self, store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
        self.down = True
        self.failed = 0
        self._insert = store.insert_rows
        monkeypatch.setattr(store, "insert_rows", self)

    def __call__(self, rows: Sequence[tuple[object, ...]]) -> None:
        if self.down:
            self.failed += 1
            raise sqlite3.OperationalError("unable to open database file")
        self._insert(rows)


def test_a_database_outage_is_retried_not_quarantined(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(sqlite_url)
    journal = tmp_path / "j"
    _orphan(journal, [orjson.dumps(event_to_row(_event(1), None)) + b"\n"])
    outage = _Outage(store, monkeypatch)
    writer = LedgerWriter(store, journal, flush_interval_s=0.01)
    writer.start()  # the database is down: the gateway starts anyway, replay comes later
    assert writer.health()["ok"] is False
    assert writer.health()["last_error"] == "database unavailable"
    writer.submit(_event(2))
    assert not writer.flush(0.2)  # kept (in the journal), retried ...
    outage.down = False  # ... until the database is back
    assert writer.flush(10)
    deadline = time.monotonic() + 10
    while store.count_events() < 2:  # the replay, retried by the writer thread
        assert time.monotonic() < deadline, "the replay never happened"
        time.sleep(0.01)
    assert outage.failed >= 2
    assert sorted(e.id for e in store.events()) == ["e001", "e002"]
    assert writer.dead_letters == 0 and store.count_dead_letters() == 0
    assert writer.health()["ok"] is True and writer.health()["last_error"] is None
    writer.close()
    assert list(journal.iterdir()) == []
    store.close()
