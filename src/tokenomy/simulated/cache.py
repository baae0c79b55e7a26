"""Automatic prompt caching, the way OpenAI does it, for the simulated factory.

OpenAI caches prompt prefixes by itself: a request whose first 1,024 tokens or more were
sent before (within minutes) reads them from the cache, in steps of 128 tokens, and
reports them as ``cached_tokens``. Agents append to their conversation, so a healthy
agent's calls hit the cache for everything but the newest messages; an agent that
rewrites the start of its prompt every step never does.

How the simulation knows a prefix: each request's item list (chat ``messages``,
Responses ``input``) is hashed item by item, after a head of the model, tools and
instructions. A request remembers the hash of its whole list with its prompt tokens; a
later request whose first *k* items hash to it reads those tokens from the cache. (A
prefix is remembered as whole requests were sent, as on OpenAI, where the prompt of
a finished request is what gets cached.) Anthropic caches only what ``cache_control``
marks: its simulated answers report no cache reads.
"""

from __future__ import annotations

import time
import zlib
from collections import OrderedDict
from typing import Any

import orjson

MIN_TOKENS = 1024  # shorter prompts are never cached
STEP = 128  # cache hits come in steps of this many tokens
TTL_S = 600.0  # an unused prefix is evicted after this long (OpenAI: 5-10 minutes idle)
MAX_ENTRIES = 200_000

# Per endpoint: the field holding the conversation, and the tokens its count adds after
# the last item (the chat estimate's reply priming), which no later prompt shares.
_ITEMS = {"chat.completions": ("messages", 3), "responses": ("input", 0)}
_HEAD = ("model", "tools", "instructions", "functions")


class PromptCache:
    """Prefixes seen recently, per simulated provider (one instance each)."""

    def __init__(self, ttl_s: float = TTL_S, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._seen: OrderedDict[int, tuple[int, float]] = OrderedDict()

    def cached_tokens(self, endpoint: str, body: dict[str, Any], input_tokens: int) -> int:
        """Tokens of the request read from the cache; remembers its prompt for later ones."""
        key, priming = _ITEMS.get(endpoint, ("", 0))
        items = body.get(key) if key else None
        if not isinstance(items, list) or not items:
            return 0
        head = zlib.crc32(orjson.dumps([body.get(k) for k in _HEAD], option=orjson.OPT_SORT_KEYS))
        hashes = []
        h = head
        for item in items:
            h = zlib.crc32(orjson.dumps(item, option=orjson.OPT_SORT_KEYS), h)
            hashes.append(h)
        now = time.monotonic()
        hit = 0
        for h in reversed(hashes):  # the longest earlier prompt this one extends (or repeats)
            entry = self._seen.get(h)
            if entry is not None and now - entry[1] <= self.ttl_s:
                hit = entry[0]
                self._seen.move_to_end(h)
                self._seen[h] = (entry[0], now)
                break
        prompt = input_tokens - priming
        self._seen[hashes[-1]] = (prompt, now)
        self._seen.move_to_end(hashes[-1])
        while len(self._seen) > self.max_entries:
            self._seen.popitem(last=False)
        if hit < MIN_TOKENS:
            return 0
        return min(hit - hit % STEP, input_tokens)
