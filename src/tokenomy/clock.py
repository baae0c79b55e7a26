"""Wall-clock time as the database and the ledger store it: integer milliseconds (UTC)."""

from __future__ import annotations

import time


def now_ms() -> int:
    """Milliseconds since the Unix epoch (wall clock: comparable across processes)."""
    return time.time_ns() // 1_000_000


__all__ = ["now_ms"]
