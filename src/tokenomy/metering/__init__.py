"""Metering: what each request really used, in tokenomy's :class:`~tokenomy.events.Usage`.

* :mod:`~tokenomy.metering.usage` — provider usage objects → ``Usage``.
* :mod:`~tokenomy.metering.stream` — SSE parsing and per-stream usage accumulators.
* :mod:`~tokenomy.metering.tokenizer` — offline estimates when a provider reports nothing
  (loaded lazily: importing this package does not load tiktoken or the vocabulary).
"""

from __future__ import annotations

from tokenomy.metering.stream import (
    AnthropicStreamMeter,
    OpenAIStreamMeter,
    ResponsesStreamMeter,
    SSEParser,
    StreamMeter,
    aiter_sse,
)
from tokenomy.metering.tokenizer import complete_usage, count_text
from tokenomy.metering.usage import anthropic_usage, openai_usage

__all__ = [
    "AnthropicStreamMeter",
    "OpenAIStreamMeter",
    "ResponsesStreamMeter",
    "SSEParser",
    "StreamMeter",
    "aiter_sse",
    "anthropic_usage",
    "complete_usage",
    "count_text",
    "openai_usage",
]
