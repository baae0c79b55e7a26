"""The journal on a failing disk: refuse before the upstream, never drop a served call.

Failures are injected into the journal's writes only (``tests/ledger/diskfull.py``); the
gateway-level test on a real full tmpfs is ``tests/gateway/test_journal_full.py``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.builders import usage_event
from tests.ledger.diskfull import DiskFull
from tokenomy.errors import LedgerUnavailable
from tokenomy.events import Usage, UsageEvent
from tokenomy.ledger import open_store
from tokenomy.ledger.journal import Journal, JournalUnavailable, read
from tokenomy.ledger.schema import event_to_row
from tokenomy.ledger.writer import LedgerWriter


def _event(i: int) -> UsageEvent:
    usage = Usage(input_tokens=10, output_tokens=1)
    return usage_event(i, id=f"e{i:03d}", model="m", usage=usage, cost_nanos=100)


def _until(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.01)


def _sizes(directory: Path) -> list[int]:
    """Sizes of the journal's segments (the writer thread may delete one while we look)."""
    sizes = []
    for p in directory.glob("seg-*.jsonl"):
        with contextlib.suppress(FileNotFoundError):
            sizes.append(p.stat().st_size)
    return sizes


def _segments(directory: Path) -> int:
    return len([size for size in _sizes(directory) if size])


def _journal_bytes(directory: Path) -> int:
    return sum(_sizes(directory))


@pytest.mark.parametrize("error", [errno.ENOSPC, errno.EIO])
def test_full_disk_refuses_new_calls_and_keeps_calls_under_way(
    sqlite_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: int
) -> None:
    disk = DiskFull(monkeypatch, error)
    store = open_store(sqlite_url)
    writer = LedgerWriter(store, tmp_path / "j", flush_interval_s=0.01)
    writer.start()
    writer.begin(_event(1), 10, 5, 1000)  # a call goes upstream ...
    assert writer.accepting
    disk.full = True  # ... and the disk fills up while it runs
    writer.submit(_event(1))  # its final event cannot be journaled: kept in memory
    assert not writer.accepting
    with pytest.raises(LedgerUnavailable) as refused:
        writer.begin(_event(2), 10, 5, 1000)  # a new call is refused before the upstream
    assert refused.value.status == 503 and refused.value.code == "ledger_unavailable"
    assert refused.value.headers["retry-after"] == "2"
    health = writer.health()
    assert health["ok"] is False and health["journal_writable"] is False
    assert health["last_error"] == f"journal not writable ({errno.errorcode[error]})"
    assert writer.flush(10)
    assert store.get_event("e001") is not None  # inserted straight from memory

    disk.full = False  # space is back: the writer notices by itself
    _until(lambda: writer.accepting, "the journal to recover")
    writer.begin(_event(3), 10, 5, 1000)
    writer.submit(_event(3))
    assert writer.flush(10)
    assert store.get_event("e003") is not None
    assert writer.health() == {
        "ok": True,
        "pending": 0,
        "dead_letters": 0,
        "journal_writable": True,
        "last_error": None,
    }
    writer.close()
    assert list((tmp_path / "j").glob("seg-*")) == []
    store.close()


def test_a_short_write_leaves_no_torn_line_and_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sqlite_url: str
) -> None:
    disk = DiskFull(monkeypatch)
    journal = Journal(tmp_path / "j")
    journal.open()
    journal.append(event_to_row(_event(1), None))
    disk.short = True
    with pytest.raises(JournalUnavailable):
        journal.append(event_to_row(_event(2), None))
    disk.short = False
    assert not journal.writable
    with pytest.raises(JournalUnavailable):
        journal.append(event_to_row(_event(3), None))
    assert journal.recover()
    journal.append(event_to_row(_event(4), None))
    segments = sorted((tmp_path / "j").glob("seg-*.jsonl"))
    assert [[r.row[0] for r in read(p)] for p in segments] == [["e001"], ["e004"]]
    assert all(p.read_bytes().endswith(b"\n") for p in segments)  # the torn tail is cut
    for seg in list(journal._segments.values()):  # the process dies
        os.close(seg.fd)
    store = open_store(sqlite_url)
    writer = LedgerWriter(store, tmp_path / "j")
    writer.start()
    assert sorted(e.id for e in store.events()) == ["e001", "e004"]
    writer.close()
    store.close()


def test_committed_events_leave_the_disk_without_waiting_for_rotation(
    sqlite_url: str, tmp_path: Path
) -> None:
    store = open_store(sqlite_url)
    writer = LedgerWriter(store, tmp_path / "j", flush_interval_s=0.01)
    writer.start()
    for i in range(20):
        writer.submit(_event(i))
    assert writer.flush(10)
    # The segment is far below its 8 MB rotation size, but everything in it is committed.
    _until(lambda: _journal_bytes(tmp_path / "j") == 0, "the committed segment to go")
    writer.close()
    store.close()


def test_a_started_call_keeps_its_segment_until_its_final_event_is_committed(
    sqlite_url: str, tmp_path: Path
) -> None:
    store = open_store(sqlite_url)
    writer = LedgerWriter(store, tmp_path / "j", flush_interval_s=0.01)
    writer.journal.reclaim_bytes = 1  # rotate after every commit
    writer.start()
    writer.begin(_event(1), 10, 5, 1000)
    for i in range(2, 12):
        writer.submit(_event(i))
    assert writer.flush(10)

    def on_disk() -> list[tuple[str, str]]:
        return [(r.kind, r.row[0]) for p in (tmp_path / "j").glob("seg-*.jsonl") for r in read(p)]

    # Its segment stays while the call is in flight (the others are reclaimed) ...
    _until(lambda: _segments(tmp_path / "j") == 1, "one segment left")
    assert ("begin", "e001") in on_disk()
    writer.submit(_event(1))  # ... and goes once the call's final event is committed.
    assert writer.flush(10)
    _until(lambda: _journal_bytes(tmp_path / "j") == 0, "the start record's segment to go")
    writer.close()
    final = store.get_event("e001")
    assert final is not None and final.status == 200
    store.close()
