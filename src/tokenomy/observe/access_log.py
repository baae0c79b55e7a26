"""``tokenomy serve --access-log FILE|-``: one JSON line per HTTP request.

Every request is logged, whatever its path: calls through the gateway with what the
ledger records of them (key id, team, model, deployment, status, error kind, tokens,
cost, duration and the gateway's own time), and everything else (unknown paths, admin
API, health checks, failed authentication) with its method, path, status and duration.
Never a prompt, a completion, a header, a query string or a key's secret.

A line is made when the request's response is done (aiohttp's access-logger interface,
see ``tokenomy.observe``), with the call's event when it was a call. Lines are buffered
in memory and written by one worker thread every ``FLUSH_S`` (or sooner when
``MAX_BUFFER`` lines wait), so a slow disk never stalls the event loop; the rest is
written when the gateway stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

import orjson
from aiohttp import web

from tokenomy.events import UsageEvent
from tokenomy.money import nanos_str

FLUSH_S = 1.0
MAX_BUFFER = 2000
MAX_PATH_CHARS = 200

# Error kinds (the codes of ``tokenomy.errors``) of answers that never reach the gateway's
# request path, by status.
_KINDS = {
    400: "invalid_request_error",
    401: "invalid_api_key",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_content_encoding",
    429: "rate_limited",
    499: "client_disconnected",
    500: "internal_error",
    503: "service_unavailable",
}


_second = -1
_second_text = ""


def _iso(ts: float) -> str:
    """``2026-12-01T09:12:03.118Z``; the date and time part is made once per second."""
    global _second, _second_text
    whole = int(ts)
    if whole != _second:
        _second, _second_text = whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
    return f"{_second_text}.{int((ts - whole) * 1000):03d}Z"


def _kind(status: int) -> str:
    if status < 400:
        return ""
    return _KINDS.get(status, "internal_error" if status >= 500 else "client_error")


def event_fields(ev: UsageEvent, overhead_s: float) -> dict[str, Any]:
    """What the access log says of a call through the gateway (no content, no secrets)."""
    u = ev.usage
    return {
        "request_id": ev.id,
        "key_id": ev.key_id,
        "org": ev.org,
        "team": ev.team,
        "user": ev.user,
        "agent": ev.agent,
        "task": ev.task,
        "endpoint": ev.endpoint,
        "model": ev.model,
        "provider": ev.provider,
        "deployment": ev.deployment,
        "location": ev.location,
        "stream": ev.stream,
        "status": ev.status,
        "error_kind": ev.error_kind,
        "attempts": ev.attempts,
        "fallback_reason": ev.fallback_reason,
        "input_tokens": u.input_tokens,
        "cached_tokens": u.cached_tokens,
        "cache_write_tokens": u.cache_write_tokens,
        "output_tokens": u.output_tokens,
        "reasoning_tokens": u.reasoning_tokens,
        "estimated": ev.estimated,
        "cost_usd": nanos_str(ev.cost_nanos) if ev.cost_nanos is not None else None,
        "duration_ms": ev.latency_ms,
        "overhead_ms": round(overhead_s * 1000, 3),
        "ttft_ms": round(ev.ttft_ms, 3) if ev.ttft_ms is not None else None,
    }


class AccessLog:
    """The access log: a line per finished response, written to ``target``."""

    def __init__(self, target: str) -> None:
        self.target = target
        self._out: IO[bytes] = (
            sys.stdout.buffer if target == "-" else open(target, "ab")  # noqa: SIM115
        )
        self._buffer: list[bytes] = []
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenomy-access")
        self._flusher: asyncio.Task[None] | None = None
        self._pending: list[asyncio.Future[None]] = []

    # -- the response hook (tokenomy.observe) ------------------------------------------
    def on_response(
        self, request: web.BaseRequest, status: int, duration_s: float, recorded: Any
    ) -> None:
        line: dict[str, Any] = {
            "ts": _iso(time.time() - duration_s),
            "method": request.method,
            "path": request.rel_url.raw_path[:MAX_PATH_CHARS],
            "remote": request.remote,
        }
        if recorded is not None:
            ev, overhead, _ = recorded
            line.update(event_fields(ev, overhead))
            line["response_ms"] = round(duration_s * 1000, 3)
        else:
            line.update(
                status=status, error_kind=_kind(status), duration_ms=round(duration_s * 1000, 3)
            )
        try:
            self._buffer.append(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        except orjson.JSONEncodeError:  # a path that is not text: log without it
            line["path"] = "(not UTF-8)"
            self._buffer.append(orjson.dumps(line, option=orjson.OPT_APPEND_NEWLINE))
        if len(self._buffer) >= MAX_BUFFER:
            self._hand_over()

    # -- writing -------------------------------------------------------------------------
    def _write(self, lines: list[bytes]) -> None:
        self._out.write(b"".join(lines))
        self._out.flush()

    def _hand_over(self) -> None:
        if not self._buffer:
            return
        lines, self._buffer = self._buffer, []
        fut = asyncio.get_running_loop().run_in_executor(self._writer, self._write, lines)
        self._pending.append(fut)
        fut.add_done_callback(self._pending.remove)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_S)
            self._hand_over()

    async def running(self, app: web.Application) -> AsyncIterator[None]:
        """An aiohttp cleanup context: flush periodically, drain on shutdown."""
        self._flusher = asyncio.create_task(self._flush_loop(), name="tokenomy-access-log")
        yield
        self._flusher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._flusher
        self._hand_over()
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
        self._writer.shutdown(wait=True)
        if self._out is not sys.stdout.buffer:
            self._out.close()
