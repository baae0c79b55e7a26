"""``tokenomy top``: a live terminal view of a running gateway."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console
from rich.live import Live

from tokenomy.cli.output import fail
from tokenomy.observe.top import TopError, fetch, view


def register(app: typer.Typer) -> None:
    app.command()(top)


def top(
    admin_key: Annotated[
        str,
        typer.Option(
            "--admin-key",
            envvar="TOKENOMY_ADMIN_KEY",
            help="An admin key (a team admin sees its own team only).",
        ),
    ],
    gateway: Annotated[
        str, typer.Option("--gateway", help="The gateway's base URL.")
    ] = "http://127.0.0.1:8080",
    window: Annotated[
        int, typer.Option(min=1, max=59, help="Average over the last N seconds.")
    ] = 10,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between refreshes.")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Print one screen and exit.")] = False,
) -> None:
    """Requests/s, tokens/s, spend rate, errors and the top teams, agents and models of a
    running gateway, refreshed every second (Ctrl-C quits).

    Example: tokenomy top --gateway http://127.0.0.1:8080 --admin-key tka-...
    """
    console = Console()  # the terminal's width (the shared console is wide for pipes)
    if once:
        try:
            console.print(view(fetch(gateway, admin_key, window), gateway))
        except TopError as exc:
            raise fail(str(exc)) from exc
        return
    stats, error = None, None
    with Live(view(None, gateway), console=console, screen=False, auto_refresh=False) as live:
        try:
            while True:
                try:
                    stats, error = fetch(gateway, admin_key, window), None
                except TopError as exc:
                    error = str(exc)  # keep showing the last numbers; retry next second
                live.update(view(stats, gateway, error), refresh=True)
                time.sleep(interval)
        except KeyboardInterrupt:
            pass
