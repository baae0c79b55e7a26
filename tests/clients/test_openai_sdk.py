"""The official ``openai`` SDK: chat completions and the Responses API, plain, streamed and
through a tool-call round trip, on an OpenAI upstream and (translated) an Anthropic one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from tests.clients.conftest import Ledger
from tests.gateway.harness import Harness

MODELS = ["gpt-4o-mini", "claude-sonnet"]  # OpenAI upstream; Anthropic upstream (translated)
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


@pytest.fixture(scope="module")
def client(gateway: Harness) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=gateway.openai_base, api_key=gateway.key, max_retries=0) as c:
        yield c


@pytest.mark.parametrize("model", MODELS)
def test_chat(client: openai.OpenAI, ledger: Ledger, model: str) -> None:
    r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hi"}])
    assert r.choices[0].message.content
    assert r.usage is not None
    assert (r.usage.prompt_tokens, r.usage.completion_tokens) == (
        ledger.usage.input_tokens,
        ledger.usage.output_tokens,
    )
    ledger.check(1, api_format="openai")


@pytest.mark.parametrize("model", MODELS)
def test_chat_stream(client: openai.OpenAI, ledger: Ledger, model: str) -> None:
    stream = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "Hi"}], stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text
    ledger.check(1, api_format="openai")


@pytest.mark.parametrize("model", MODELS)
def test_chat_tool_round_trip(client: openai.OpenAI, ledger: Ledger, model: str) -> None:
    messages: list[dict[str, object]] = [{"role": "user", "content": "Weather in Paris?"}]
    ledger.tool_call_next()
    first = client.chat.completions.create(model=model, messages=messages, tools=TOOLS)  # type: ignore[arg-type]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "weather"  # type: ignore[union-attr]
    assert "city" in json.loads(call.function.arguments)  # type: ignore[union-attr]
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny."},
    ]
    second = client.chat.completions.create(model=model, messages=messages, tools=TOOLS)  # type: ignore[arg-type]
    assert second.choices[0].message.content
    ledger.check(2, api_format="openai")


@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("stream", [False, True])
def test_responses(client: openai.OpenAI, ledger: Ledger, model: str, stream: bool) -> None:
    if stream:
        with client.responses.stream(model=model, input="Hi") as s:
            final = s.get_final_response()
    else:
        final = client.responses.create(model=model, input="Hi")
    assert final.output_text
    assert final.usage is not None
    assert final.usage.input_tokens == ledger.usage.input_tokens
    ledger.check(1, api_format="openai")


@pytest.mark.parametrize("model", MODELS)
def test_responses_tool_round_trip(client: openai.OpenAI, ledger: Ledger, model: str) -> None:
    tools: Any = [{"type": "function", "name": "weather", **TOOLS[0]["function"]}]  # type: ignore[dict-item]
    ledger.tool_call_next()
    first = client.responses.create(model=model, input="Weather in Paris?", tools=tools)
    call = next(o for o in first.output if o.type == "function_call")
    assert call.name == "weather"
    follow: Any = [
        {"role": "user", "content": "Weather in Paris?"},
        call.model_dump(exclude_none=True),
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny."},
    ]
    second = client.responses.create(model=model, input=follow, tools=tools)
    assert second.output_text
    ledger.check(2, api_format="openai")
