"""Batch writer: events leave the request path through the journal and a queue.

One thread owns the database writes (datasette's write-thread pattern) and commits in
batches on size or time. If the database is unavailable the batch is retried with
backoff; the events are safe in the journal meanwhile. ``close()`` drains everything.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from pathlib import Path

from tokenomy.ledger.journal import Journal
from tokenomy.ledger.schema import Row, event_to_row
from tokenomy.ledger.store import Store, metadata_json
from tokenomy.types import UsageEvent

log = logging.getLogger("tokenomy.ledger")

_STOP = object()


class LedgerWriter:
    """Accepts events on the event loop, writes them to the store from its own thread."""

    def __init__(
        self,
        store: Store,
        journal_dir: str | Path,
        *,
        batch_size: int = 500,
        flush_interval_s: float = 0.2,
    ) -> None:
        self.store = store
        self.journal = Journal(journal_dir)
        self.batch_size = batch_size
        self.flush_interval_s = flush_interval_s
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="tokenomy-ledger", daemon=True)
        self._flushed = threading.Condition()
        self._wake = threading.Event()
        self._submitted = 0
        self._committed = 0
        self.last_error: str = ""
        self.replayed = 0

    def start(self) -> None:
        """Replay orphaned journal segments, then start accepting events."""
        self.journal.open()
        for path, rows in self.journal.orphans():
            self.store.insert_rows(rows)
            self.replayed += len(rows)
            path.unlink(missing_ok=True)
        if self.replayed:
            log.warning(
                "replayed %d usage events from the journal of a previous run", self.replayed
            )
        self._thread.start()

    def submit(self, event: UsageEvent) -> None:
        """Journal the event (durable once this returns) and queue it for the database."""
        row = event_to_row(event, metadata_json(event.metadata))
        segment = self.journal.append(row)
        self._submitted += 1
        self._queue.put((segment, row))

    @property
    def pending(self) -> int:
        return self._submitted - self._committed

    def flush(self, timeout: float = 10.0) -> bool:
        """Block until everything submitted so far is committed (tests, admin, shutdown)."""
        target = self._submitted
        self._wake.set()
        deadline = time.monotonic() + timeout
        with self._flushed:
            while self._committed < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._flushed.wait(remaining)
        return True

    def close(self, timeout: float = 30.0) -> None:
        """Drain the queue into the database and close the journal."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._wake.set()
            self._thread.join(timeout)
        self.journal.close(all_committed=self.pending == 0)

    def _run(self) -> None:
        # Wake once per interval (or when asked to flush or stop), then drain everything:
        # one transaction per batch and no thread wake-up per request on the hot path.
        stopping = False
        while not stopping:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            while True:
                batch: list[tuple[int, Row]] = []
                while len(batch) < self.batch_size:
                    try:
                        item = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if item is _STOP:
                        stopping = True
                        continue
                    batch.append(item)  # type: ignore[arg-type]
                if not batch:
                    break
                self._write(batch)

    def _write(self, batch: list[tuple[int, Row]]) -> None:
        delay = 0.05
        while True:
            try:
                self.store.insert_rows([row for _, row in batch])
                break
            except Exception as exc:  # keep the events; they are in the journal too
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.error("ledger write failed, retrying in %.2fs: %s", delay, self.last_error)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
        self.last_error = ""
        self.journal.mark_committed(dict(Counter(seg for seg, _ in batch)))
        with self._flushed:
            self._committed += len(batch)
            self._flushed.notify_all()
