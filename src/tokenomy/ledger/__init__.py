"""The append-only usage ledger: stores, journal, batch writer and reports."""

from __future__ import annotations

from tokenomy.errors import LedgerError
from tokenomy.ledger.store import ApiKey, Store
from tokenomy.redact import mask_url, register_db_url


def open_store(url: str, *, migrate: bool = True) -> Store:
    """Open the ledger at ``url`` (``sqlite:///PATH`` or ``postgresql://...``) and migrate it."""
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
    if migrate:
        store.migrate()
    return store


__all__ = ["ApiKey", "Store", "open_store"]
