"""Every text a request carries, per wire format (for the data-sovereignty detectors).

A request leaves the gateway with all of its strings: the system prompt, each message and
content part, tool calls' arguments and tools' results, tool definitions, ``user`` and
``metadata``. Each endpoint walks its own body shape here and yields ``(where, piece)``
pairs: ``where`` names the place (``messages[3].content[1].text``) and ``piece`` is the
text, or an :class:`Unscannable` marker for a part whose content is not text (an image,
audio, a PDF, token ids) and so cannot be checked.

The walk is deliberately generic below the known content fields: every string leaf is
yielded, except under keys that hold opaque machine values (ids, the providers' own
encrypted reasoning and signatures), so a field added to a format later is still scanned.
Part types each format knows to be non-text are yielded as :class:`Unscannable`; so is
any string that is binary data in disguise (a ``data:`` URL, a long base64 blob), whatever
part type holds it, so a part type this module has never seen cannot smuggle an image
past the detectors.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple


class Unscannable(NamedTuple):
    """A part of a request whose content is not text and cannot be scanned."""

    kind: str  # for people: "image", "audio", "file", "token ids"


Piece = tuple[str, str | Unscannable]

# Keys whose values are opaque machine values, never user text: ids the providers made,
# and their encrypted reasoning / signatures (binary-looking strings that detectors would
# only misread).
_SKIP = frozenset(
    {
        "id",
        "call_id",
        "tool_call_id",
        "tool_use_id",
        "previous_response_id",
        "encrypted_content",
        "signature",
        "type",
        "role",
        "model",
        "cache_control",
    }
)

# Content-part types that are not text, per format ("type" value → what it is).
OPENAI_OPAQUE = {
    "image_url": "image",
    "input_image": "image",
    "input_audio": "audio",
    "file": "file",
    "input_file": "file",
    "computer_screenshot": "image",
    "image_generation_call": "image",
}
ANTHROPIC_OPAQUE = {
    "image": "image",
    "document": "document",
    "container_upload": "file",
}
# Anthropic document sources that are text (scanned like any other text).
_TEXT_SOURCES = frozenset({"text", "content"})
# A string this long made only of base64 characters is binary data, not text.
_BLOB_MIN = 256
_BASE64 = re.compile(r"[A-Za-z0-9+/_\-]+={0,2}")


def walk(
    value: Any, where: str, opaque: dict[str, str], skip: frozenset[str] = _SKIP
) -> Iterator[Piece]:
    """Every string leaf of ``value``; non-text parts as :class:`Unscannable`."""
    if isinstance(value, str):
        if value:
            yield _leaf(value, where)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            # Strings are handled here, not a level down: a generator per leaf costs more
            # than the leaf (an agent's context is thousands of them, walked every step).
            if isinstance(item, str):
                if item:
                    yield _leaf(item, f"{where}[{i}]")
            else:
                yield from walk(item, f"{where}[{i}]", opaque, skip)
    elif isinstance(value, dict):
        kind = value.get("type")
        if isinstance(kind, str):
            if kind == "redacted_thinking":
                return  # the provider's own encrypted reasoning: nothing of the client's
            described = opaque.get(kind)
            if described is not None and not _text_document(value):
                yield where, Unscannable(described)
                return
        for key, item in value.items():
            if key in skip:
                continue
            if isinstance(item, str):
                if item:
                    yield _leaf(item, f"{where}.{key}" if where else key)
            else:
                yield from walk(item, f"{where}.{key}" if where else key, opaque, skip)


def _leaf(text: str, where: str) -> Piece:
    if len(text) >= _BLOB_MIN and _is_blob(text):
        return where, Unscannable("binary data")
    return where, text


def _is_blob(s: str) -> bool:
    # Cheap first: text has spaces early on; base64 and data: URLs have none. Hex (hashes,
    # ids, one per line or not) is one case only, and has newlines or is text anyway.
    if s.startswith("data:"):
        return ";base64," in s[:200]
    return (
        s.find(" ", 0, _BLOB_MIN) < 0  # no copy of the head
        and not s.islower()
        and not s.isupper()
        and _BASE64.fullmatch(s) is not None
    )


def _text_document(part: dict[str, Any]) -> bool:
    # An Anthropic document whose source is plain text or text blocks can be read.
    source = part.get("source")
    return (
        part.get("type") == "document"
        and isinstance(source, dict)
        and source.get("type") in _TEXT_SOURCES
    )


def _is_token_ids(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, int) for v in value)


def prompt_texts(body: dict[str, Any], field: str) -> Iterator[Piece]:
    """A completions ``prompt`` or an embeddings ``input``: strings or token arrays.

    Token ids cannot be read back without the model's vocabulary (the gateway ships only
    o200k, and embedding clients such as LangChain send cl100k ids), so they are unscannable.
    """
    value = body.get(field)
    if _is_token_ids(value):
        yield field, Unscannable("token ids")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            if _is_token_ids(item):
                yield f"{field}[{i}]", Unscannable("token ids")
            else:
                yield from walk(item, f"{field}[{i}]", OPENAI_OPAQUE)
    else:
        yield from walk(value, field, OPENAI_OPAQUE)
    yield from rest(body, (field,), OPENAI_OPAQUE)


def rest(body: dict[str, Any], done: tuple[str, ...], opaque: dict[str, str]) -> Iterator[Piece]:
    """The body's other top-level fields (tools, user, metadata, ...)."""
    for key, value in body.items():
        if key not in done and key not in _SKIP:
            yield from walk(value, key, opaque)


def openai_texts(body: dict[str, Any]) -> Iterator[Piece]:
    """Chat completions and Responses: messages / input items, instructions, tools, ..."""
    yield from rest(body, (), OPENAI_OPAQUE)


def anthropic_texts(body: dict[str, Any]) -> Iterator[Piece]:
    """Messages (and count_tokens): system (string or blocks), messages, tools, metadata."""
    yield from rest(body, (), ANTHROPIC_OPAQUE)
