"""Request bodies, read within bounds: the size limit applies to the decompressed bytes.

The gateway inflates ``gzip`` and ``deflate`` bodies itself (aiohttp's own decompression is
switched off in ``app.py``), at most ``limit + 1`` bytes in all, so a decompression bomb is
refused after at most the limit was inflated and never buffered whole. When a body is
refused, aiohttp's lingering close reads the rest of the upload from the socket (so the
client sees the 413 rather than a reset) — still compressed, and never inflated.
"""

from __future__ import annotations

import zlib

from aiohttp import web

from tokenomy.errors import (
    ClientDisconnected,
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedEncoding,
)

# Content-Encoding → zlib window bits: gzip has its header; "deflate" is zlib-wrapped in
# HTTP (RFC 9110), though some clients send it raw (tried when the zlib header is missing).
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}
DECODED_ENCODINGS: frozenset[str] = frozenset(_WBITS)


def content_encoding(request: web.Request) -> str:
    """The body's encoding: ``""`` for none, else one of ``DECODED_ENCODINGS``."""
    value = request.headers.get("Content-Encoding")
    if not value:
        return ""
    coding = value.strip().lower() if value.isascii() else value
    if coding in DECODED_ENCODINGS:
        return coding
    if coding == "identity":
        return ""
    shown = value.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
    raise UnsupportedEncoding(
        f"Content-Encoding {shown[:64]!r} is not supported; send the body uncompressed or "
        "with gzip or deflate.",
        param="Content-Encoding",
    )


async def read_body(request: web.Request, limit: int) -> bytes | bytearray:
    """The whole body, decompressed; ``PayloadTooLarge`` as soon as it exceeds ``limit``.

    Raises:
        UnsupportedEncoding: a ``Content-Encoding`` other than gzip or deflate (415).
        PayloadTooLarge: more than ``limit`` bytes, on the wire or once inflated (413).
        InvalidRequest: the compressed data is corrupt or cut short (400).
        ClientDisconnected: the client went away before sending the whole body (499).
    """
    coding = content_encoding(request)
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"Request body of {length} bytes exceeds the limit of {limit} bytes.")
    try:
        if not coding:
            if length is not None:
                return await request.read()  # exactly ``length`` bytes: already bounded
            return await _read_plain(request, limit)
        return await _read_inflated(request, coding, limit)
    except ConnectionError as exc:
        raise ClientDisconnected(
            "The client closed the connection while sending the body."
        ) from exc
    except web.RequestPayloadError as exc:  # e.g. malformed chunked encoding
        raise InvalidRequest(
            "Request body is not a well-formed HTTP body.", headers={"Connection": "close"}
        ) from exc


async def _read_plain(request: web.Request, limit: int) -> bytearray:
    raw = bytearray()
    while chunk := await request.content.readany():
        raw += chunk
        if len(raw) > limit:
            raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes.")
    return raw


async def _read_inflated(request: web.Request, coding: str, limit: int) -> bytearray:
    out = bytearray()
    inflater: zlib._Decompress | None = None
    first = True
    while chunk := await request.content.readany():
        if inflater is None:
            inflater = zlib.decompressobj(_WBITS[coding])
        data = chunk
        while data:
            try:
                # Never more than one byte past the limit, whatever the compression ratio.
                out += inflater.decompress(data, limit + 1 - len(out))
            except zlib.error as exc:
                if first and coding == "deflate":  # raw deflate, without the zlib header
                    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                    first = False
                    continue
                raise _corrupt(coding) from exc
            first = False
            if len(out) > limit:
                raise PayloadTooLarge(
                    f"Request body exceeds the limit of {limit} bytes once decompressed ({coding})."
                )
            data = inflater.unconsumed_tail
    if inflater is None:
        return out  # an empty body
    if not inflater.eof:
        raise _corrupt(coding)
    return out


def _corrupt(coding: str) -> InvalidRequest:
    return InvalidRequest(
        f"Request body is not valid {coding} data (Content-Encoding: {coding}).",
        param="Content-Encoding",
    )
