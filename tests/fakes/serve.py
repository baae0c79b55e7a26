"""Run a fake upstream as its own process, for bench/ and for tests that need one.

Usage::

    python -m tests.fakes.serve --port 9001 --fast  # FakeOpenAI
    python -m tests.fakes.serve --provider anthropic --port 9002

``--fast`` puts a raw asyncio front (``fast_front.py``) before the fake: it answers the chat
completions (OpenAI) or messages (Anthropic) endpoint with the fake's pre-serialised
replies and records nothing, so a benchmark measures the gateway, not the fake; any other
request (e.g. a model naming a scenario, ``"fake-error-429"``) is relayed to the full fake.
The process prints one ``<Fake> listening on <url>`` line once it accepts
connections and serves until it is interrupted or terminated.
"""

from __future__ import annotations

import argparse
import asyncio

from ._base import FakeServer
from .anthropic_server import FakeAnthropic
from .fast_front import start_fast_front
from .openai_server import FakeOpenAI

__all__ = ["main", "serve_forever"]

PROVIDERS: dict[str, type[FakeServer]] = {"openai": FakeOpenAI, "anthropic": FakeAnthropic}


def serve_forever(server: FakeServer, fast: bool = False) -> None:
    """Run ``server`` in this process until interrupted (uvloop if installed).

    ``fast``: the fake itself listens on a private port behind a fast front on the port
    asked for (see ``fast_front.py``).
    """

    async def run() -> None:
        front = None
        if fast:
            host, port = server.host, server.port
            server.port = 0
            await server.start()
            replies = server.fast_replies()  # type: ignore[attr-defined]
            path = server.fast_path  # type: ignore[attr-defined]
            front = await start_fast_front(server, path, replies, host, port)
            url = "http://{}:{}".format(*front.sockets[0].getsockname()[:2])
        else:
            await server.start()
            url = server.url
        print(f"{type(server).__name__} listening on {url}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            if front is not None:
                front.close()
            await server.stop()

    try:
        try:
            import uvloop  # faster: the benchmark measures the gateway, not the fake
        except ImportError:  # pragma: no cover
            asyncio.run(run())
        else:
            uvloop.run(run())
    except KeyboardInterrupt:  # pragma: no cover
        pass


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and serve the chosen fake until interrupted."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.fakes.serve", description="Serve a fake LLM upstream."
    )
    parser.add_argument("--provider", choices=sorted(PROVIDERS), default="openai")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port")
    parser.add_argument(
        "--fast",
        action="store_true",
        help="pre-serialised replies, nothing recorded (benchmarks)",
    )
    args = parser.parse_args(argv)
    serve_forever(PROVIDERS[args.provider](host=args.host, port=args.port), fast=args.fast)


if __name__ == "__main__":
    main()
