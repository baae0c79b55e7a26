"""Fake upstream providers for tests and bench/: real aiohttp servers on loopback.

Example:
    ``async with FakeOpenAI() as up: client = AsyncOpenAI(base_url=up.base_url, ...)``

Scenario names (select per request with model ``"fake-<name>"`` — several joined by
``+`` — with ``server.next_scenario.append(name)``, or for every request with
``FakeOpenAI(scenario=name)``): ``error-<status>``, ``slow-<n>s``/``slow-<n>ms``,
``stall-<n>s``, ``drop-mid-stream``, ``error-mid-stream``, ``no-usage``,
``usage-with-choices``, ``malformed-json``, ``tool-call``. See :class:`Scenario`.

As a process (bench/run.py's upstream, in fast mode):
``python -m tests.fakes.serve [--provider anthropic] --port P [--fast]``.
"""

from __future__ import annotations

from ._base import FakeServer, FakeUsage, RecordedRequest, Scenario, refused_url, unused_port
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
