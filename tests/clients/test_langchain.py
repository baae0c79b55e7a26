"""LangChain: ``ChatOpenAI`` (chat completions and the Responses API) and ``ChatAnthropic``
(/v1/messages): invoke, stream and a tool-call round trip through ``bind_tools``."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_anthropic import ChatAnthropic
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_openai import ChatOpenAI

from tests.clients.conftest import Ledger, weather
from tests.gateway.harness import Harness

# (id, wire format, model factory); each on a native and a translated upstream.
CASES = [
    ("openai-chat", "openai", "gpt-4o-mini"),
    ("openai-chat", "openai", "claude-sonnet"),
    ("openai-responses", "openai", "gpt-4o-mini"),
    ("openai-responses", "openai", "claude-sonnet"),
    ("anthropic", "anthropic", "claude-sonnet"),
    ("anthropic", "anthropic", "claude-via-openai"),
]
IDS = [f"{kind}-{model}" for kind, _, model in CASES]


def make(kind: str, model: str, h: Harness) -> BaseChatModel:
    if kind == "anthropic":
        anthropic: Any = ChatAnthropic
        return anthropic(model=model, base_url=h.url, api_key=h.key, max_retries=0)  # type: ignore[no-any-return]
    return ChatOpenAI(
        model=model,
        base_url=h.openai_base,
        api_key=h.key,  # type: ignore[arg-type]
        max_retries=0,
        stream_usage=True,
        use_responses_api=kind == "openai-responses",
    )


def assert_usage(msg: AIMessage, ledger: Ledger) -> None:
    """What LangChain tells its user is what the ledger holds."""
    assert msg.usage_metadata is not None
    assert msg.usage_metadata["input_tokens"] == ledger.usage.input_tokens
    assert msg.usage_metadata["output_tokens"] == ledger.usage.output_tokens


@pytest.mark.parametrize(("kind", "fmt", "model"), CASES, ids=IDS)
def test_invoke(gateway: Harness, ledger: Ledger, kind: str, fmt: str, model: str) -> None:
    msg = make(kind, model, gateway).invoke("Hello there")
    assert isinstance(msg, AIMessage)
    assert msg.text
    assert_usage(msg, ledger)
    ledger.check(1, api_format=fmt)


@pytest.mark.parametrize(("kind", "fmt", "model"), CASES, ids=IDS)
def test_stream(gateway: Harness, ledger: Ledger, kind: str, fmt: str, model: str) -> None:
    total: AIMessageChunk | None = None
    for chunk in make(kind, model, gateway).stream("Hello there"):
        assert isinstance(chunk, AIMessageChunk)
        total = chunk if total is None else total + chunk
    assert total is not None and total.text
    assert_usage(total, ledger)
    ledger.check(1, api_format=fmt)


@pytest.mark.parametrize(("kind", "fmt", "model"), CASES, ids=IDS)
def test_tool_round_trip(gateway: Harness, ledger: Ledger, kind: str, fmt: str, model: str) -> None:
    llm = make(kind, model, gateway).bind_tools([weather])
    messages: list[Any] = [HumanMessage("What is the weather in Paris?")]
    ledger.tool_call_next()
    first = llm.invoke(messages)
    assert isinstance(first, AIMessage)
    assert [c["name"] for c in first.tool_calls] == ["weather"]
    call = first.tool_calls[0]
    messages += [first, ToolMessage(weather(**call["args"]), tool_call_id=call["id"])]
    second = llm.invoke(messages)
    assert isinstance(second, AIMessage)
    assert second.text and not second.tool_calls
    ledger.check(2, api_format=fmt)


@pytest.mark.parametrize(("kind", "fmt", "model"), CASES, ids=IDS)
def test_stream_tool_call(
    gateway: Harness, ledger: Ledger, kind: str, fmt: str, model: str
) -> None:
    """A tool call streamed in fragments comes out whole (Claude Code's own pattern)."""
    llm = make(kind, model, gateway).bind_tools([weather])
    ledger.tool_call_next()
    total: AIMessageChunk | None = None
    for chunk in llm.stream("What is the weather in Paris?"):
        assert isinstance(chunk, AIMessageChunk)
        total = chunk if total is None else total + chunk
    assert total is not None
    assert [(c["name"], sorted(c["args"])) for c in total.tool_calls] == [("weather", ["city"])]
    assert_usage(total, ledger)
    ledger.check(1, api_format=fmt)
