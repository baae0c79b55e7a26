"""The ``--db`` option and the one way a command opens the database."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer

from tokenomy.config import resolve_db_url
from tokenomy.database import open_database
from tokenomy.ledger.store import Store

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="TOKENOMY_DB",
        show_envvar=True,
        help="Ledger database URL: sqlite:///PATH or postgresql://...  "
        "[default: sqlite:///tokenomy.db]",
    ),
]


@contextmanager
def ledger(db: str | None) -> Iterator[Store]:
    """The database named by ``--db``/``TOKENOMY_DB``, closed on every path.

    The one way a command opens it: every component's tables are migrated first (ledger,
    budgets, admin keys), as the gateway does at start-up.
    """
    store = open_database(resolve_db_url(db))
    try:
        yield store
    finally:
        store.close()
