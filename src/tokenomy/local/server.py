"""Run llama.cpp's own HTTP server (via ``xllamacpp``) on a GGUF model: the local lane.

``xllamacpp.Server(CommonParams)`` starts llama.cpp's C++ server in background threads:
the OpenAI wire format (``/v1/chat/completions``, ``/v1/completions``, streaming with
usage), parallel slots with continuous batching, ``/tokenize`` and ``/apply-template``.
Nothing here is on the gateway's request path; the gateway talks to it over HTTP like
to any OpenAI-compatible upstream (a ``location = "local"`` provider).

Two CPU knobs matter on a small shared box and are set here (docs/local.md has numbers):

* ``OMP_WAIT_POLICY`` (libgomp, read when the library loads): ``passive`` lets idle
  OpenMP workers sleep instead of spinning, so decode threads do not fight each other
  or other processes for the cores. Default here: ``passive``.
* ``--parallel`` (slots): each slot reserves its own share of the context; on 2 cores
  more slots raise total tokens/s only while the cores are not saturated.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tokenomy.errors import LocalModelError
from tokenomy.local.template import CHAT_TEMPLATE


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """What ``tokenomy local serve`` starts.

    ``ctx_per_slot`` is each slot's context (prompt + output); the server's total context
    is ``parallel x ctx_per_slot``. ``threads`` defaults to the number of CPUs.
    """

    model: Path
    host: str = "127.0.0.1"
    port: int = 8000
    parallel: int = 1
    threads: int | None = None
    ctx_per_slot: int = 2048
    alias: str = "local"
    special_text: bool = True
    log_level: int = 1  # llama.cpp verbosity: 0 errors ... 3 debug

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def set_wait_policy(policy: str | None = "passive") -> None:
    """Set ``OMP_WAIT_POLICY`` unless the environment already does (call before loading)."""
    if policy:
        os.environ.setdefault("OMP_WAIT_POLICY", policy.upper())


def _engine() -> Any:
    try:
        import xllamacpp
    except ImportError as exc:
        raise LocalModelError(
            "the llama.cpp engine is not installed: pip install 'tokenomy[local]'"
        ) from exc
    return xllamacpp


def build_params(opts: ServerOptions) -> Any:
    """The ``xllamacpp.CommonParams`` for ``opts`` (an explicit chat template, slots, threads)."""
    xlc = _engine()
    p = xlc.CommonParams()
    p.model.path = str(opts.model)
    p.hostnames = [opts.host]
    p.port = opts.port
    p.n_parallel = opts.parallel
    p.n_ctx = opts.parallel * opts.ctx_per_slot
    p.cont_batching = True
    # Each kept-alive client connection holds one HTTP thread while it waits: more threads
    # than slots, so a gateway's pooled connections never queue behind idle ones.
    p.n_threads_http = max(4 * opts.parallel, 16)
    threads = opts.threads or os.cpu_count() or 1
    p.cpuparams.n_threads = threads
    p.cpuparams_batch.n_threads = threads
    p.model_alias = {opts.alias}
    # A base model has no chat template: use ours, never llama.cpp's ChatML fallback.
    p.use_jinja = True
    p.chat_template = CHAT_TEMPLATE
    p.endpoint_metrics = True
    p.endpoint_slots = True
    p.verbosity = opts.log_level
    p.special = opts.special_text
    return p


class LocalServer:
    """A running llama.cpp server; ``close()`` (or the context manager) stops it."""

    def __init__(self, opts: ServerOptions) -> None:
        xlc = _engine()
        self.options = opts
        try:
            self._server: Any = xlc.Server(build_params(opts))
        except (RuntimeError, ValueError) as exc:
            raise LocalModelError(f"llama.cpp could not start on {opts.model}: {exc}") from exc
        address = getattr(self._server, "listening_address", None)
        self.url: str = str(address) if address else opts.url

    def close(self) -> None:
        """Stop the server (llama.cpp's destructor joins its threads)."""
        server, self._server = self._server, None
        del server


@contextmanager
def running(opts: ServerOptions) -> Iterator[LocalServer]:
    """Start a server for the duration of a ``with`` block."""
    server = LocalServer(opts)
    try:
        yield server
    finally:
        server.close()
