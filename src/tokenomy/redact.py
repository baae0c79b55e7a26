"""Keep secrets out of output: database URL passwords, upstream API keys, provider headers.

- ``mask_url(url)``: a database URL fit to print (``postgresql://app:***@db:5432/ledger``).
- ``scrub(text)``: text with every registered secret removed: the whole value, any piece
  of a key of 8 characters or more, masked echoes (``sk-upst****enai``,
  ``sk-upst...enai``), and passwords inside URLs or ``password=`` settings.
- ``register_settings(settings, db_url)``: registers the secrets a gateway uses (the
  values of every provider's ``api_key_env``, configured provider headers, the database
  password). The registry is process-wide and only grows: more scrubbing, never less.
- ``RedactingFilter``: a logging filter applying ``scrub`` to every record emitted.

Scrubbing runs on error paths only (upstream error texts, logs, ``/health``), never per
token of a healthy response.
"""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

if TYPE_CHECKING:
    from tokenomy.config import Settings

MASK = "***"
_GRAM = 8  # a piece of a key this long is never an accident
_MIN_SECRET = 4  # shorter values cannot be scrubbed without mangling ordinary text

# scheme://user:password@host  →  scheme://user:***@host (also scheme://:password@host)
_URL_USERINFO = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^:/?#@\s]*:)[^@\s]*@")
# password=... in URL queries and libpq key/value strings
_PASSWORD_KV = re.compile(r"(?P<head>\bpassword\s*=\s*)(?:'(?:[^'\\]|\\.)*'|[^\s&'\"]+)", re.I)
# A masked echo of a key: visible head, a mask (***, ..., …), visible tail.
_MASKED = re.compile(r"(?P<head>[\w-]*)(?:\*{2,}|\.{3,}|…)+(?P<tail>[\w-]*)")
_SECRET_HEADER = re.compile(r"auth|key|token|secret|cookie|password|signature", re.I)


def _userinfo_password(url: str) -> tuple[str, str, str] | None:
    """(``scheme://user:``, password, ``@host...``) of a URL with a password, else None.

    The password runs to the *last* ``@``: an unencoded password may hold anything.
    """
    start = url.find("://")
    at = url.rfind("@")
    if start <= 0 or at < start:
        return None
    colon = url.find(":", start + 3, at)
    if colon < 0 or "/" in url[start + 3 : colon]:  # no user part (sqlite:///a:b@c)
        return None
    return url[: colon + 1], url[colon + 1 : at], url[at:]


def mask_url(url: str) -> str:
    """``url`` with its password (userinfo or ``password=`` parameter) replaced by ``***``."""
    parts = _userinfo_password(url)
    if parts is not None and parts[1]:
        url = parts[0] + MASK + parts[2]
    return _PASSWORD_KV.sub(lambda m: m["head"] + MASK, url)


def _mask_urls_in_text(text: str) -> str:
    text = _URL_USERINFO.sub(lambda m: m["head"] + MASK + "@", text)
    return _PASSWORD_KV.sub(lambda m: m["head"] + MASK, text)


def url_password(url: str) -> str | None:
    """The password in a database URL, if any (percent-decoded)."""
    parts = _userinfo_password(url)
    if parts is not None and parts[1]:
        return unquote(parts[1])
    m = _PASSWORD_KV.search(url)
    if m:
        value = m[0][len(m["head"]) :].strip("'")
        return unquote(value) or None
    return None


class Redactor:
    """A set of secrets and the scrubbing of text against them (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: set[str] = set()  # API keys: whole, pieces and masked echoes
        self._words: set[str] = set()  # other secrets: whole values only
        self._grams: frozenset[str] = frozenset()
        self._words_re: re.Pattern[str] | None = None

    def add_key(self, value: str | None) -> None:
        """An API key (or token): any 8-character piece of it is scrubbed."""
        if not value or len(value.strip()) < _MIN_SECRET:
            return
        value = value.strip()
        with self._lock:
            if value in self._keys:
                return
            self._keys.add(value)
            if len(value) >= _GRAM:
                grams = {value[i : i + _GRAM] for i in range(len(value) - _GRAM + 1)}
                self._grams = self._grams | grams
            else:
                self._add_word(value)

    def add_word(self, value: str | None) -> None:
        """A secret scrubbed only as a whole (not inside a longer word): passwords, headers."""
        if not value or len(value) < _MIN_SECRET:
            return
        with self._lock:
            self._add_word(value)

    def _add_word(self, value: str) -> None:
        if value in self._words:
            return
        self._words.add(value)
        alternatives = "|".join(re.escape(w) for w in sorted(self._words, key=len, reverse=True))
        self._words_re = re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])")

    def add_header(self, name: str, value: str) -> None:
        """A configured upstream header: credentials as keys, other values as words."""
        token = value.split(" ", 1)[1] if value.lower().startswith("bearer ") else value
        if _SECRET_HEADER.search(name):
            self.add_key(token)
        elif len(token) >= _GRAM:
            self.add_word(token)

    def scrub(self, text: str) -> str:
        """``text`` without any registered secret (and without passwords in URLs)."""
        if not text:
            return text
        text = _mask_urls_in_text(text)
        words_re, grams, keys = self._words_re, self._grams, self._keys
        if words_re is not None:
            text = words_re.sub(MASK, text)
        if grams:
            text = _scrub_pieces(text, grams)
        if keys and ("*" in text or "..." in text or "…" in text):
            text = _MASKED.sub(lambda m: _masked_echo(m, keys), text)
        return text


def _scrub_pieces(text: str, grams: frozenset[str]) -> str:
    """Replace every run of text covered by 8-character pieces of a key with ``***``."""
    covered_to = -1
    spans: list[list[int]] = []
    for i in range(len(text) - _GRAM + 1):
        if text[i : i + _GRAM] in grams:
            end = i + _GRAM
            if spans and i <= covered_to:
                spans[-1][1] = end
            else:
                spans.append([i, end])
            covered_to = end
    if not spans:
        return text
    out: list[str] = []
    last = 0
    for start, end in spans:
        out.append(text[last:start])
        out.append(MASK)
        last = end
    out.append(text[last:])
    return "".join(out)


def _masked_echo(m: re.Match[str], keys: set[str]) -> str:
    head, tail = m["head"], m["tail"]
    for key in keys:
        if (len(head) >= 3 and key.startswith(head)) or (len(tail) >= 3 and key.endswith(tail)):
            return MASK
    return m[0]


# The process-wide registry: every gateway and CLI command in this process adds to it.
REDACTOR = Redactor()


def scrub(text: str) -> str:
    """``text`` without any secret registered in this process."""
    return REDACTOR.scrub(text)


def scrub_json(value: Any) -> Any:
    """A parsed JSON value with every string in it scrubbed (for relayed error events)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: scrub_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub_json(v) for v in value]
    return value


def register_db_url(db_url: str) -> None:
    """Scrub the database password (as a whole value) wherever it appears."""
    password = url_password(db_url)
    if password:
        REDACTOR.add_word(password)
    parts = _userinfo_password(db_url)
    if parts is not None:
        REDACTOR.add_word(parts[1])  # as written (percent-encoded), too


def register_secrets(values: Iterable[str | None]) -> None:
    for value in values:
        REDACTOR.add_key(value)


def register_settings(settings: Settings, db_url: str | None = None) -> None:
    """Register every secret a gateway with ``settings`` uses."""
    for provider in settings.providers.values():
        if provider.api_key_env:
            REDACTOR.add_key(os.environ.get(provider.api_key_env))
        for name, value in provider.headers.items():
            REDACTOR.add_header(name, value)
    if db_url:
        register_db_url(db_url)


class RedactingFilter(logging.Filter):
    """Scrubs each emitted log record's message (attach to handlers, not loggers)."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: leave it to the formatter to report
            return True
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[1] is not None:
            # Exception texts (psycopg's can hold connection details) are scrubbed too.
            exc = record.exc_info[1]
            text = str(exc)
            if scrub(text) != text:
                record.msg = f"{record.msg} ({type(exc).__name__}: {scrub(text)})"
                record.exc_info, record.exc_text = None, None
        return True


__all__ = [
    "MASK",
    "REDACTOR",
    "RedactingFilter",
    "Redactor",
    "mask_url",
    "register_db_url",
    "register_secrets",
    "register_settings",
    "scrub",
    "scrub_json",
    "url_password",
]
