"""The simulated model's answers: deterministic, and usage that agrees with the text."""

from __future__ import annotations

from typing import Any

from tokenomy.metering.tokenizer import count_text, estimate_chat_input
from tokenomy.simulate.agent import text
from tokenomy.simulated import answers
from tokenomy.simulated.cache import MIN_TOKENS, PromptCache


def test_every_word_and_any_run_of_them_is_one_token_each() -> None:
    assert all(count_text(w) == 1 for w in answers.WORDS)
    run = "".join(answers.WORDS) * 3
    assert count_text(run) == 3 * len(answers.WORDS)
    assert count_text(text(500, 42, "[search]")) == 500 + count_text("[search]")


def body(*messages: str, **extra: Any) -> dict[str, Any]:
    return {
        "model": "m",
        "messages": [{"role": "user", "content": m} for m in messages],
        **extra,
    }


def test_answers_are_deterministic_and_capped() -> None:
    a, b = (
        answers.answer("chat.completions", body("hi"), 50),
        answers.answer("chat.completions", body("hi"), 50),
    )
    assert a.words == b.words and a.output_tokens == 50 and not a.truncated
    assert a.input_tokens == estimate_chat_input(body("hi"))
    capped = answers.answer("chat.completions", body("hi", max_tokens=7), 50)
    assert capped.output_tokens == 7 == count_text(capped.text) and capped.truncated


def test_prompt_cache_hits_a_grown_prefix_in_steps_of_128() -> None:
    cache = PromptCache()
    long = text(1500, 1)
    first = body(long)
    n1 = estimate_chat_input(first)
    assert cache.cached_tokens("chat.completions", first, n1) == 0  # nothing seen yet
    grown = body(long, "and now?")
    n2 = estimate_chat_input(grown)
    hit = cache.cached_tokens("chat.completions", grown, n2)
    assert MIN_TOKENS <= hit <= n1 and hit % 128 == 0 and n1 - hit < 128 + 3
    # A different start (a rewritten system prompt) never hits.
    other = body(text(1500, 2), "and now?")
    assert cache.cached_tokens("chat.completions", other, estimate_chat_input(other)) == 0
    # Short prompts are never cached.
    short = body("hello")
    cache.cached_tokens("chat.completions", short, 10)
    assert cache.cached_tokens("chat.completions", body("hello", "again"), 20) == 0
    # Anthropic caches only what cache_control marks: no automatic cache.
    assert cache.cached_tokens("messages", grown, n2) == 0
