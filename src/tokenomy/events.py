"""Shared vocabulary: token usage, the principal behind a request, and the usage event.

Conventions (one for the whole code base, providers are normalised to it):

* ``input_tokens`` is *all* input: uncached + cache reads + cache writes
  (OpenAI's ``prompt_tokens`` already is; Anthropic's ``input_tokens`` excludes both caches).
* ``cached_tokens`` (cache reads) and ``cache_write_tokens`` are parts of ``input_tokens``;
  ``cache_write_1h_tokens`` is the 1-hour part of ``cache_write_tokens``.
* ``output_tokens`` is all output; ``reasoning_tokens`` and ``audio_output_tokens`` are parts of it.
* ``audio_input_tokens`` is part of ``input_tokens``.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, fields
from typing import Any


class Step(enum.StrEnum):
    """Where in an agent's Plan → Act → Observe → Reflect loop a call was made."""

    PLAN = "plan"
    ACT = "act"
    OBSERVE = "observe"
    REFLECT = "reflect"
    OTHER = "other"


@dataclass(slots=True)
class Usage:
    """Token counts of one request in tokenomy's convention (see module docstring)."""

    input_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def uncached_input_tokens(self) -> int:
        return self.input_tokens - self.cached_tokens - self.cache_write_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    def is_empty(self) -> bool:
        return self.input_tokens == 0 and self.output_tokens == 0


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: resolved from the API key."""

    key_id: str
    org: str
    team: str
    user: str
    name: str = ""


@dataclass(slots=True)
class UsageEvent:
    """One row of the append-only ledger: one request through the gateway."""

    id: str
    ts_ms: int  # request start, Unix epoch milliseconds (UTC)
    api_format: str  # "openai" | "anthropic" (the client's wire format)
    endpoint: str  # "chat.completions" | "completions" | "embeddings" | "responses" | "messages"
    model: str  # what the client asked for
    status: int  # HTTP status sent to the client
    org: str = ""
    team: str = ""
    user: str = ""
    key_id: str = ""
    agent: str = ""
    task: str = ""
    step: str = ""
    end_user: str = ""  # OpenAI ``user`` field
    metadata: dict[str, Any] | None = None  # OpenAI ``metadata`` field
    provider: str = ""
    upstream_model: str = ""
    location: str = ""  # "cloud" | "local"
    stream: bool = False
    error_kind: str = ""
    error_message: str = ""
    usage: Usage = field(default_factory=Usage)
    estimated: bool = False  # usage counted by tokenizer, not reported by the provider
    cost_nanos: int | None = None  # None: no known price (never silently 0)
    price_source: str = ""  # e.g. "genai-prices 0.2.3:openai/gpt-4o" or "custom:negotiated"
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    upstream_request_id: str = ""
    deployment: str = ""  # the served deployment's name (routing)
    region: str = ""  # the served provider's region
    data_class: str = ""  # "public" | "internal" | "confidential" | "restricted"
    attempts: int = 0  # upstream attempts made (0: none, e.g. refused before routing)
    fallback_reason: str = ""  # why another deployment or model served, if one did
    parent_task: str = ""  # a sub-agent's task: the task that started it
