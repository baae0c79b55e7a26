"""Calls in flight at a SIGKILL: journaled as started, recorded as ``interrupted`` at replay.

``tokenomy serve`` runs as a real process in front of a fake upstream that stalls; it is
killed while calls are upstream (unary ones waiting for headers, streams half relayed),
restarted, and every call the upstream received must then be in the ledger, the
interrupted ones charged at their worst case.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path

import openai

from tests.cli.test_serve_process import (
    UPSTREAM_KEY,
    USAGE,
    assert_metered,
    gateway_config,
    ledger_events,
    new_key,
    port_url,
    send,
    serving,
    wait_for,
)
from tests.fakes import FakeOpenAI, unused_port
from tokenomy.ledger.writer import INTERRUPTED, INTERRUPTED_STATUS
from tokenomy.wire import DEFAULT_OUTPUT_CAP

DONE = 4  # calls answered before the kill
IN_FLIGHT = 6  # calls upstream at the kill: half unary, half streamed
NANOS_PER_INPUT_TOKEN, NANOS_PER_OUTPUT_TOKEN = 1_000, 2_000  # [prices.flat]: $1 and $2 per M


async def _call(client: openai.AsyncOpenAI, i: int) -> None:
    messages = [{"role": "user", "content": f"in flight {i}"}]
    if i % 2:
        await client.chat.completions.create(model="gpt-4o-mini", messages=messages)  # type: ignore[arg-type]
        return
    stream = await client.chat.completions.create(
        model="gpt-4o-mini",
        messages=messages,  # type: ignore[arg-type]
        stream=True,
    )
    async for _ in stream:
        pass


async def test_sigkill_with_calls_in_flight_charges_them_at_worst_case(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'ledger.db'}"
    journal = tmp_path / "journal"
    secret = new_key(db)
    async with FakeOpenAI(usage=USAGE, api_key=UPSTREAM_KEY) as up:
        port = unused_port()
        config = gateway_config(tmp_path / "t.toml", up.base_url, port=port, journal=journal)
        async with serving(
            ["--config", str(config), "--db", db], tmp_path, port_url("127.0.0.1", port)
        ) as gw:
            done_ids = await send(gw.url, secret, DONE)
            # Unary calls wait for headers; streams stall after their first events.
            up.next_scenario.extend(
                ["stall-30s" if i % 2 == 0 else "slow-30s" for i in range(IN_FLIGHT)]
            )
            async with openai.AsyncOpenAI(
                base_url=gw.url + "/v1", api_key=secret, max_retries=0
            ) as client:
                calls = [asyncio.create_task(_call(client, i)) for i in range(IN_FLIGHT)]
                await wait_for(
                    lambda: len(up.requests) == DONE + IN_FLIGHT, "the upstream to get them"
                )
                gw.proc.send_signal(signal.SIGKILL)
                assert await gw.wait() == -signal.SIGKILL
                for call in calls:
                    with contextlib.suppress(openai.APIError):
                        await call
        served = len(up.requests)

        port2 = unused_port()
        args = ["--config", str(config), "--db", db, "--port", str(port2)]
        async with serving(args, tmp_path, port_url("127.0.0.1", port2), name="restart") as gw2:
            await wait_for(lambda: len(ledger_events(db)) >= served, "replayed events")
            assert await gw2.stop() == 0
        assert f"{IN_FLIGHT} calls were in flight" in gw2.logs()

    events = ledger_events(db)
    assert len(events) == served == DONE + IN_FLIGHT  # every call the upstream served
    assert_metered([e for e in events if e.id in done_ids], done_ids)
    interrupted = [e for e in events if e.id not in done_ids]
    for e in interrupted:
        assert (e.status, e.error_kind, e.estimated) == (INTERRUPTED_STATUS, INTERRUPTED, True)
        assert (e.org, e.model, e.provider) == ("acme", "gpt-4o-mini", "fake")
        # No budget reserved for these calls: the client's body size bounds the input
        # tokens, the model's output cap (the default one here) bounds the output.
        assert e.usage.output_tokens == DEFAULT_OUTPUT_CAP
        assert 0 < e.usage.input_tokens < 1000
        assert e.cost_nanos == (
            e.usage.input_tokens * NANOS_PER_INPUT_TOKEN
            + e.usage.output_tokens * NANOS_PER_OUTPUT_TOKEN
        )
    assert sorted(e.stream for e in interrupted) == [False] * 3 + [True] * 3
    assert list(journal.iterdir()) == []
