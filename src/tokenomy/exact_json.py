"""JSON whose Decimals are exact, plain number literals (``0.000000000``, never ``0E-9``).

simplejson writes a Decimal with ``str()``, which switches to exponent notation for zero
and small values; parsers accept that, but people and spreadsheets read it wrongly.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import simplejson


class _Plain(Decimal):
    """A Decimal whose ``str`` is positional notation (what simplejson writes out)."""

    def __str__(self) -> str:
        return format(self, "f")


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _Plain(value) if value.is_finite() else str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def dumps(data: Any, *, indent: int | None = None) -> str:
    """Serialize ``data``; Decimals as exact positional literals, unknown types via ``str``."""
    return str(simplejson.dumps(_plain(data), use_decimal=True, indent=indent, default=str))
