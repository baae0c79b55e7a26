"""Offline token counting with the shipped o200k_base vocabulary."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
import textwrap
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from tokenomy.events import Usage
from tokenomy.metering import tokenizer
from tokenomy.metering.tokenizer import (
    complete_usage,
    count_text,
    estimate_chat_input,
    estimate_completions_input,
    estimate_embeddings_input,
    estimate_messages_input,
    estimate_responses_input,
)
from tokenomy.wire import ENDPOINTS


def test_shipped_vocabulary_is_openais_o200k_base() -> None:
    packed = resources.files("tokenomy.metering").joinpath("data", "o200k_base.tiktoken.gz")
    raw = gzip.decompress(packed.read_bytes())
    assert hashlib.sha256(raw).hexdigest() == tokenizer.O200K_SHA256
    assert tokenizer.O200K_SHA256 == (
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
    )


def test_encoding_matches_published_token_ids() -> None:
    # Token ids published in OpenAI's cookbook "How to count tokens with tiktoken".
    enc = tokenizer.encoding()
    assert enc.encode_ordinary("tiktoken is great!") == [83, 8251, 2488, 382, 2212, 0]
    assert enc.n_vocab == 200019
    assert count_text("") == 0
    assert count_text("<|endoftext|>") > 1  # special-token text is plain text here


def test_chat_estimate_matches_openai_cookbook() -> None:
    # The cookbook's examples; OpenAI's API reported 124 and 101 prompt tokens for gpt-4o.
    messages = [
        {
            "role": "system",
            "content": "You are a helpful, pattern-following assistant that "
            "translates corporate jargon into plain English.",
        },
        {
            "role": "system",
            "name": "example_user",
            "content": "New synergies will help drive top-line growth.",
        },
        {
            "role": "system",
            "name": "example_assistant",
            "content": "Things working well together will increase revenue.",
        },
        {
            "role": "system",
            "name": "example_user",
            "content": "Let's circle back when we have "
            "more bandwidth to touch base on opportunities for increased leverage.",
        },
        {
            "role": "system",
            "name": "example_assistant",
            "content": "Let's talk later when we're less busy about how to do better.",
        },
        {
            "role": "user",
            "content": "This late pivot means we don't have time to boil the "
            "ocean for the client deliverable.",
        },
    ]
    assert estimate_chat_input({"model": "gpt-4o", "messages": messages}) == 124

    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_current_weather",
                "description": "Get the current weather in a given location",
                "parameters": {
                    "type": "object",
                    "properties": {
                        "location": {
                            "type": "string",
                            "description": "The city and state, e.g. San Francisco, CA",
                        },
                        "unit": {
                            "type": "string",
                            "description": "The unit of temperature to return",
                            "enum": ["celsius", "fahrenheit"],
                        },
                    },
                    "required": ["location"],
                },
            },
        }
    ]
    weather = [
        {
            "role": "system",
            "content": "You are a helpful assistant that can answer to questions about "
            "the weather.",
        },
        {"role": "user", "content": "What's the weather like in San Francisco?"},
    ]
    assert estimate_chat_input({"messages": weather, "tools": tools}) == 101


def test_chat_estimate_parts_tool_calls_and_garbage() -> None:
    text_only = estimate_chat_input({"messages": [{"role": "user", "content": "hi there"}]})
    parts = estimate_chat_input(
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "hi there"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,AAAA", "detail": "low"},
                        },
                    ],
                }
            ]
        }
    )
    assert parts == text_only + 85
    with_call = estimate_chat_input(
        {
            "messages": [
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
            ]
        }
    )
    assert with_call > 2 * 3 + 3
    assert estimate_chat_input({"messages": ["junk", None, {"content": 5}]}) > 0
    assert estimate_chat_input({}) == 3


def test_prompt_estimates() -> None:
    assert estimate_completions_input({"prompt": "Say this is a test"}) == count_text(
        "Say this is a test"
    )
    assert estimate_completions_input({"prompt": [[1, 2, 3], [4, 5]]}) == 5  # ids count exactly
    assert estimate_embeddings_input({"input": ["a b", "c"]}) == count_text("a b") + 1
    assert estimate_embeddings_input({"input": [9, 9, 9]}) == 3
    responses = estimate_responses_input(
        {
            "instructions": "Be brief.",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "Weather in Paris?"}]},
                {
                    "type": "function_call",
                    "call_id": "c1",
                    "name": "get_weather",
                    "arguments": '{"city":"Paris"}',
                },
                {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            ],
        }
    )
    assert responses > count_text("Be brief.") + count_text("Weather in Paris?")
    assert ENDPOINTS["responses"].estimate_input({"input": "hello"}) == 3 + 1 + 3


def test_anthropic_estimate() -> None:
    base: dict[str, Any] = {
        "max_tokens": 10,
        "messages": [{"role": "user", "content": "Hello, Claude"}],
    }
    n = estimate_messages_input(base)
    assert n == 3 + count_text("Hello, Claude") + 3
    with_system = estimate_messages_input(base | {"system": [{"type": "text", "text": "Be kind"}]})
    assert with_system == n + 3 + count_text("Be kind")
    tools = [
        {
            "name": "get_weather",
            "description": "Weather",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    assert estimate_messages_input(base | {"tools": tools}) > n + 346
    thinking = {"type": "thinking", "thinking": "long thoughts " * 50, "signature": "x"}
    call = {"type": "tool_use", "id": "t1", "name": "get_weather", "input": {}}
    turn = {"role": "assistant", "content": [thinking, call]}
    result = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "sunny"}],
    }
    loop = [base["messages"][0], turn, result]
    later = [*loop, {"role": "assistant", "content": "Sunny."}, {"role": "user", "content": "B"}]
    # Thinking of the turn in progress (tool-use loop) counts; a finished turn's is dropped.
    assert estimate_messages_input({"messages": loop}) - estimate_messages_input(
        {"messages": [base["messages"][0], {"role": "assistant", "content": [call]}, result]}
    ) == count_text("long thoughts " * 50)
    assert estimate_messages_input({"messages": later}) == estimate_messages_input(
        {
            "messages": [
                base["messages"][0],
                {"role": "assistant", "content": [call]},
                result,
                {"role": "assistant", "content": "Sunny."},
                {"role": "user", "content": "B"},
            ]
        }
    )
    assert ENDPOINTS["messages"].estimate_input(base) == n


def test_complete_usage() -> None:
    exact = Usage(input_tokens=10, output_tokens=2)

    def boom() -> int:
        raise AssertionError("input must not be re-estimated")

    assert complete_usage(exact, complete=True, estimate_input_tokens=boom, output_text="x") == (
        exact,
        False,
    )
    est, flagged = complete_usage(
        None, complete=False, estimate_input_tokens=lambda: 42, output_text="hello world"
    )
    assert flagged and est == Usage(input_tokens=42, output_tokens=2)
    partial = Usage(
        input_tokens=2125,
        cached_tokens=2000,
        cache_write_tokens=100,
        cache_write_1h_tokens=60,
        output_tokens=1,
    )
    est, flagged = complete_usage(
        partial, complete=False, estimate_input_tokens=boom, output_text="one two three four"
    )
    assert flagged
    assert est == Usage(
        input_tokens=2125,
        cached_tokens=2000,
        cache_write_tokens=100,
        cache_write_1h_tokens=60,
        output_tokens=4,
    )


def test_works_offline_without_tiktoken_cache(tmp_path: Path) -> None:
    """Fresh interpreter, sockets disabled, empty tiktoken cache dir: counting still works."""
    cache = tmp_path / "tiktoken-cache"
    cache.mkdir()
    code = textwrap.dedent(
        """
        import socket, sys

        def no_network(*args, **kwargs):
            raise OSError("network disabled in this test")

        socket.socket.connect = no_network
        socket.create_connection = no_network
        socket.getaddrinfo = no_network

        import tokenomy.metering
        from tokenomy.metering import tokenizer
        assert "tiktoken" not in sys.modules, "importing metering must not load tiktoken"
        assert tokenizer._encoding is None, "vocabulary must load lazily"
        print(tokenizer.count_text("tiktoken is great!"))
        """
    )
    env = os.environ | {"TIKTOKEN_CACHE_DIR": str(cache), "DATA_GYM_CACHE_DIR": str(cache)}
    env.pop("http_proxy", None)
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "6"
    assert list(cache.iterdir()) == []


def test_corrupt_vocabulary_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tokenizer, "_read_vocabulary", lambda: gzip.compress(b"IQ== 0\n"))
    with pytest.raises(RuntimeError, match="corrupt"):
        tokenizer._load()
