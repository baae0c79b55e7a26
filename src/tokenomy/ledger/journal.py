"""Local write-ahead journal: a served request is never lost, even to SIGKILL.

The gateway appends each event as one JSON line with a single ``os.write`` on an
``O_APPEND`` file *before* the response's last byte is sent. Once ``write`` returns the
bytes belong to the kernel, so killing the process cannot lose them; the batch writer
inserts into the database later and deletes a segment once all its events are committed.

Each process holds an exclusive ``flock`` on its own segments. At start-up, segments no
live process holds are orphans of a crash: they are replayed (inserts are idempotent,
keyed by event id) and deleted. Several replicas may share one journal directory.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from tokenomy.ledger.schema import Row

log = logging.getLogger("tokenomy.journal")

_SUFFIX = ".jsonl"


@dataclass(slots=True)
class _Segment:
    number: int
    path: Path
    fd: int
    written: int = 0
    committed: int = 0
    size: int = 0
    sealed: bool = False


class Journal:
    """Append-only segment files; see the module docstring for the protocol."""

    def __init__(self, directory: str | os.PathLike[str], segment_bytes: int = 8 << 20) -> None:
        self.directory = Path(directory)
        self.segment_bytes = segment_bytes
        self._segments: dict[int, _Segment] = {}
        self._current: _Segment | None = None
        self._next = 0
        self._lock = threading.Lock()
        self._tag = f"{os.getpid()}-{os.urandom(4).hex()}"

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._rotate()

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
        """Write one event durably (against process death); returns its segment number."""
        seg = self._current
        if seg is None:
            raise RuntimeError("journal is not open")
        line = orjson.dumps(row) + b"\n"
        os.write(seg.fd, line)
        seg.size += len(line)
        with self._lock:
            seg.written += 1
        number = seg.number
        if seg.size >= self.segment_bytes:
            self._rotate()
        return number

    def mark_committed(self, counts: dict[int, int]) -> None:
        """Called by the batch writer after a commit: segment number → events committed."""
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

    @property
    def uncommitted(self) -> int:
        with self._lock:
            return sum(s.written - s.committed for s in self._segments.values())

    def orphans(self) -> Iterator[tuple[Path, list[Row]]]:
        """Segments left by dead processes, with their rows; the caller deletes after insert."""
        if not self.directory.exists():
            return
        for path in sorted(self.directory.glob(f"seg-*{_SUFFIX}")):
            if self._current is not None and path in {s.path for s in self._segments.values()}:
                continue
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue
            try:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live process owns it
                rows: list[Row] = []
                with os.fdopen(os.dup(fd), "rb") as fh:
                    for raw in fh:
                        try:
                            rows.append(tuple(orjson.loads(raw)))
                        except orjson.JSONDecodeError:
                            # Only a torn last line (killed mid-write) can be partial: skip it.
                            log.warning("skipping partial journal line in %s", path.name)
                yield path, rows
            finally:
                os.close(fd)


def _unlink_quietly(path: Path) -> None:
    path.unlink(missing_ok=True)
