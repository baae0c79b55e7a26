"""Factory profiles (placeholder until the economics room lands)."""

from __future__ import annotations

from typing import Any


def validate_factory_table(name: str, table: dict[str, Any]) -> None:
    """Raise ValueError with a clear message when a ``[factories.NAME]`` table is invalid."""
