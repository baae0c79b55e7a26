"""The append-only usage ledger: stores, journal, batch writer and reports."""

from __future__ import annotations

from tokenomy.errors import LedgerError
from tokenomy.ledger.store import ApiKey, Store


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open the ledger at ``url`` (``sqlite:///PATH`` or ``postgresql://...``) and migrate it."""
    store: Store
    if url.startswith("sqlite:///"):
        from tokenomy.ledger.sqlite import SqliteStore

        store = SqliteStore(url)
    elif url.startswith(("postgresql://", "postgres://")):
        from tokenomy.ledger.postgres import PostgresStore

        store = PostgresStore(url)
    else:
        raise LedgerError(
            f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://..."
        )
    if migrate:
        store.migrate()
    return store


__all__ = ["ApiKey", "Store", "open_store"]
