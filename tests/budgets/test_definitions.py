"""A budget the engine could not enforce is refused when it is set, by the library itself.

The CLI and the admin API validate their input; ``storage.set_budget`` checks again, so
that no caller can store a definition (say, period "hour") that would make every request
of its scope fail later.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tokenomy.budgets import storage
from tokenomy.database import open_database

VALID: dict[str, Any] = {
    "kind": "budget",
    "scope": "team:research",
    "unit": "usd",
    "limit": 10 * 10**9,
    "period": "day",
    "hard": True,
}


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"period": "hour"}, "period must be one of"),
        ({"unit": "eur"}, "unit must be one of"),
        ({"kind": "quota"}, "kind must be"),
        ({"scope": "project:x"}, "scope must be one of"),
        ({"limit": -1}, "limit must be an integer from 0"),
        ({"limit": 10**30}, "limit must be an integer from 0"),
        ({"limit": 1.5}, "limit must be an integer from 0"),
    ],
)
def test_an_unenforceable_definition_is_refused_and_nothing_stored(
    tmp_path: Path, override: dict[str, Any], message: str
) -> None:
    store = open_database(f"sqlite:///{tmp_path / 'ledger.db'}")
    try:
        with pytest.raises(ValueError, match=message):
            storage.set_budget(store, **{**VALID, **override})
        assert storage.list_budgets(store) == []
        storage.set_budget(store, **VALID)  # the valid one still goes in
        assert [b.scope for b in storage.list_budgets(store)] == ["team:research"]
    finally:
        store.close()
