from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.builders import usage_event
from tokenomy.events import Usage, UsageEvent
from tokenomy.ledger import open_store
from tokenomy.ledger.journal import Journal
from tokenomy.ledger.writer import LedgerWriter


def _event(i: int) -> UsageEvent:
    return usage_event(i, model="m", usage=Usage(input_tokens=i, output_tokens=1), cost_nanos=i)


def test_writer_batches_and_deletes_committed_segments(tmp_path: Path, sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    writer = LedgerWriter(store, tmp_path / "j", batch_size=7, flush_interval_s=0.01)
    writer.journal.segment_bytes = 2000  # force several segment rotations
    writer.start()
    for i in range(100):
        writer.submit(_event(i))
    assert writer.flush(10)
    assert store.count_events() == 100
    assert writer.pending == 0
    writer.close()
    assert list((tmp_path / "j").iterdir()) == []
    store.close()


def test_orphaned_segments_are_replayed_once(tmp_path: Path, sqlite_url: str) -> None:
    # A process journals events and dies before its writer commits them.
    journal = Journal(tmp_path / "j")
    journal.open()
    from tokenomy.ledger.schema import event_to_row

    for i in range(5):
        journal.append(event_to_row(_event(i), None))
    # Simulate the process dying: its file descriptors (and flock) go away.
    for seg in journal._segments.values():
        os.close(seg.fd)
    # A torn last line from a kill in the middle of a write.
    seg_file = next((tmp_path / "j").iterdir())
    with seg_file.open("ab") as fh:
        fh.write(b'["e99", 17')

    store = open_store(sqlite_url)
    writer = LedgerWriter(store, tmp_path / "j")
    writer.start()
    assert writer.replayed == 5
    assert store.count_events() == 5
    writer.close()
    assert list((tmp_path / "j").iterdir()) == []
    store.close()


def test_live_process_segments_are_not_replayed(tmp_path: Path, sqlite_url: str) -> None:
    holder = Journal(tmp_path / "j")
    holder.open()
    from tokenomy.ledger.schema import event_to_row

    holder.append(event_to_row(_event(1), None))
    store = open_store(sqlite_url)
    writer = LedgerWriter(store, tmp_path / "j")
    writer.start()
    assert writer.replayed == 0  # another live process owns that segment
    writer.close()
    holder.close(all_committed=False)
    assert len(list((tmp_path / "j").iterdir())) == 1
    store.close()


def test_sigkill_after_submit_loses_nothing(tmp_path: Path, sqlite_url: str) -> None:
    script = textwrap.dedent(f"""
        import os, signal
        from tokenomy.ledger import open_store
        from tokenomy.ledger.writer import LedgerWriter
        from tokenomy.events import UsageEvent, Usage
        store = open_store({sqlite_url!r})
        w = LedgerWriter(store, {str(tmp_path / "j")!r}, flush_interval_s=60, batch_size=10**6)
        w.start()
        for i in range(50):
            w.submit(UsageEvent(id=f"k{{i}}", ts_ms=1, api_format="openai",
                                endpoint="chat.completions", model="m", status=200,
                                usage=Usage(input_tokens=1)))
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9
    store = open_store(sqlite_url)
    assert store.count_events() == 0  # nothing had reached the database
    writer = LedgerWriter(store, tmp_path / "j")
    writer.start()
    assert store.count_events() == 50
    writer.close()
    store.close()
