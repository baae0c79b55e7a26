"""API key → principal, from an in-memory copy of the key table.

The table is reloaded in the background every second, so revocations take effect within
about a second on every replica. A key that is not in the copy is looked up once in the
database (a key created a moment ago works at once); misses are remembered for a second
and database look-ups for unknown keys are rate limited, so a flood of bad keys cannot
hammer the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from tokenomy.errors import AuthenticationError
from tokenomy.ledger.store import Store, hash_secret
from tokenomy.types import Principal

log = logging.getLogger("tokenomy.auth")

REFRESH_INTERVAL_S = 1.0
NEGATIVE_TTL_S = 1.0
MISS_LOOKUPS_PER_S = 50


class KeyCache:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._table: dict[str, Principal | None] = {}
        self._misses: dict[str, float] = {}  # hash → when it was found unknown
        self._pending: dict[str, asyncio.Future[bool]] = {}  # look-ups under way
        self._lookup_window = 0.0
        self._lookups = 0
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="tokenomy-key-refresh")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def refresh(self) -> None:
        self._table = await asyncio.to_thread(self._store.key_table)
        self._misses.clear()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_INTERVAL_S)
            try:
                await self.refresh()
            except Exception as exc:  # keep serving with the last good table
                log.error("key table refresh failed: %s", exc)

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
        if self._lookups >= MISS_LOOKUPS_PER_S:
            return False
        self._lookups += 1
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._pending[digest] = future
        try:
            exists, principal = await asyncio.to_thread(self._store.find_key, digest)
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
        digest = hash_secret(secret)
        if digest not in self._table and not await self._lookup(digest):
            raise AuthenticationError("Invalid API key.")
        principal = self._table[digest]
        if principal is None:
            raise AuthenticationError("This API key has been revoked.")
        return principal
