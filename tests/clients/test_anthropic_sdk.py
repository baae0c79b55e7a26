"""The official ``anthropic`` SDK on /v1/messages: plain, streamed and a tool-call round
trip, on an Anthropic upstream and (translated) an OpenAI one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import pytest

from tests.clients.conftest import Ledger
from tests.gateway.harness import Harness

MODELS = ["claude-sonnet", "claude-via-openai"]  # Anthropic upstream; OpenAI (translated)
TOOLS: Any = [
    {
        "name": "weather",
        "description": "Get the current weather in a city.",
        "input_schema": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    }
]


@pytest.fixture(scope="module")
def client(gateway: Harness) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(base_url=gateway.url, api_key=gateway.key, max_retries=0) as c:
        yield c


@pytest.mark.parametrize("model", MODELS)
def test_messages(client: anthropic.Anthropic, ledger: Ledger, model: str) -> None:
    msg = client.messages.create(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    )
    assert msg.content[0].type == "text"
    total_in = msg.usage.input_tokens + (msg.usage.cache_read_input_tokens or 0)
    assert (total_in, msg.usage.output_tokens) == (
        ledger.usage.input_tokens,
        ledger.usage.output_tokens,
    )
    ledger.check(1, api_format="anthropic")


@pytest.mark.parametrize("model", MODELS)
def test_messages_stream(client: anthropic.Anthropic, ledger: Ledger, model: str) -> None:
    with client.messages.stream(
        model=model, max_tokens=100, messages=[{"role": "user", "content": "Hi"}]
    ) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    assert text
    assert final.usage.output_tokens == ledger.usage.output_tokens
    ledger.check(1, api_format="anthropic")


@pytest.mark.parametrize("model", MODELS)
def test_tool_round_trip(client: anthropic.Anthropic, ledger: Ledger, model: str) -> None:
    messages: Any = [{"role": "user", "content": "Weather in Paris?"}]
    ledger.tool_call_next()
    first = client.messages.create(model=model, max_tokens=100, messages=messages, tools=TOOLS)
    use = next(b for b in first.content if b.type == "tool_use")
    assert (first.stop_reason, use.name) == ("tool_use", "weather")
    messages += [
        {"role": "assistant", "content": [b.model_dump() for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "Sunny."}],
        },
    ]
    second = client.messages.create(model=model, max_tokens=100, messages=messages, tools=TOOLS)
    assert second.stop_reason == "end_turn"
    ledger.check(2, api_format="anthropic")


@pytest.mark.parametrize("model", MODELS)
def test_stream_tool_use(client: anthropic.Anthropic, ledger: Ledger, model: str) -> None:
    """A streamed tool_use block (input in JSON fragments), as Claude Code receives it."""
    ledger.tool_call_next()
    with client.messages.stream(
        model=model,
        max_tokens=100,
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=TOOLS,
    ) as s:
        final = s.get_final_message()
    use = next(b for b in final.content if b.type == "tool_use")
    assert (final.stop_reason, use.name, sorted(use.input)) == ("tool_use", "weather", ["city"])  # type: ignore[arg-type]
    assert final.usage.output_tokens == ledger.usage.output_tokens
    ledger.check(1, api_format="anthropic")
