"""``tokenomy serve``: run the gateway."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from tokenomy.cli.db import DbOption
from tokenomy.cli.output import fail
from tokenomy.config import load_config
from tokenomy.errors import ConfigError, LedgerError
from tokenomy.redact import RedactingFilter, mask_url, register_db_url, scrub


def register(app: typer.Typer) -> None:
    app.command()(serve)


def serve(
    config: Annotated[str, typer.Option("--config", "-c", help="TOML configuration file.")],
    host: Annotated[
        str | None, typer.Option(help="Bind address [default: from config, else 127.0.0.1].")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port [default: from config, else 8080].")
    ] = None,
    db: DbOption = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning or error.")] = "info",
    access_log: Annotated[
        str | None,
        typer.Option(
            "--access-log",
            metavar="FILE|-",
            help="Write one JSON line per request to FILE (appended) or - (standard output).",
        ),
    ] = None,
) -> None:
    """Run the OpenAI/Anthropic-compatible gateway.

    Example: tokenomy serve --config examples/tokenomy.toml --port 8080
    """
    import asyncio

    from tokenomy.gateway import connections
    from tokenomy.gateway.app import build_app

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for handler in logging.getLogger().handlers:
        handler.addFilter(RedactingFilter())
    # Before anything opens: client connections are capped from this limit.
    connections.raise_fd_limit()
    try:
        settings = load_config(config)
        db_url = settings.db_url(db)
        register_db_url(db_url)  # its password is scrubbed from every line printed
        application = build_app(settings, db_url, access_log=access_log)
    except (ConfigError, LedgerError) as exc:
        raise fail(scrub(str(exc))) from exc
    bind_host = host or settings.gateway.host
    bind_port = port if port is not None else settings.gateway.port
    try:
        import uvloop

        loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
    except ImportError:  # pragma: no cover - uvloop is not available on Windows
        loop = asyncio.new_event_loop()
    application.on_startup.append(_tune_gc)
    print(
        f"tokenomy gateway on http://{bind_host}:{bind_port}  (ledger: {mask_url(db_url)})",
        flush=True,
    )
    # SIGINT/SIGTERM shut down gracefully: in-flight requests finish, then on_cleanup
    # drains the ledger writer.
    connections.run(application, host=bind_host, port=bind_port, loop=loop, shutdown_timeout=30.0)


async def _tune_gc(app: object) -> None:
    """Keep the cyclic garbage collector off the hot path.

    Everything loaded at start-up (config, price catalog, aiohttp) is frozen out of the
    collector's scans, and young collections run after 20,000 allocations instead of 700.
    Measured with bench/: +12% requests/s at c=64 and half the p99 latency; objects are
    still freed by reference counting as soon as a request is done.
    """
    import gc

    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
