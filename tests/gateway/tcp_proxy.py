"""A loopback TCP proxy the tests control: forward, black-hole, or refuse (a network cut)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable

from tests.ports import unused_port


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; ``blackhole()`` swallows everything.

    A black hole is the nasty kind of partition: connections stay open and accept bytes,
    nothing comes back, nothing is reset. ``restore()`` drops every connection (as a
    healed network would, after the peers gave up) and forwards new ones again.
    ``stop()`` closes the port: nothing listening, connections refused.
    """

    def __init__(self, target_host: str, target_port: int, port: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.port = port or unused_port()
        self.dropping = False
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        # Its own thread and loop: the tests' synchronous waits must not stall it.
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()

    def _call(self, fn: Callable[[], Awaitable[None]]) -> None:
        asyncio.run_coroutine_threadsafe(_run(fn), self._loop).result(10)

    def start(self) -> None:
        """Listen (again) and forward."""

        async def go() -> None:
            self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

        self._call(go)

    def stop(self) -> None:
        """Close the port (nothing listening) and drop every connection."""

        async def go() -> None:
            if self._server is not None:
                self._server.close()
                self._server = None
            self._abort_all()

        self._call(go)

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def blackhole(self) -> None:
        self.dropping = True

    def restore(self) -> None:
        async def go() -> None:
            self.dropping = False
            self._abort_all()

        self._call(go)

    def _abort_all(self) -> None:
        for w in list(self._writers):
            w.transport.abort()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        up_writer: asyncio.StreamWriter | None = None
        try:
            if self.dropping:
                await self._pump(reader, None)
                return
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            self._writers.add(up_writer)
            await asyncio.gather(self._pump(reader, up_writer), self._pump(up_reader, writer))
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (writer, up_writer):
                if w is not None:
                    self._writers.discard(w)
                    w.transport.abort()

    async def _pump(self, src: asyncio.StreamReader, dst: asyncio.StreamWriter | None) -> None:
        with contextlib.suppress(OSError):
            while data := await src.read(65536):
                if dst is None or self.dropping:
                    continue  # swallowed: a black hole
                dst.write(data)
                await dst.drain()
        if dst is not None and not self.dropping:
            dst.transport.abort()


async def _run(fn: Callable[[], Awaitable[None]]) -> None:
    await fn()
