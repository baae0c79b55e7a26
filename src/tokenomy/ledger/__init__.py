"""The append-only usage ledger: stores, journal, batch writer and reports."""

from __future__ import annotations

from collections.abc import Sequence

from tokenomy.errors import LedgerError
from tokenomy.ledger.store import ApiKey, Store
from tokenomy.redact import mask_url, register_db_url
from tokenomy.sql import MigrationSet


def open_store(url: str, *, migrate: bool = True, components: Sequence[MigrationSet] = ()) -> Store:
    """Open the ledger at ``url`` (``sqlite:///PATH`` or ``postgresql://...``) and migrate it.

    ``components``: the migration sets of other components sharing the database, applied
    after the ledger's own (and again by ``store.migrate()``). The ledger itself knows none
    of them; ``tokenomy.database.open_database`` passes every component's.
    """
    register_db_url(url)  # its password is scrubbed from every error and log line
    store: Store
    if url.startswith("sqlite:///"):
        from tokenomy.ledger.sqlite import SqliteStore

        store = SqliteStore(url)
    elif url.startswith(("postgresql://", "postgres://")):
        from tokenomy.ledger.postgres import PostgresStore

        store = PostgresStore(url)
    else:
        raise LedgerError(
            f"unsupported database URL {mask_url(url)!r}: use sqlite:///PATH or postgresql://..."
        )
    store.migration_sets = (*store.migration_sets, *components)
    if migrate:
        store.migrate()
    return store


__all__ = ["ApiKey", "Store", "open_store"]
