"""Normalise provider usage objects into tokenomy's :class:`~tokenomy.events.Usage`.

Two wire conventions meet here and must not be confused:

* OpenAI (and every OpenAI-compatible server) reports ``prompt_tokens`` / ``input_tokens``
  that already *include* cached tokens; the details are parts of that total.
* Anthropic reports ``input_tokens`` that *exclude* cache reads and cache writes; those
  come as siblings and must be added to get all input.

Both functions are pure, tolerate missing/``null``/garbage fields (an OpenAI-compatible
server may send anything), never count a bucket twice and never invent a number that
the provider did not report: a field that is absent stays 0. Parts are clamped to their
whole so a broken upstream cannot make ``uncached_input_tokens`` negative.
"""

from __future__ import annotations

from typing import Any

from tokenomy.events import Usage

__all__ = ["anthropic_usage", "openai_usage"]


def _n(value: Any) -> int:
    """A non-negative token count from a JSON value; anything else counts as 0."""
    # ``type(...) is int`` first: it is the overwhelmingly common case and excludes bool.
    if type(value) is int:
        return value if value > 0 else 0
    if type(value) is float and value > 0 and value != float("inf"):
        return int(value)
    return 0


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _has(d: dict[str, Any], key: str) -> bool:
    """True if ``key`` carries a number (``null`` means "not reported")."""
    v = d.get(key)
    return v is not None and not isinstance(v, bool) and isinstance(v, int | float)


def openai_usage(u: dict[str, Any] | None) -> Usage | None:
    """Normalise an OpenAI-format ``usage`` object.

    Understands Chat Completions and Completions (``prompt_tokens`` / ``completion_tokens``
    with ``prompt_tokens_details`` and ``completion_tokens_details``), Embeddings
    (``prompt_tokens`` only), the Responses API (``input_tokens`` / ``output_tokens`` with
    ``input_tokens_details`` and ``output_tokens_details``) and the dialects of
    OpenAI-compatible servers: DeepSeek (``prompt_cache_hit_tokens`` /
    ``prompt_cache_miss_tokens``), vLLM and llama.cpp (``null`` details), Ollama's native
    counters (``prompt_eval_count`` / ``eval_count``).

    Args:
        u: The ``usage`` value from a response body or stream chunk, or ``None``.

    Returns:
        The usage in tokenomy's convention, or ``None`` when ``u`` reports no token
        counts at all (absent, ``null``, empty, or not an object).
    """
    if not u or not isinstance(u, dict):
        return None

    if _has(u, "prompt_tokens") or _has(u, "completion_tokens"):
        in_details = _obj(u.get("prompt_tokens_details"))
        out_details = _obj(u.get("completion_tokens_details"))
        input_tokens = _n(u.get("prompt_tokens"))
        output_tokens = _n(u.get("completion_tokens"))
        if not _has(u, "completion_tokens") and _has(u, "total_tokens"):
            # Servers that omit completion_tokens (embeddings, some local servers) still
            # report the total; the difference is what they generated (0 for embeddings).
            output_tokens = max(_n(u.get("total_tokens")) - input_tokens, 0)
    elif _has(u, "input_tokens") or _has(u, "output_tokens"):
        # Responses API: same inclusive convention as chat, different names.
        in_details = _obj(u.get("input_tokens_details"))
        out_details = _obj(u.get("output_tokens_details"))
        input_tokens = _n(u.get("input_tokens"))
        output_tokens = _n(u.get("output_tokens"))
    elif _has(u, "prompt_cache_hit_tokens") or _has(u, "prompt_cache_miss_tokens"):
        in_details, out_details = {}, {}
        input_tokens = _n(u.get("prompt_cache_hit_tokens")) + _n(u.get("prompt_cache_miss_tokens"))
        output_tokens = 0
    elif _has(u, "prompt_eval_count") or _has(u, "eval_count"):
        # Ollama's native API counters (when a response body itself is passed as usage).
        in_details, out_details = {}, {}
        input_tokens = _n(u.get("prompt_eval_count"))
        output_tokens = _n(u.get("eval_count"))
    else:
        return None

    if not input_tokens and _has(u, "prompt_cache_miss_tokens"):
        # DeepSeek: prompt_tokens = hit + miss; rebuild it if a proxy dropped it.
        input_tokens = _n(u.get("prompt_cache_hit_tokens")) + _n(u.get("prompt_cache_miss_tokens"))

    # Cache reads: the OpenAI field wins; DeepSeek's is the same quantity under another
    # name (newer DeepSeek builds send both, so take one, never the sum).
    if _has(in_details, "cached_tokens"):
        cached = _n(in_details.get("cached_tokens"))
    else:
        cached = _n(u.get("prompt_cache_hit_tokens"))
    cached = min(cached, input_tokens)
    # Cache writes are part of prompt/input tokens in OpenAI's convention. Their TTL split
    # (30 minutes / 12 hours) is not the 1-hour bucket of our Usage, so it is not mapped.
    cache_write = min(_n(in_details.get("cache_write_tokens")), input_tokens - cached)
    audio_in = min(_n(in_details.get("audio_tokens")), input_tokens)

    reasoning = min(_n(out_details.get("reasoning_tokens")), output_tokens)
    audio_out = min(_n(out_details.get("audio_tokens")), output_tokens)

    return Usage(
        input_tokens=input_tokens,
        cached_tokens=cached,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=0,
        output_tokens=output_tokens,
        reasoning_tokens=reasoning,
        audio_input_tokens=audio_in,
        audio_output_tokens=audio_out,
    )


def anthropic_usage(u: dict[str, Any] | None) -> Usage | None:
    """Normalise an Anthropic Messages ``usage`` object.

    Anthropic's ``input_tokens`` excludes cache reads and cache writes, so
    ``Usage.input_tokens = input_tokens + cache_read_input_tokens +
    cache_creation_input_tokens``. The ``cache_creation`` object splits writes by TTL;
    its ``ephemeral_1h_input_tokens`` becomes ``cache_write_1h_tokens``. If only the
    ``cache_creation`` object is present, its two parts are the cache writes.
    ``output_tokens_details.thinking_tokens`` becomes ``reasoning_tokens``.

    Args:
        u: The ``usage`` value of a message, of ``message_start.message`` or an already
            merged stream usage, or ``None``.

    Returns:
        The usage in tokenomy's convention, or ``None`` when ``u`` reports no counts.
    """
    if not u or not isinstance(u, dict):
        return None
    if not (
        _has(u, "input_tokens")
        or _has(u, "output_tokens")
        or _has(u, "cache_read_input_tokens")
        or _has(u, "cache_creation_input_tokens")
    ):
        return None

    uncached = _n(u.get("input_tokens"))
    cache_read = _n(u.get("cache_read_input_tokens"))
    creation = _obj(u.get("cache_creation"))
    write_5m = _n(creation.get("ephemeral_5m_input_tokens"))
    write_1h = _n(creation.get("ephemeral_1h_input_tokens"))
    if _has(u, "cache_creation_input_tokens"):
        cache_write = _n(u.get("cache_creation_input_tokens"))
    else:
        cache_write = write_5m + write_1h
    output_tokens = _n(u.get("output_tokens"))
    thinking = _n(_obj(u.get("output_tokens_details")).get("thinking_tokens"))

    return Usage(
        input_tokens=uncached + cache_read + cache_write,
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=min(write_1h, cache_write),
        output_tokens=output_tokens,
        reasoning_tokens=min(thinking, output_tokens),
        audio_input_tokens=0,
        audio_output_tokens=0,
    )
