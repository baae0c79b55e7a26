"""Stickiness: the calls of one task, and Responses chains, stay on one deployment.

Prompt caches live on the deployment that served a conversation's earlier calls; moving a
task mid-way pays its whole context again. Keys are ``(model, task)`` for the
``X-Tokenomy-Task`` header and the response id for ``previous_response_id`` (which only
the deployment that made the response knows). A bounded LRU: the oldest key goes first.
"""

from __future__ import annotations

from collections import OrderedDict


class Sticky:
    __slots__ = ("_map", "max_entries")

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._map: OrderedDict[tuple[str, str], str] = OrderedDict()

    def get(self, key: tuple[str, str]) -> str | None:
        """The deployment name remembered for ``key`` (refreshed as recently used)."""
        name = self._map.get(key)
        if name is not None:
            self._map.move_to_end(key)
        return name

    def put(self, key: tuple[str, str], deployment: str) -> None:
        if self.max_entries <= 0:
            return
        m = self._map
        m[key] = deployment
        m.move_to_end(key)
        while len(m) > self.max_entries:
            m.popitem(last=False)

    def __len__(self) -> int:
        return len(self._map)
