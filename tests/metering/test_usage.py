"""Provider usage objects → tokenomy Usage: every bucket once, nothing invented."""

from __future__ import annotations

from typing import Any

import pytest

from tokenomy.events import Usage
from tokenomy.metering.usage import anthropic_usage, openai_usage


def _consistent(u: Usage) -> None:
    # Parts never exceed their whole: the invariant pricing relies on.
    assert 0 <= u.cached_tokens + u.cache_write_tokens <= u.input_tokens
    assert 0 <= u.cache_write_1h_tokens <= u.cache_write_tokens
    assert 0 <= u.audio_input_tokens <= u.input_tokens
    assert 0 <= u.reasoning_tokens <= u.output_tokens
    assert 0 <= u.audio_output_tokens <= u.output_tokens


def test_openai_chat_with_cache_and_reasoning() -> None:
    # Shape of a real o-series chat completion usage object.
    u = openai_usage(
        {
            "prompt_tokens": 2006,
            "completion_tokens": 300,
            "total_tokens": 2306,
            "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 128,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }
    )
    assert u == Usage(
        input_tokens=2006, cached_tokens=1920, output_tokens=300, reasoning_tokens=128
    )
    assert u.uncached_input_tokens == 86  # prompt_tokens already includes the cached part
    assert u.total_tokens == 2306


def test_openai_audio_tokens_are_parts() -> None:
    u = openai_usage(
        {
            "prompt_tokens": 120,
            "completion_tokens": 80,
            "total_tokens": 200,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 100},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 70},
        }
    )
    assert u == Usage(
        input_tokens=120, output_tokens=80, audio_input_tokens=100, audio_output_tokens=70
    )


def test_openai_cache_write_tokens_are_part_of_prompt() -> None:
    u = openai_usage(
        {
            "prompt_tokens": 5000,
            "completion_tokens": 10,
            "total_tokens": 5010,
            "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 3000},
        }
    )
    assert u is not None
    assert (u.input_tokens, u.cached_tokens, u.cache_write_tokens) == (5000, 1000, 3000)
    assert u.cache_write_1h_tokens == 0
    assert u.uncached_input_tokens == 1000


def test_openai_legacy_completions_and_embeddings() -> None:
    assert openai_usage({"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}) == Usage(
        input_tokens=5, output_tokens=7
    )
    assert openai_usage({"prompt_tokens": 8, "total_tokens": 8}) == Usage(input_tokens=8)


def test_openai_responses_api() -> None:
    u = openai_usage(
        {
            "input_tokens": 328,
            "input_tokens_details": {"cached_tokens": 128},
            "output_tokens": 52,
            "output_tokens_details": {"reasoning_tokens": 20},
            "total_tokens": 380,
        }
    )
    assert u == Usage(input_tokens=328, cached_tokens=128, output_tokens=52, reasoning_tokens=20)


def test_openai_responses_cache_write_ttl_split_not_mapped_to_1h() -> None:
    u = openai_usage(
        {
            "input_tokens": 900,
            "input_tokens_details": {
                "cached_tokens": 0,
                "cache_write_tokens": 800,
                "cache_write_tokens_details": {"ttl_30m_tokens": 300, "ttl_12h_tokens": 500},
            },
            "output_tokens": 1,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 901,
        }
    )
    assert u is not None
    assert u.cache_write_tokens == 800
    assert u.cache_write_1h_tokens == 0  # 30m/12h are not the 1-hour bucket


def test_deepseek_cache_fields() -> None:
    raw: dict[str, Any] = {
        "prompt_tokens": 100,
        "completion_tokens": 20,
        "total_tokens": 120,
        "prompt_cache_hit_tokens": 64,
        "prompt_cache_miss_tokens": 36,
        "completion_tokens_details": {"reasoning_tokens": 5},
    }
    expected = Usage(input_tokens=100, cached_tokens=64, output_tokens=20, reasoning_tokens=5)
    assert openai_usage(raw) == expected
    # Newer DeepSeek sends the OpenAI field as well: the same tokens, not twice.
    assert openai_usage(raw | {"prompt_tokens_details": {"cached_tokens": 64}}) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        # vLLM: details are null unless prefix-caching stats are enabled.
        (
            {
                "prompt_tokens": 10,
                "total_tokens": 15,
                "completion_tokens": 5,
                "prompt_tokens_details": None,
            },
            Usage(input_tokens=10, output_tokens=5),
        ),
        # llama.cpp server: cached prompt tokens in the OpenAI field.
        (
            {
                "completion_tokens": 5,
                "prompt_tokens": 10,
                "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 4},
            },
            Usage(input_tokens=10, cached_tokens=4, output_tokens=5),
        ),
        # Ollama's OpenAI-compatible endpoint, and its native counters.
        (
            {"prompt_tokens": 26, "completion_tokens": 298, "total_tokens": 324},
            Usage(input_tokens=26, output_tokens=298),
        ),
        ({"prompt_eval_count": 26, "eval_count": 298}, Usage(input_tokens=26, output_tokens=298)),
        # A server that omits completion_tokens but reports the total.
        ({"prompt_tokens": 10, "total_tokens": 14}, Usage(input_tokens=10, output_tokens=4)),
    ],
)
def test_openai_compatible_servers(raw: dict[str, Any], expected: Usage) -> None:
    assert openai_usage(raw) == expected


@pytest.mark.parametrize(
    "raw", [None, {}, [], "usage", {"total_tokens": 12}, {"prompt_tokens": None}, {"foo": 1}]
)
def test_openai_nothing_reported(raw: Any) -> None:
    assert openai_usage(raw) is None


def test_openai_garbage_is_clamped_not_trusted() -> None:
    u = openai_usage(
        {
            "prompt_tokens": 10,
            "completion_tokens": -3,
            "prompt_tokens_details": {"cached_tokens": 50, "cache_write_tokens": 9},
            "completion_tokens_details": {"reasoning_tokens": 7, "audio_tokens": True},
        }
    )
    assert u == Usage(input_tokens=10, cached_tokens=10)
    _consistent(u)


def test_anthropic_cache_read_and_write_are_added_to_input() -> None:
    u = anthropic_usage(
        {
            "input_tokens": 50,
            "cache_creation_input_tokens": 1000,
            "cache_read_input_tokens": 2000,
            "cache_creation": {"ephemeral_5m_input_tokens": 400, "ephemeral_1h_input_tokens": 600},
            "output_tokens": 503,
            "service_tier": "standard",
            "server_tool_use": None,
        }
    )
    assert u == Usage(
        input_tokens=3050,
        cached_tokens=2000,
        cache_write_tokens=1000,
        cache_write_1h_tokens=600,
        output_tokens=503,
    )
    assert u.uncached_input_tokens == 50


def test_anthropic_nulls_and_missing_cache_fields() -> None:
    assert anthropic_usage(
        {
            "input_tokens": 12,
            "output_tokens": 6,
            "cache_creation_input_tokens": None,
            "cache_read_input_tokens": None,
            "cache_creation": None,
        }
    ) == Usage(input_tokens=12, output_tokens=6)
    assert anthropic_usage({"output_tokens": 15}) == Usage(output_tokens=15)


def test_anthropic_cache_creation_object_only() -> None:
    u = anthropic_usage(
        {
            "input_tokens": 3,
            "output_tokens": 1,
            "cache_creation": {"ephemeral_5m_input_tokens": 10, "ephemeral_1h_input_tokens": 20},
        }
    )
    assert u == Usage(
        input_tokens=33, cache_write_tokens=30, cache_write_1h_tokens=20, output_tokens=1
    )


def test_anthropic_thinking_tokens_are_reasoning() -> None:
    u = anthropic_usage(
        {"input_tokens": 3, "output_tokens": 100, "output_tokens_details": {"thinking_tokens": 60}}
    )
    assert u == Usage(input_tokens=3, output_tokens=100, reasoning_tokens=60)


@pytest.mark.parametrize("raw", [None, {}, {"service_tier": "standard"}, "x"])
def test_anthropic_nothing_reported(raw: Any) -> None:
    assert anthropic_usage(raw) is None


def test_anthropic_inconsistent_1h_split_is_clamped() -> None:
    u = anthropic_usage(
        {
            "input_tokens": 1,
            "output_tokens": 1,
            "cache_creation_input_tokens": 5,
            "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 9},
        }
    )
    assert u is not None
    _consistent(u)
    assert u.cache_write_1h_tokens == 5
