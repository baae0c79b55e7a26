"""API key → principal, from an in-memory copy of the key table.

The table is reloaded in the background every second (so revocations take effect within
about a second on every replica) and on a miss, at most four times a second (so a key
created a moment ago works at once, and a flood of bad keys cannot hammer the database).
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
MISS_REFRESH_MIN_S = 0.25


class KeyCache:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._table: dict[str, Principal | None] = {}
        self._loaded_at = 0.0
        self._refresh_lock = asyncio.Lock()
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
        async with self._refresh_lock:
            self._table = await asyncio.to_thread(self._store.key_table)
            self._loaded_at = time.monotonic()

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(REFRESH_INTERVAL_S)
            try:
                await self.refresh()
            except Exception as exc:  # keep serving with the last good table
                log.error("key table refresh failed: %s", exc)

    async def authenticate(self, secret: str | None) -> Principal:
        if not secret:
            raise AuthenticationError(
                "Missing API key. Send it as 'Authorization: Bearer KEY' (OpenAI) or "
                "'x-api-key: KEY' (Anthropic)."
            )
        digest = hash_secret(secret)
        if digest not in self._table and time.monotonic() - self._loaded_at > MISS_REFRESH_MIN_S:
            await self.refresh()
        if digest not in self._table:
            raise AuthenticationError("Invalid API key.")
        principal = self._table[digest]
        if principal is None:
            raise AuthenticationError("This API key has been revoked.")
        return principal
