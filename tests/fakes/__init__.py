"""Fake upstream providers for tests and benchmarks: real aiohttp servers on loopback.

Example:
    ``async with FakeOpenAI() as up: client = AsyncOpenAI(base_url=up.base_url, ...)``

Scenario names (select per request with model ``"fake-<name>"`` — several joined by
``+`` — with ``server.next_scenario.append(name)``, or for every request with
``FakeOpenAI(scenario=name)``): ``error-<status>``, ``slow-<n>s``/``slow-<n>ms``,
``stall-<n>s``, ``drop-mid-stream``, ``error-mid-stream``, ``no-usage``,
``usage-with-choices``, ``malformed-json``, ``tool-call``. See :class:`Scenario`.

Standalone (benchmarks): ``python -m tests.fakes.openai_server --port P`` and
``python -m tests.fakes.anthropic_server --port P``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import FakeServer, FakeUsage, RecordedRequest, Scenario, refused_url, unused_port

if TYPE_CHECKING:
    from .anthropic_server import FakeAnthropic
    from .openai_server import FakeOpenAI

__all__ = [
    "FakeAnthropic",
    "FakeOpenAI",
    "FakeServer",
    "FakeUsage",
    "RecordedRequest",
    "Scenario",
    "refused_url",
    "unused_port",
]


def __getattr__(name: str) -> Any:
    # Lazy, so ``python -m tests.fakes.openai_server`` does not import its own module
    # twice (runpy warns when the package already imported it).
    if name == "FakeOpenAI":
        from .openai_server import FakeOpenAI

        return FakeOpenAI
    if name == "FakeAnthropic":
        from .anthropic_server import FakeAnthropic

        return FakeAnthropic
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
