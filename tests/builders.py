"""Builders of test data shared by the suite: one ``UsageEvent`` builder for every test."""

from __future__ import annotations

from typing import Any

from tokenomy.events import UsageEvent

__all__ = ["T0_MS", "usage_event"]

T0_MS = 1_790_000_000_000
"""A fixed instant (2026-09-21 UTC) that default event timestamps count from."""


def usage_event(i: int = 0, /, **fields: Any) -> UsageEvent:
    """Ledger event number ``i``: a 200 OpenAI chat completion of ``gpt-4o``.

    Its id is ``e<i>`` and its timestamp ``T0_MS + i`` (so events sort by ``i``); every
    other field keeps ``UsageEvent``'s default (no attribution, no usage, no known
    price) unless given in ``fields``, which override anything, the id and time included.

    Example:
        ``usage_event(3, team="research", usage=Usage(input_tokens=10), cost_nanos=7)``
    """
    values: dict[str, Any] = {
        "id": f"e{i}",
        "ts_ms": T0_MS + i,
        "api_format": "openai",
        "endpoint": "chat.completions",
        "model": "gpt-4o",
        "status": 200,
    }
    values.update(fields)
    return UsageEvent(**values)
