"""Inject journal write failures (ENOSPC, EIO, short writes) for a window of a test."""

from __future__ import annotations

import errno
import os

import pytest

from tokenomy.ledger import journal as journal_module


class DiskFull:
    """While ``full`` is set, every journal write fails with ``error`` (or writes half the
    bytes and returns short, like a disk filling up in the middle of a write)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, error: int = errno.ENOSPC) -> None:
        self.full = False
        self.short = False
        self.error = error
        self.failed = 0
        monkeypatch.setattr(journal_module, "_os_write", self._write)

    def _write(self, fd: int, data: bytes) -> int:
        if self.short:
            self.failed += 1
            return os.write(fd, data[: len(data) // 2])
        if self.full:
            self.failed += 1
            raise OSError(self.error, os.strerror(self.error))
        return os.write(fd, data)
