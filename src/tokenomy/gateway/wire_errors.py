"""Errors rendered in the client's own wire format (each :class:`~tokenomy.wire.Wire` draws
its own), and upstream error messages scrubbed of secrets."""

from __future__ import annotations

from typing import Any

import orjson
from aiohttp import web

from tokenomy.errors import RequestError, UpstreamError
from tokenomy.redact import scrub
from tokenomy.wire import ANTHROPIC, OPENAI, Wire

__all__ = [
    "ANTHROPIC",
    "OPENAI",
    "error_body",
    "error_response",
    "http_status",
    "upstream_error_message",
    "upstream_stream_error",
]


def error_body(wire: Wire, err: RequestError) -> dict[str, Any]:
    """``err`` as the JSON body ``wire``'s clients expect."""
    return wire.error_body(err)


def http_status(err: RequestError) -> int:
    return err.http_status if isinstance(err, UpstreamError) else err.status


def error_response(wire: Wire, err: RequestError, headers: dict[str, str]) -> web.Response:
    all_headers = {**headers, **err.headers}
    return web.Response(
        status=http_status(err),
        body=orjson.dumps(wire.error_body(err)),
        content_type="application/json",
        headers=all_headers,
    )


def upstream_error_message(body: bytes) -> tuple[str, str | None, str | None]:
    """(message, type, code) from an upstream error body in either wire format.

    The message is scrubbed of every configured secret: upstreams echo credentials
    ("Incorrect API key provided: sk-...") and the message is relayed and recorded.
    """
    message, etype, code = _upstream_error_message(body)
    return scrub(message), etype, code


def upstream_stream_error(error: Any) -> str:
    """The message of an upstream's in-stream error object, scrubbed of secrets."""
    message = error.get("message") if isinstance(error, dict) else None
    return scrub(str(message or error))


def _upstream_error_message(body: bytes) -> tuple[str, str | None, str | None]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return (text[:500] or "upstream returned an empty error body"), None, None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict):
            code = err.get("code")
            return (
                str(err.get("message") or err),
                err.get("type"),
                str(code) if code is not None else None,
            )
        if isinstance(err, str):
            return err, None, None
        if "message" in data:
            return str(data["message"]), data.get("type"), None
    return str(data)[:500], None, None
