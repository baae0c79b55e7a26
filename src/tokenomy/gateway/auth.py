"""API key → principal, from an in-memory copy of the key table.

The table is reloaded in the background every second, so revocations take effect within
about a second on every replica. A key that is not in the copy is looked up once in the
database (a key created a moment ago works at once); misses are remembered for a second
and database look-ups for unknown keys are rate limited, so a flood of bad keys cannot
hammer the database.

If the database is down (at start-up too), the gateway serves the keys it already holds,
answers 503 ``auth_unavailable`` for a key it would have to look up, reports not-ready in
``health()`` and retries with backoff, logging one line per outage rather than one per call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from tokenomy.errors import AuthenticationError, AuthUnavailable
from tokenomy.events import Principal
from tokenomy.ledger.store import Store, hash_secret

log = logging.getLogger("tokenomy.auth")

REFRESH_INTERVAL_S = 1.0
NEGATIVE_TTL_S = 1.0
MISS_LOOKUPS_PER_S = 50
MAX_BACKOFF_S = 2.0
LOG_EVERY_S = 10.0


class KeyCache:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._table: dict[str, Principal | None] = {}
        self._misses: dict[str, float] = {}  # hash → when it was found unknown
        self._pending: dict[str, asyncio.Future[bool]] = {}  # look-ups under way
        self._lookup_window = 0.0
        self._lookups = 0
        self._task: asyncio.Task[None] | None = None
        self.loaded = False
        self._db_error: str | None = None
        self._down_until = 0.0  # monotonic: until then, no look-up is tried
        self._backoff = 0.0
        self._last_log = -LOG_EVERY_S
        self._refused = 0

    async def start(self) -> None:
        """Load the key table; with the database down, start anyway and keep retrying."""
        try:
            await self.refresh()
        except Exception as exc:
            self._failed(exc)
        self._task = asyncio.create_task(self._loop(), name="tokenomy-key-refresh")

    def health(self) -> dict[str, Any]:
        """``ok`` when the key table is loaded and the database answered the last time."""
        return {
            "ok": self.loaded and self._db_error is None,
            "keys_loaded": self.loaded,
            "database": "unavailable" if self._db_error else "ok",
            "error": self._db_error,
        }

    def _failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._backoff = min(max(self._backoff * 2, 0.25), MAX_BACKOFF_S)
        self._down_until = now + self._backoff
        first = self._db_error is None
        self._db_error = type(exc).__name__
        if first or now - self._last_log >= LOG_EVERY_S:  # one line, not one per request
            self._last_log = now
            text = str(exc).strip()
            log.error(
                "key database unavailable (%s: %s); unknown keys get 503 (%d since the last "
                "report); retrying",
                self._db_error,
                text.splitlines()[0] if text else "",
                self._refused,
            )
            self._refused = 0

    def _ok(self) -> None:
        if self._db_error is not None:
            log.warning("key database reachable again (%d calls got 503)", self._refused)
            self._db_error, self._backoff, self._down_until, self._refused = None, 0.0, 0.0, 0

    def _unavailable(self) -> AuthUnavailable:
        self._refused += 1
        wait = max(1, int(self._down_until - time.monotonic() + 0.999))
        return AuthUnavailable(
            f"The gateway cannot reach its database to check this API key. Retry after {wait} s.",
            retry_after_s=wait,
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def refresh(self) -> None:
        table = await asyncio.to_thread(self._store.key_table)
        self._table = table
        self._misses.clear()
        self.loaded = True
        self._ok()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self._backoff if self._db_error else REFRESH_INTERVAL_S)
            try:
                await self.refresh()
            except Exception as exc:  # keep serving with the last good table
                self._failed(exc)

    async def _lookup(self, digest: str) -> bool:
        """Look one unknown key up in the database; True if it now is in the table.

        Concurrent first uses of the same key share one look-up (a fleet of agents starting
        with a new key must not be refused by the look-up rate limit).
        """
        pending = self._pending.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        now = time.monotonic()
        missed = self._misses.get(digest)
        if missed is not None and now - missed < NEGATIVE_TTL_S:
            return False
        if now - self._lookup_window >= 1.0:
            self._lookup_window, self._lookups = now, 0
        # The database is down (do not queue up behind it), or the table was never loaded
        # (a key refused now may be a good one): 503, not "invalid key".
        if now < self._down_until or (not self.loaded and self._lookups >= MISS_LOOKUPS_PER_S):
            raise self._unavailable()
        if self._lookups >= MISS_LOOKUPS_PER_S:
            return False
        self._lookups += 1
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[digest] = future
        try:
            try:
                exists, principal = await asyncio.to_thread(self._store.find_key, digest)
            except Exception as exc:
                self._failed(exc)
                raise self._unavailable() from exc
            self._ok()
            if exists:
                self._table[digest] = principal
            else:
                self._misses[digest] = now
            future.set_result(exists)
            return exists
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved here: waiters re-raise it, nobody else must
            raise
        finally:
            del self._pending[digest]

    async def authenticate(self, secret: str | None) -> Principal:
        if not secret:
            raise AuthenticationError(
                "Missing API key. Send it as 'Authorization: Bearer KEY' (OpenAI) or "
                "'x-api-key: KEY' (Anthropic)."
            )
        if not secret.isascii():  # keys are ASCII; header bytes that were not UTF-8 can't hash
            raise AuthenticationError("Invalid API key.")
        digest = hash_secret(secret)
        if digest not in self._table and not await self._lookup(digest):
            raise AuthenticationError("Invalid API key.")
        principal = self._table[digest]
        if principal is None:
            raise AuthenticationError("This API key has been revoked.")
        return principal
