from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.local.server import LocalServer, local_server


@pytest.fixture(scope="module")
def llama() -> Iterator[LocalServer]:
    """One real llama.cpp server per test module (model loading takes a few seconds)."""
    with local_server() as server:
        yield server
