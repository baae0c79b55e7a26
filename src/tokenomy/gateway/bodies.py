"""Request bodies, read within bounds: the size limit applies to the decompressed bytes.

aiohttp's request parser inflates ``gzip`` and ``deflate`` bodies (``br`` and ``zstd`` too
when their libraries are installed) as they arrive, a bounded slice at a time, and stops
reading the socket while its buffer is full. Reading ``request.content`` piece by piece and
counting is therefore enforcement *while inflating*: a decompression bomb is refused after
at most the limit plus one slice was inflated, never buffered whole. Any other
``Content-Encoding`` would reach the gateway still encoded, so it is refused.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.compression_utils import HAS_BROTLI, HAS_ZSTD
from aiohttp.http_exceptions import HttpProcessingError

from tokenomy.errors import (
    ClientDisconnected,
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedEncoding,
)

# What aiohttp's parser decodes (it matches the header, lower-cased, against these names).
DECODED_ENCODINGS: frozenset[str] = frozenset(
    ["gzip", "deflate", *(["br"] if HAS_BROTLI else []), *(["zstd"] if HAS_ZSTD else [])]
)


def content_encoding(request: web.Request) -> str:
    """The body's encoding as aiohttp decodes it: ``""`` for none, else a decoded name."""
    value = request.headers.get("Content-Encoding")
    if not value:
        return ""
    coding = value.lower() if value.isascii() else value
    if coding in DECODED_ENCODINGS:
        return coding
    if coding == "identity":
        return ""
    shown = value.encode("utf-8", "backslashreplace").decode("ascii", "backslashreplace")
    raise UnsupportedEncoding(
        f"Content-Encoding {shown[:64]!r} is not supported; send the body uncompressed or "
        f"with one of: {', '.join(sorted(DECODED_ENCODINGS))}.",
        param="Content-Encoding",
    )


async def read_body(request: web.Request, limit: int) -> bytes | bytearray:
    """The whole body, decompressed; ``PayloadTooLarge`` as soon as it exceeds ``limit``.

    Raises:
        UnsupportedEncoding: a ``Content-Encoding`` aiohttp does not decode here (415).
        PayloadTooLarge: more than ``limit`` bytes, on the wire or once inflated (413).
        InvalidRequest: the compressed data is corrupt (400).
        ClientDisconnected: the client went away before sending the whole body (499).
    """
    coding = content_encoding(request)
    length = request.content_length
    if length is not None and length > limit:
        raise PayloadTooLarge(f"Request body of {length} bytes exceeds the limit of {limit} bytes.")
    try:
        if length is not None and not coding:
            return await request.read()  # exactly ``length`` bytes: already bounded
        raw = bytearray()
        content = request.content
        while chunk := await content.readany():
            raw += chunk
            if len(raw) > limit:
                how = f" once decompressed ({coding})" if coding else ""
                raise PayloadTooLarge(f"Request body exceeds the limit of {limit} bytes{how}.")
        return raw
    except ConnectionError as exc:
        raise ClientDisconnected(
            "The client closed the connection while sending the body."
        ) from exc
    except (web.RequestPayloadError, HttpProcessingError) as exc:
        # aiohttp's parser stopped at the bad data and reads no more of this connection:
        # end the body here (aiohttp would otherwise try to drain it after the response
        # and log the same error with a traceback) and ask the client to reconnect.
        request.content.feed_eof()
        what = f"valid {coding} data" if coding else "a well-formed HTTP body"
        raise InvalidRequest(
            f"Request body is not {what}" + (f" (Content-Encoding: {coding})." if coding else "."),
            headers={"Connection": "close"},
        ) from exc
