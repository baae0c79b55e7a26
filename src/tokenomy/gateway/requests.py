"""Request checks common to every wire format: headers and the body's nesting depth.

Bodies are not modelled with pydantic (that would cost on every request); each endpoint's
own fields are checked by its :class:`~tokenomy.wire.Endpoint` (``validate``).

Whatever the usage event will hold (model, end user, agent, task, metadata) is checked
*before* the upstream is called: once the upstream has answered, the call must be
recorded, so nothing recorded may be refused by the journal or the database afterwards.
Texts with NUL characters or invalid UTF-8 are refused rather than silently altered;
lengths and the metadata's size and depth are capped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tokenomy.errors import InvalidRequest
from tokenomy.wire import WIRES
from tokenomy.wire.base import MAX_TEXT_CHARS

# Bodies are re-serialized for the upstream by orjson, which stops at 254 levels of
# nesting; translation between formats adds a few. No real request comes near this.
MAX_BODY_DEPTH = 128
_ORJSON_MAX_DEPTH = 254
# Client headers forwarded to an upstream as they are (aiohttp encodes them as UTF-8).
FORWARDED_HEADERS = tuple(h for w in WIRES.values() for h in w.forwarded_headers)


def header_text(headers: Mapping[str, str], name: str, limit: int | None = MAX_TEXT_CHARS) -> str:
    """A header's value if it is valid UTF-8 (and at most ``limit`` characters), else 400.

    aiohttp decodes header bytes as UTF-8 with ``surrogateescape``: a value that was not
    UTF-8 arrives holding lone surrogates, which no encoder (orjson, psycopg, aiohttp's
    client) accepts.
    """
    value = headers.get(name)
    if not value:
        return ""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest(
                f"Header {name} is not valid UTF-8; send UTF-8 text.", param=name
            ) from None
    if limit is not None and len(value) > limit:
        raise InvalidRequest(
            f"Header {name} must be at most {limit} characters; got {len(value)}.", param=name
        )
    if "\x00" in value:
        raise InvalidRequest(f"Header {name} must not contain NUL characters.", param=name)
    return value


def check_body_depth(raw: bytes | bytearray, body: dict[str, Any]) -> None:
    """Refuse a body nested deeper than ``MAX_BODY_DEPTH`` (cheap for ordinary bodies).

    A body cannot be deeper than it has brackets, so counting them (C speed) clears most
    bodies at once. Otherwise orjson, which refuses more than 254 levels, serializes the
    body wrapped in 254 - MAX_BODY_DEPTH lists: it fails exactly when the body is deeper
    than MAX_BODY_DEPTH, at serialization speed instead of a walk in Python.
    """
    if raw.count(b"{") + raw.count(b"[") <= MAX_BODY_DEPTH:
        return
    wrapped: Any = body
    for _ in range(_ORJSON_MAX_DEPTH - MAX_BODY_DEPTH):
        wrapped = [wrapped]
    try:
        orjson.dumps(wrapped)
    except orjson.JSONEncodeError:
        raise InvalidRequest(
            f"Request body is nested more than {MAX_BODY_DEPTH} levels deep."
        ) from None
