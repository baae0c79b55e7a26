"""Client connections: header, body and keep-alive timeouts and a cap on open connections.

aiohttp's server closes idle kept-alive connections (``keepalive_timeout``) but has no
header-read timeout, no body-read timeout and no connection cap: idle or trickling
sockets pile up until the process runs out of file descriptors. ``GatewayRunner`` (an
``AppRunner``) serves the app through a request handler that adds them:

- a connection must deliver a request's complete headers within ``header_timeout_s`` of
  connecting (or, on a kept-alive connection, of the request's first byte), else it is
  closed;
- a request body may pause at most ``body_timeout_s`` between chunks; the reader then
  gets ``RequestTimeout`` (answered 408 in the client's format, recorded) and the
  connection is closed;
- at ``max_connections`` a new connection closes the longest-waiting connection that has
  no request in progress (idle kept-alive, silent or trickling headers); when every
  connection is busy, the new one is closed at once. In-flight requests are never shed.

``tokenomy serve`` and the test harness both run the app through ``GatewayRunner``.
aiohttp offers no hook for this, so the handler subclass reads a few of
``RequestHandler``'s private attributes (``_messages``, ``_waiter``, ``_request_count``,
``_request_in_progress``); ``tests/gateway/test_connections.py`` pins the behaviour.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import resource
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler

from tokenomy.config import GatewaySection
from tokenomy.errors import RequestTimeout

log = logging.getLogger("tokenomy.gateway")

# File descriptors kept for everything but client sockets: the database connections,
# journal segments, log files, DNS and the upstream sockets of requests in flight.
_FD_RESERVE = 256


def raise_fd_limit() -> int:
    """Raise the soft open-file limit to the hard limit where the OS allows; the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):  # e.g. macOS caps it below the reported hard limit
            pass
    return soft


def connections_for_fd_limit(nofile: int) -> int:
    """How many client connections fit in ``nofile`` descriptors.

    Each busy client connection needs a second descriptor for its upstream socket, so
    half of what is left after a fixed reserve.
    """
    reserve = min(_FD_RESERVE, nofile // 4)
    return max(16, (nofile - reserve) // 2)


@dataclass
class ConnectionGuard:
    """Limits and counters of the client connections, shared by the server and ``/health``."""

    header_timeout_s: float = 15.0
    body_timeout_s: float = 60.0
    keepalive_timeout_s: float = 75.0
    max_connections: int = 1024
    open: int = 0
    refused: int = 0
    shed: int = 0
    header_timeouts: int = 0
    body_timeouts: int = 0
    _warned_at: float = field(default=0.0, repr=False)

    @classmethod
    def from_settings(cls, g: GatewaySection, nofile: int | None = None) -> ConnectionGuard:
        """Limits from the ``[gateway]`` section; the cap sized from the open-file limit."""
        if nofile is None:
            nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
        cap = g.max_connections or connections_for_fd_limit(nofile)
        return cls(g.header_timeout_s, g.body_timeout_s, g.keepalive_timeout_s, cap)

    def health(self) -> dict[str, Any]:
        return {
            "open": self.open,
            "max": self.max_connections,
            "refused": self.refused,
            "shed": self.shed,
            "header_timeouts": self.header_timeouts,
            "body_timeouts": self.body_timeouts,
        }

    def _at_cap(self) -> None:
        # One line a minute, not one per connection, while a flood lasts.
        now = time.monotonic()
        if now - self._warned_at >= 60.0:
            self._warned_at = now
            log.warning(
                "client connection limit (%d) reached: closing idle connections "
                "(shed %d, refused %d so far)",
                self.max_connections,
                self.shed,
                self.refused,
            )


GUARD_KEY: web.AppKey[ConnectionGuard] = web.AppKey("connection_guard", ConnectionGuard)


class _GuardedServer(web.Server):
    """aiohttp's server, making ``_GuardedHandler`` protocols and enforcing the cap."""

    def __init__(self, base: web.Server, guard: ConnectionGuard) -> None:
        super().__init__(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=base._loop,
            **base._kwargs,
        )
        self.guard = guard
        # Connections with no request in progress, longest waiting first: the ones shed
        # at the cap. Insertion-ordered dict as an ordered set.
        self.waiting: dict[_GuardedHandler, None] = {}

    def __call__(self) -> RequestHandler:
        return _GuardedHandler(self, loop=self._loop, **self._kwargs)

    def admit(self) -> bool:
        guard = self.guard
        if guard.open >= guard.max_connections:
            guard._at_cap()
            if not self._shed_one():
                guard.refused += 1
                return False
        guard.open += 1
        return True

    def _shed_one(self) -> bool:
        while self.waiting:
            handler = next(iter(self.waiting))
            del self.waiting[handler]
            if handler.shed():
                self.guard.shed += 1
                return True
        return False


class _GuardedHandler(RequestHandler):
    """aiohttp's request handler (one per connection) with header and body timeouts."""

    __slots__ = (
        "_body",
        "_body_at",
        "_body_timer",
        "_counted",
        "_header_timer",
        "_server",
        "_stalled",
    )

    def __init__(self, manager: _GuardedServer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._server = manager
        self._counted = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body: StreamReader | None = None  # the request body being received
        self._body_at = 0.0  # when its last bytes arrived
        self._stalled = False  # its body stalled: close once the 408 is sent

    # -- connection life -----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        server = self._server
        if not server.admit():
            transport.close()  # at the cap and every connection busy
            return
        self._counted = True
        super().connection_made(transport)
        server.waiting[self] = None
        self._header_timer = self._loop.call_later(
            server.guard.header_timeout_s, self._header_timeout
        )

    def connection_lost(self, exc: BaseException | None) -> None:
        self._release()
        super().connection_lost(exc)

    def _release(self) -> None:
        self._server.waiting.pop(self, None)
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        self._body = None
        if self._counted:
            self._counted = False
            self._server.guard.open -= 1

    def shed(self) -> bool:
        """Close this connection if it has no request in progress (the cap needs room)."""
        if self.transport is None or self._request_in_progress or self._messages:
            return False
        self._release()
        self.force_close()
        return True

    # -- reading -------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        seen = self._request_count
        super().data_received(data)
        if not data or self.transport is None:
            return
        if self._request_count != seen:
            # A request's headers are complete: it is no longer waiting for one.
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None
            self._server.waiting.pop(self, None)
            body = self._messages[-1][1] if self._messages else None
            if isinstance(body, StreamReader) and not body.is_eof():
                self._watch_body(body)
        elif self._body is not None:
            self._body_at = self._loop.time()
        elif self._header_timer is None and self._waiter is not None and not self._waiter.done():
            # The first bytes of the next request on a kept-alive connection.
            self._header_timer = self._loop.call_later(
                self._server.guard.header_timeout_s, self._header_timeout
            )

    def _header_timeout(self) -> None:
        self._header_timer = None
        if self.transport is None or self._request_in_progress or self._messages:
            return
        self._server.guard.header_timeouts += 1
        self._release()
        self.force_close()

    def _watch_body(self, body: StreamReader) -> None:
        self._body = body
        self._body_at = self._loop.time()
        if self._body_timer is None:
            self._body_timer = self._loop.call_at(
                self._body_at + self._server.guard.body_timeout_s, self._body_check
            )

    def _body_check(self) -> None:
        self._body_timer = None
        body = self._body
        if body is None or body.is_eof() or self.transport is None:
            self._body = None
            return
        now = self._loop.time()
        limit = self._server.guard.body_timeout_s
        if self._reading_paused or getattr(self, "_buffer_paused", False):
            # Flow control: the gateway is not reading, the client is not stalling.
            self._body_at = now
        if now < self._body_at + limit:
            self._body_timer = self._loop.call_at(self._body_at + limit, self._body_check)
            return
        self._server.guard.body_timeouts += 1
        self._body = None
        if self._request_in_progress:
            # The handler's next read raises it: answered 408 in the client's format.
            self._stalled = True
            body.set_exception(
                RequestTimeout(f"The request body stalled: no data for {limit:g} s.")
            )
            self.close()  # read nothing more from this connection
        else:
            self.force_close()

    async def finish_response(
        self, request: web.BaseRequest, resp: web.StreamResponse, start_time: float | None
    ) -> tuple[web.StreamResponse, bool]:
        result = await super().finish_response(request, resp, start_time)
        self._body = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        if self._stalled:
            # Don't wait for (or linger over) the rest of a stalled body: the answer is
            # flushed, then the connection closes.
            self.force_close()
            return result
        if self.transport is not None and not self._close and not self._force_close:
            self._server.waiting[self] = None
        return result


class GatewayRunner(web.AppRunner):
    """``AppRunner`` whose server enforces the app's ``ConnectionGuard`` (see module doc)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        guard = self.app.get(GUARD_KEY)
        if guard is None:
            guard = ConnectionGuard()
        return _GuardedServer(server, guard)


def run(
    app: web.Application,
    *,
    host: str,
    port: int,
    loop: asyncio.AbstractEventLoop,
    shutdown_timeout: float,
) -> None:
    """Serve ``app`` until SIGINT/SIGTERM, then shut down gracefully (like ``web.run_app``).

    In-flight requests get ``shutdown_timeout`` seconds to finish, then ``on_cleanup``
    runs (it drains the ledger writer).
    """

    async def main() -> None:
        runner = GatewayRunner(
            app, handle_signals=True, access_log=None, shutdown_timeout=shutdown_timeout
        )
        await runner.setup()
        try:
            await web.TCPSite(runner, host, port).start()
            while True:
                await asyncio.sleep(3600)
        finally:
            await runner.cleanup()

    task = loop.create_task(main())
    try:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(task)
    except (web.GracefulExit, KeyboardInterrupt):
        pass
    finally:
        try:
            if not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    loop.run_until_complete(task)
        finally:
            rest = asyncio.all_tasks(loop)
            for t in rest:
                t.cancel()
            if rest:
                loop.run_until_complete(asyncio.gather(*rest, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()


__all__ = [
    "GUARD_KEY",
    "ConnectionGuard",
    "GatewayRunner",
    "connections_for_fd_limit",
    "raise_fd_limit",
    "run",
]
