"""A request's data class: the client's label, or what the detectors find in its texts.

``classify`` is called once per request, before a deployment is chosen. The client's
``X-Tokenomy-Data-Class`` header wins when present (an invalid value is a 400; with
``label_may_lower = false`` it may only raise the detectors' class). Otherwise
every text the request carries (``Endpoint.texts``, in the wire seam) goes through the
policy's detectors, strictest class first; the strongest detection decides, no detection
gives the policy's default class. A part that cannot be scanned (an image, a file, token
ids) and any failure of a detector give the strictest class: fail closed.

Agents re-send their whole growing context on every step, so each text's result is kept
in a bounded LRU keyed by a hash of the text: a step pays the detectors only for what is
new, and a hash for the rest.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from hashlib import blake2b
from typing import TYPE_CHECKING, Any

from tokenomy.errors import InvalidRequest
from tokenomy.sovereignty.classes import CLASSES, RANK
from tokenomy.sovereignty.detectors import Text

if TYPE_CHECKING:
    from tokenomy.sovereignty.detectors import Detector
    from tokenomy.sovereignty.policy import Policy
    from tokenomy.wire.base import Endpoint

log = logging.getLogger("tokenomy.sovereignty")

HEADER = "X-Tokenomy-Data-Class"
# Shorter texts are scanned every time: cheaper than hashing and caching them.
_CACHE_MIN_CHARS = 128

Hit = tuple[str, str] | None  # (data class, what was found) or nothing


def _fast_key(text: str) -> tuple[int, int]:
    return hash(text), len(text)


def _strong_key(text: str) -> bytes:
    return blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


# The cache key: Python's own string hash (SipHash, keyed per process: nobody can make two
# texts collide without the key; 5x faster than blake2b) and the length. A fixed
# PYTHONHASHSEED makes the key known, so then blake2b (128 bits) is used instead.
_key = _strong_key if os.environ.get("PYTHONHASHSEED", "random") != "random" else _fast_key


@dataclass(frozen=True, slots=True)
class Verdict:
    """A request's data class and why: "header", "email address in messages[3].content"."""

    data_class: str
    reason: str


class Scanner:
    """The policy's detectors over one text at a time, with an LRU of results per text."""

    def __init__(
        self,
        detectors: tuple[tuple[str, Detector], ...] = (),
        regions: Sequence[str] = ("CN", "US"),
        max_entries: int = 65_536,
    ) -> None:
        self.detectors = detectors
        self.regions = tuple(regions)
        self.max_entries = max_entries
        self._cache: OrderedDict[tuple[int, int] | bytes, Hit] = OrderedDict()
        # Long prompts are classified in worker threads (the gateway keeps its event loop
        # free), so the cache is shared between threads.
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def scan(self, text: str) -> Hit:
        """The strictest (class, label) the detectors find in ``text``, or None."""
        if len(text) < _CACHE_MIN_CHARS or not self.max_entries:
            return self._scan(text)
        key = _key(text)
        cache = self._cache
        with self._lock:
            if key in cache:
                cache.move_to_end(key)
                self.hits += 1
                return cache[key]
            self.misses += 1
        hit = self._scan(text)
        with self._lock:
            cache[key] = hit
            if len(cache) > self.max_entries:
                cache.popitem(last=False)
        return hit

    def _scan(self, text: str) -> Hit:
        # Detectors run strictest class first, so the first detection is the strongest.
        t = Text(text, self.regions)
        for data_class, detector in self.detectors:
            if detector.found(t):
                return data_class, detector.label
        return None

    def clear(self) -> None:
        with self._lock:
            self._cache.clear()
            self.hits = self.misses = 0


def parse_header(value: str) -> str:
    """The data class an ``X-Tokenomy-Data-Class`` value names; 400 when it names none."""
    data_class = value.strip().lower()
    if data_class not in RANK:
        raise InvalidRequest(
            f"{HEADER} must be one of {', '.join(CLASSES)}; got {value[:40]!r}.", param=HEADER
        )
    return data_class


def classify(
    endpoint: Endpoint, body: dict[str, Any], header_value: str | None, policy: Policy
) -> Verdict:
    """The data class of a request: the header's, else the detectors' (fail closed)."""
    label = parse_header(header_value) if header_value is not None else None
    if label is not None and (policy.label_may_lower or label == policy.strictest):
        return Verdict(label, "header")
    try:
        found = _detect(endpoint, body, policy)
    except Exception as exc:  # a detector's bug must not let data out: fail closed
        log.error("data-class detection failed (%s): treated as restricted", type(exc).__name__)
        return Verdict(policy.strictest, f"detector error ({type(exc).__name__}), failed closed")
    if label is not None and (found is None or RANK[label] >= RANK[found.data_class]):
        return Verdict(label, "header")
    if found is None or RANK[found.data_class] < RANK[policy.default_class]:
        return Verdict(policy.default_class, "no detection")
    return found


def _detect(endpoint: Endpoint, body: dict[str, Any], policy: Policy) -> Verdict | None:
    """The strongest detection (or unscannable part); None when nothing was found."""
    scanner = policy.scanner
    strictest = policy.strictest
    best: tuple[int, str, str, str] | None = None  # rank, class, label, where
    for where, piece in endpoint.texts(body):
        if not isinstance(piece, str):  # Unscannable
            return Verdict(strictest, f"{piece.kind} in {where} cannot be scanned")
        hit = scanner.scan(piece)
        if hit is not None:
            rank = RANK[hit[0]]
            if best is None or rank > best[0]:
                best = (rank, hit[0], hit[1], where)
                if hit[0] == strictest:
                    break
    if best is None:
        return None
    _, data_class, label, where = best
    return Verdict(data_class, f"{label} in {where}")
