"""Batch writer: events leave the request path through the journal and a queue.

One thread owns the database writes (datasette's write-thread pattern) and commits in
batches on size or time. ``close()`` drains everything. What can fail, and what happens:

* **Database down** (a connection error): the batch is retried with backoff; the events
  are safe in the journal meanwhile.
* **A row the database refuses** (a data error, e.g. a NUL in a PostgreSQL text column):
  the batch is split until the row is isolated; the other rows are committed and the row
  is quarantined in ``usage_dead_letters`` (or, if even that insert fails, in
  ``dead-letters.jsonl`` beside the journal). The same holds when replaying a journal.
* **Journal not writable** (disk full, I/O error): ``accepting`` turns False and ``begin``
  refuses, so the gateway answers 503 before calling the upstream. Events of calls already
  under way are kept in memory and inserted directly; the writer thread probes the disk
  and reopens the journal when it takes writes again.
* **SIGKILL with calls in flight**: every call is journaled as *started* (with its worst
  case) before it goes upstream. At replay, a start without a final event is recorded as
  ``interrupted`` (status 0: the process died, no status was sent) at its worst-case usage
  and cost, flagged ``estimated``, so budgets rebuilt from the ledger charge it.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson

from tokenomy.errors import LedgerUnavailable
from tokenomy.events import UsageEvent
from tokenomy.ledger import journal as _journal
from tokenomy.ledger.journal import Journal, JournalUnavailable
from tokenomy.ledger.schema import EVENT_COLUMNS, Row, event_to_row
from tokenomy.ledger.store import (
    DeadLetter,
    Store,
    dead_letter,
    describe_error,
    metadata_json,
)

log = logging.getLogger("tokenomy.ledger")

_STOP = object()
DEAD_LETTER_FILE = "dead-letters.jsonl"
INTERRUPTED = "interrupted"
INTERRUPTED_STATUS = 0  # the process died: no HTTP status was (completely) sent
RETRY_AFTER_S = 2
_INTERRUPTED_MESSAGE = "the gateway stopped before the call finished; charged at its worst case"

_C = {name: i for i, name in enumerate(EVENT_COLUMNS)}
# What a start record holds besides the call's worst case (input, output tokens and cost).
_INTERRUPTED_VALUES = tuple(
    (_C[name], value)
    for name, value in {
        "status": INTERRUPTED_STATUS,
        "error_kind": INTERRUPTED,
        "error_message": _INTERRUPTED_MESSAGE,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
        "cache_write_1h_tokens": 0,
        "reasoning_tokens": 0,
        "audio_input_tokens": 0,
        "audio_output_tokens": 0,
        "estimated": 1,
        "price_source": "worst-case",
    }.items()
)

# Queue item: (segment of the final line or None when only in memory,
#              segment of the call's start record or None, row)
_Item = tuple[int | None, int | None, Row]


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
        self._begun: dict[str, int] = {}  # event id → segment of its start record
        self._unjournaled: dict[str, Row] = {}  # rows only in memory (journal failed)
        self._db_ok = True
        self._replay_pending = False
        self._next_probe = 0.0
        self._probe_delay = 0.05
        self.dead_letters = 0
        self.last_error: str = ""  # short, safe to show: no hosts, no passwords
        self.replayed = 0
        self.interrupted = 0

    # -- life cycle ----------------------------------------------------------------------
    def start(self) -> None:
        """Replay orphaned journal segments, then start accepting events."""
        try:
            self.journal.open()
        except OSError as exc:  # e.g. a full disk: start anyway, refuse calls until it recovers
            self.journal.error = type(exc).__name__
            self.last_error = _journal_error(str(exc.strerror or ""))
            log.error("cannot open the journal in %s: %s", self.journal.directory, exc)
        try:
            self.dead_letters = self.store.count_dead_letters()
        except Exception as exc:
            log.warning("cannot count quarantined ledger rows: %s", describe_error(exc))
        self.dead_letters += _count_lines(self.journal.directory / DEAD_LETTER_FILE)
        try:
            self._replay()
        except Exception as exc:  # the database is down: replay from the writer thread
            self._db_failed(exc)
            self._replay_pending = True
        self._thread.start()

    def close(self, timeout: float = 30.0) -> None:
        """Drain the queue into the database and close the journal."""
        if self._thread.is_alive():
            self._queue.put(_STOP)
            self._wake.set()
            self._thread.join(timeout)
        if self._unjournaled:  # last chance for rows the database never took: the journal
            self.journal.recover()
            for row in list(self._unjournaled.values()):
                try:
                    self.journal.append(row)
                except JournalUnavailable:
                    log.error("usage event %s is in neither the journal nor the ledger", row[0])
        all_done = self.pending == 0 and not self._begun and not self._unjournaled
        self.journal.close(all_committed=all_done)

    # -- the request path (event loop) ---------------------------------------------------
    @property
    def accepting(self) -> bool:
        """False while the journal cannot be written: refuse calls before the upstream."""
        return self.journal.writable

    def begin(
        self,
        event: UsageEvent,
        worst_case_input_tokens: int,
        worst_case_output_tokens: int,
        worst_case_cost_nanos: int | None,
        holds: Sequence[Sequence[Any]] = (),
    ) -> None:
        """Journal a call as started, just before it goes upstream (see module docstring).

        Raises ``LedgerUnavailable`` (503) when the journal cannot take it: the call must
        then not be sent upstream.
        """
        row = list(event_to_row(event, metadata_json(event.metadata)))
        for i, value in _INTERRUPTED_VALUES:
            row[i] = value
        row[_C["input_tokens"]] = worst_case_input_tokens
        row[_C["output_tokens"]] = worst_case_output_tokens
        row[_C["cost_nanos"]] = worst_case_cost_nanos
        try:
            self._begun[event.id] = self.journal.append_begin(tuple(row), holds)
        except JournalUnavailable as exc:
            raise ledger_unavailable() from exc

    def submit(self, event: UsageEvent) -> None:
        """Journal the event (durable once this returns) and queue it for the database.

        Never raises for a served call: if the journal cannot take the event, it is kept in
        memory and inserted directly.
        """
        row = event_to_row(event, metadata_json(event.metadata))
        begun = self._begun.pop(event.id, None)
        segment: int | None
        try:
            segment = self.journal.append(row)
        except (JournalUnavailable, TypeError) as exc:  # TypeError: not serialisable
            segment = None
            self._unjournaled[event.id] = row
            self.last_error = _journal_error(self.journal.error or type(exc).__name__)
        self._submitted += 1
        self._queue.put((segment, begun, row))

    @property
    def pending(self) -> int:
        return self._submitted - self._committed

    def health(self) -> dict[str, Any]:
        """Ledger state for ``/health``; nothing in it names a host or a password."""
        writable = self.journal.writable
        return {
            "ok": writable and self._db_ok,
            "pending": self.pending,
            "dead_letters": self.dead_letters,
            "journal_writable": writable,
            "last_error": self.last_error or None,
        }

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

    # -- the writer thread ---------------------------------------------------------------
    def _run(self) -> None:
        # Wake once per interval (or when asked to flush or stop), then drain everything:
        # one transaction per batch and no thread wake-up per request on the hot path.
        stopping = False
        while not stopping:
            self._wake.wait(self.flush_interval_s)
            self._wake.clear()
            self._maintain()
            while True:
                batch: list[_Item] = []
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
            self._reclaim()

    def _maintain(self) -> None:
        if not self.journal.writable and time.monotonic() >= self._next_probe:
            if self.journal.recover():
                self._probe_delay = 0.05
                if self.last_error.startswith("journal"):
                    self.last_error = ""
            else:
                self.last_error = _journal_error(self.journal.error)
                self._next_probe = time.monotonic() + self._probe_delay
                self._probe_delay = min(self._probe_delay * 2, 2.0)
        if self._replay_pending:
            try:
                self._replay()
                self._replay_pending = False
                self._db_recovered()
            except Exception as exc:
                self._db_failed(exc)

    def _reclaim(self) -> None:
        try:
            self.journal.reclaim()
        except OSError as exc:  # pragma: no cover - reclaim logs its own rotation errors
            log.warning("journal reclaim failed: %s", exc)

    def _write(self, batch: list[_Item]) -> None:
        delay = 0.05
        while True:
            try:
                refused = self.store.insert_or_isolate([row for _, _, row in batch])
                break
            except Exception as exc:  # keep the events; they are in the journal too
                self._db_failed(exc)
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                self._maintain()
        self._db_recovered()
        kept: set[int] = set()
        if refused:
            letters = [dead_letter(row, error, "runtime") for row, error in refused]
            if not self._quarantine(letters):
                kept = {id(row) for row, _ in refused}  # stay in the journal for replay
        counts: Counter[int] = Counter()
        for segment, begun, row in batch:
            if segment is None and row:
                self._unjournaled.pop(row[0], None)
            if id(row) in kept:
                continue
            if segment is not None:
                counts[segment] += 1
            if begun is not None:
                counts[begun] += 1
        self.journal.mark_committed(dict(counts))
        with self._flushed:
            self._committed += len(batch)
            self._flushed.notify_all()

    def _quarantine(self, letters: list[DeadLetter]) -> bool:
        """Store refused rows in the dead-letter table, else the file; False if neither."""
        for d in letters:
            log.error(
                "usage event %r refused by the database, quarantined: %s", d.event_id, d.error
            )
        try:
            self.store.add_dead_letters(letters)
        except Exception as exc:
            log.error("cannot store dead letters in the database: %s", describe_error(exc))
            path = self.journal.directory / DEAD_LETTER_FILE
            try:
                with path.open("ab") as fh:
                    for d in letters:
                        fh.write(orjson.dumps(d.as_dict()) + b"\n")
            except OSError as exc2:
                log.error("cannot write %s either (%s): kept in the journal", path, exc2)
                return False
        self.dead_letters += len(letters)
        return True

    def _db_failed(self, exc: BaseException) -> None:
        self._db_ok = False
        self.last_error = "database unavailable"
        log.error("ledger write failed, retrying: %s", describe_error(exc))

    def _db_recovered(self) -> None:
        if not self._db_ok:
            self._db_ok = True
            log.warning("ledger database reachable again")
        if self.last_error == "database unavailable":
            self.last_error = ""

    # -- replay --------------------------------------------------------------------------
    def _replay(self) -> None:
        """Insert what dead processes left in the journal, then delete their segments."""
        with self.journal.orphans() as paths:
            if not paths:
                return
            finals: set[Any] = set()
            for path in paths:
                finals.update(
                    r.row[0] for r in _journal.read(path) if r.kind == _journal.FINAL and r.row
                )
            seen_begins: set[Any] = set()
            for path in paths:
                rows: list[Row] = []
                letters: list[DeadLetter] = []
                interrupted = 0
                for rec in _journal.read(path):
                    if rec.kind == _journal.FINAL:
                        rows.append(rec.row)
                    elif rec.kind == _journal.BEGIN:
                        key = rec.row[0] if rec.row else None
                        if key in finals or key in seen_begins:
                            continue
                        seen_begins.add(key)
                        rows.append(rec.row)
                        interrupted += 1
                    else:
                        letters.append(dead_letter(None, rec.error, "replay", raw=rec.raw))
                refused = self.store.insert_or_isolate(rows)
                letters += [dead_letter(row, error, "replay") for row, error in refused]
                if letters and not self._quarantine(letters):
                    continue  # keep the segment: nothing in it may be lost
                self.replayed += len(rows) - len(refused)
                self.interrupted += interrupted
                path.unlink(missing_ok=True)
        if self.replayed:
            log.warning(
                "replayed %d usage events from the journal of a previous run", self.replayed
            )
        if self.interrupted:
            log.warning(
                "%d calls were in flight when a previous run stopped: recorded as interrupted "
                "and charged at their worst case",
                self.interrupted,
            )


def ledger_unavailable() -> LedgerUnavailable:
    """The 503 for a call refused because the journal cannot record it."""
    return LedgerUnavailable(
        "The gateway cannot record usage right now (its journal is not writable); "
        "the call was not sent upstream. Retry later.",
        retry_after_s=RETRY_AFTER_S,
    )


def _journal_error(kind: str) -> str:
    return f"journal not writable ({kind})" if kind else "journal not writable"


def _count_lines(path: Path) -> int:
    try:
        with path.open("rb") as fh:
            return sum(1 for line in fh if line.strip())
    except OSError:
        return 0


__all__ = ["INTERRUPTED", "INTERRUPTED_STATUS", "LedgerWriter", "ledger_unavailable"]
