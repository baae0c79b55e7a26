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


def test_a_transfer_cannot_lift_a_budget_past_the_largest_limit(tmp_path: Path) -> None:
    """Checked by the library (inside the transfer's transaction), so the CLI refuses it too."""
    from typer.testing import CliRunner

    from tokenomy.budgets.model import MAX_USD
    from tokenomy.cli import app

    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    store = open_database(db)
    most = int(MAX_USD) * 10**9
    try:
        storage.set_budget(store, **{**VALID, "scope": "team:a", "limit": most})
        storage.set_budget(store, **{**VALID, "scope": "team:b", "limit": most})
        with pytest.raises(storage.TransferTooLarge, match="largest limit"):
            storage.transfer(store, "team:a", "team:b", 1, "usd")
    finally:
        store.close()
    result = CliRunner().invoke(
        app, ["budgets", "transfer", "--from", "team:a", "--to", "team:b", "1", "--db", db]
    )
    assert result.exit_code == 1
    assert "largest limit" in result.output
    store = open_database(db)
    try:  # nothing moved
        assert {b.scope: b.limit for b in storage.list_budgets(store)} == {
            "team:a": most,
            "team:b": most,
        }
    finally:
        store.close()
