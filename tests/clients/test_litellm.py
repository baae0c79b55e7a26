"""LiteLLM as a client (``litellm.completion`` / ``litellm.responses`` pointed at the gateway
with ``api_base``): its ``openai/`` provider on chat completions and the Responses API, its
``anthropic/`` provider on /v1/messages; plain, streamed and a tool-call round trip."""

from __future__ import annotations

import gc
import json
import warnings
from collections.abc import Iterator
from typing import Any

import litellm
import pytest

from tests.clients.conftest import Ledger
from tests.gateway.harness import Harness

# LiteLLM's own TypedDicts trip a pydantic warning when it builds its types (not ours).
pytestmark = [
    pytest.mark.filterwarnings("ignore:.*`ReadOnly` qualifier:UserWarning"),
    pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince211"),
    # Its logging of a Responses call dumps chat-shaped usage into ResponseAPIUsage.
    pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning"),
]

litellm.telemetry = False
litellm.disable_streaming_logging = True

# (LiteLLM model string, wire format the gateway sees)
CASES = [
    ("openai/gpt-4o-mini", "openai"),
    ("openai/claude-sonnet", "openai"),
    ("anthropic/claude-sonnet", "anthropic"),
    ("anthropic/claude-via-openai", "anthropic"),
]
IDS = [m for m, _ in CASES]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "Get the current weather in a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


@pytest.fixture(scope="module", autouse=True)
def litellm_leftovers() -> Iterator[None]:
    """LiteLLM leaves an event loop and pooled connections of its own to the garbage
    collector; collect them here, where their ResourceWarnings are not ours to fail on."""
    yield
    litellm.module_level_client.close()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


def base(model: str, h: Harness) -> dict[str, Any]:
    api_base = h.url if model.startswith("anthropic/") else h.openai_base
    return {"model": model, "api_base": api_base, "api_key": h.key, "num_retries": 0}


@pytest.mark.parametrize(("model", "fmt"), CASES, ids=IDS)
def test_completion(gateway: Harness, ledger: Ledger, model: str, fmt: str) -> None:
    r: Any = litellm.completion(
        **base(model, gateway), messages=[{"role": "user", "content": "Hi"}]
    )
    assert r.choices[0].message.content
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (
        ledger.usage.input_tokens,
        ledger.usage.output_tokens,
    )
    ledger.check(1, api_format=fmt)


@pytest.mark.parametrize(("model", "fmt"), CASES, ids=IDS)
def test_completion_stream(gateway: Harness, ledger: Ledger, model: str, fmt: str) -> None:
    chunks = list(
        litellm.completion(
            **base(model, gateway),
            messages=[{"role": "user", "content": "Hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    usage = litellm.stream_chunk_builder(chunks).usage  # type: ignore[union-attr]
    assert (usage.prompt_tokens, usage.completion_tokens) == (
        ledger.usage.input_tokens,
        ledger.usage.output_tokens,
    )
    ledger.check(1, api_format=fmt)


@pytest.mark.parametrize(("model", "fmt"), CASES, ids=IDS)
def test_tool_round_trip(gateway: Harness, ledger: Ledger, model: str, fmt: str) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    ledger.tool_call_next()
    first: Any = litellm.completion(**base(model, gateway), messages=messages, tools=TOOLS)
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "weather"
    assert "city" in json.loads(call.function.arguments)
    messages += [
        first.choices[0].message.model_dump(),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny."},
    ]
    second: Any = litellm.completion(**base(model, gateway), messages=messages, tools=TOOLS)
    assert second.choices[0].message.content
    ledger.check(2, api_format=fmt)


@pytest.mark.parametrize("model", ["openai/gpt-4o-mini", "openai/claude-sonnet"])
@pytest.mark.parametrize("stream", [False, True])
def test_responses(gateway: Harness, ledger: Ledger, model: str, stream: bool) -> None:
    r: Any = litellm.responses(**base(model, gateway), input="Hi", stream=stream)
    if stream:
        events = list(r)
        r = next(e.response for e in events if e.type == "response.completed")
    assert r.output
    assert (r.usage.input_tokens, r.usage.output_tokens) == (
        ledger.usage.input_tokens,
        ledger.usage.output_tokens,
    )
    ledger.check(1, api_format="openai")
