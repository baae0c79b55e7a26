"""Local write-ahead journal: a served request is never lost, even to SIGKILL.

The gateway appends each event as one JSON line with a single ``os.write`` on an
``O_APPEND`` file *before* the response's last byte is sent. Once ``write`` returns the
bytes belong to the kernel, so killing the process cannot lose them; the batch writer
inserts into the database later and deletes a segment once all its events are committed.

Two kinds of line:

* a *final* event: the event's row as a JSON array (the only kind older versions wrote);
* a *start* record, written just before a call goes upstream:
  ``{"begin": ROW, "holds": [[budget_id, period_start_ms, amount], ...]}``. ``ROW`` is the
  event as it will be recorded if the process dies before the final event is written:
  status 0, ``error_kind`` ``interrupted``, the reservation's worst-case usage (flagged
  ``estimated``) and worst-case cost. A segment holding a start record is kept until the
  call's final event is in the database.

Each process holds an exclusive ``flock`` on its own segments. At start-up, segments no
live process holds are orphans of a crash: they are replayed (inserts are idempotent,
keyed by event id; a start record counts only when no final event has the same id) and
deleted. Several replicas may share one journal directory.

When a write fails (``ENOSPC``, ``EIO``, ...) the journal stops accepting lines
(``writable`` is False, the torn tail is cut off and the segment sealed) until
``recover()`` proves the disk takes writes again. The current segment is rotated as soon as
it is fully committed, or once it holds ``reclaim_bytes``, so that committed events do not
occupy the disk.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from tokenomy.ledger.schema import Row

log = logging.getLogger("tokenomy.journal")

_SUFFIX = ".jsonl"
_PROBE_BYTES = 4096
# Indirection for tests that inject write failures (ENOSPC, EIO) into the journal only.
_os_write = os.write

FINAL = "final"
BEGIN = "begin"


class JournalUnavailable(Exception):
    """The journal cannot take a line now (disk full, I/O error, not open)."""


@dataclass(slots=True)
class _Segment:
    number: int
    path: Path
    fd: int
    written: int = 0
    committed: int = 0
    size: int = 0
    sealed: bool = False


@dataclass(slots=True)
class Record:
    """One decoded journal line: a final event, a start record, or an undecodable line."""

    kind: str  # FINAL | BEGIN | "bad"
    row: Row
    raw: bytes
    holds: list[Any] = field(default_factory=list)
    error: str = ""


class Journal:
    """Append-only segment files; see the module docstring for the protocol."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        segment_bytes: int = 8 << 20,
        reclaim_bytes: int = 256 << 10,
    ) -> None:
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self.reclaim_bytes = reclaim_bytes
        self._segments: dict[int, _Segment] = {}
        self._current: _Segment | None = None
        self._next = 0
        # Appends (event loop), commits and rotation (writer thread) share this lock; it is
        # held across the append's write so a rotation never closes a descriptor in use.
        self._lock = threading.RLock()
        self._tag = f"{os.getpid()}-{os.urandom(4).hex()}"
        self.writable = False
        self.error = ""  # short reason when not writable, e.g. "ENOSPC"
        self._closed = False

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._rotate()
        self.writable = True

    def _rotate(self) -> None:
        number = self._next
        self._next += 1
        path = self.directory / f"seg-{self._tag}-{number:06d}{_SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        seg = _Segment(number, path, fd)
        with self._lock:
            if self._current is not None:
                self._current.sealed = True
                self._release_if_done(self._current)
            self._segments[number] = seg
            self._current = seg

    def append(self, row: Row) -> int:
        """Write one final event durably (against process death); returns its segment.

        Raises ``JournalUnavailable`` when the line could not be written whole.
        """
        return self._write(orjson.dumps(row) + b"\n")

    def append_begin(self, row: Row, holds: Sequence[Sequence[Any]] = ()) -> int:
        """Write a call's start record (see the module docstring); returns its segment."""
        return self._write(orjson.dumps({"begin": row, "holds": holds}) + b"\n")

    def _write(self, line: bytes) -> int:
        with self._lock:
            seg = self._current
            if seg is None or not self.writable:
                raise JournalUnavailable(self.error or "journal is not open")
            try:
                n = _os_write(seg.fd, line)
            except OSError as exc:
                self._failed(seg, exc)
                raise JournalUnavailable(self.error) from exc
            if n != len(line):  # a short write: the disk filled up in the middle of it
                self._failed(seg, OSError(errno.ENOSPC, "short write"))
                raise JournalUnavailable(self.error)
            seg.size += n
            seg.written += 1
            number = seg.number
            if seg.size >= self.segment_bytes:
                try:
                    self._rotate()
                except OSError as exc:  # the line is safe; the next append will tell
                    log.warning("cannot rotate the journal: %s", exc)
            return number

    def _failed(self, seg: _Segment, exc: OSError) -> None:
        """Stop writing: cut a torn tail off, seal the segment, wait for ``recover``."""
        self.writable = False
        self.error = errno.errorcode.get(exc.errno or 0, "") or type(exc).__name__
        # A torn tail left at the end of a sealed segment would be skipped at replay.
        with contextlib.suppress(OSError):
            os.ftruncate(seg.fd, seg.size)
        seg.sealed = True
        self._current = None
        self._release_if_done(seg)
        log.error("journal write failed (%s): refusing new calls until it recovers", exc)

    def recover(self) -> bool:
        """Writer thread: True once the journal directory takes writes again."""
        if self.writable:
            return True
        if self._closed:
            return False
        probe = self.directory / f".probe-{self._tag}"
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
            try:
                if _os_write(fd, b"\n" * _PROBE_BYTES) != _PROBE_BYTES:
                    raise OSError(errno.ENOSPC, "short write")
            finally:
                os.close(fd)
                probe.unlink(missing_ok=True)
            with self._lock:
                self._rotate()
                self.writable = True
                self.error = ""
        except OSError as exc:
            self.error = errno.errorcode.get(exc.errno or 0, "") or type(exc).__name__
            return False
        log.warning("journal writable again: accepting calls")
        return True

    def reclaim(self) -> None:
        """Writer thread: rotate the current segment once it is committed or big enough.

        Sealed segments are deleted as soon as all their events are committed, so a
        caught-up writer leaves (almost) nothing on disk.
        """
        with self._lock:
            seg = self._current
            if seg is None or seg.size == 0:
                return
            if seg.committed >= seg.written or seg.size >= self.reclaim_bytes:
                try:
                    self._rotate()
                except OSError as exc:
                    log.warning("cannot rotate the journal: %s", exc)

    def mark_committed(self, counts: dict[int, int]) -> None:
        """Called by the batch writer after a commit: segment number → lines committed."""
        with self._lock:
            for number, n in counts.items():
                seg = self._segments.get(number)
                if seg is not None:
                    seg.committed += n
                    self._release_if_done(seg)

    def _release_if_done(self, seg: _Segment) -> None:
        if seg.sealed and seg.committed >= seg.written:
            self._segments.pop(seg.number, None)
            _unlink_quietly(seg.path)
            os.close(seg.fd)

    def close(self, *, all_committed: bool) -> None:
        """Seal everything; delete segments only when their events are all in the database."""
        with self._lock:
            for seg in list(self._segments.values()):
                seg.sealed = True
                if all_committed or seg.committed >= seg.written:
                    _unlink_quietly(seg.path)
                os.close(seg.fd)
            self._segments.clear()
            self._current = None
            self.writable = False
            self._closed = True

    @property
    def uncommitted(self) -> int:
        with self._lock:
            return sum(s.written - s.committed for s in self._segments.values())

    @property
    def bytes_on_disk(self) -> int:
        """Bytes in this process's segments (for tests and health)."""
        with self._lock:
            return sum(s.size for s in self._segments.values())

    @contextmanager
    def orphans(self) -> Iterator[list[Path]]:
        """Claim the segments left by dead processes (flock) for as long as the block runs.

        The caller reads them with ``read`` and deletes each once its rows are stored.
        """
        claimed: list[tuple[Path, int]] = []
        try:
            if self.directory.exists():
                with self._lock:
                    own = {s.path for s in self._segments.values()}
                for path in sorted(self.directory.glob(f"seg-*{_SUFFIX}")):
                    if path in own:
                        continue
                    try:
                        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
                    except FileNotFoundError:
                        continue
                    try:
                        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        os.close(fd)  # a live process owns it
                        continue
                    claimed.append((path, fd))
            yield [path for path, _ in claimed]
        finally:
            for _, fd in claimed:
                os.close(fd)


def read(path: Path) -> Iterator[Record]:
    """The records of one segment. A torn last line (killed mid-write) is skipped."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    lines = data.split(b"\n")
    last = len(lines) - 1
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        record = decode(raw)
        if record.kind == "bad" and i == last:
            # Only the last line can be partial (no newline yet): nothing was acknowledged.
            log.warning("skipping partial journal line in %s", path.name)
            continue
        yield record


def decode(raw: bytes) -> Record:
    """Decode one journal line (without its newline)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Record("bad", (), raw, error=f"undecodable journal line: {exc}")
    if isinstance(value, list):
        return Record(FINAL, tuple(value), raw)
    if isinstance(value, dict) and isinstance(value.get("begin"), list):
        holds = value.get("holds")
        return Record(BEGIN, tuple(value["begin"]), raw, holds if isinstance(holds, list) else [])
    return Record("bad", (), raw, error="journal line is neither an event nor a start record")


def _unlink_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)
