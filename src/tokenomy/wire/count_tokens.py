"""Bridges for ``POST /v1/messages/count_tokens`` (the Anthropic SDK's ``messages.count_tokens``).

An Anthropic upstream counts exactly: the request is forwarded and its answer relayed.
An OpenAI-compatible upstream has no such endpoint: the gateway counts locally with the
offline tokenizer and says so in the ``x-tokenomy-estimated: true`` header (the body
keeps the shape the SDK parses, ``{"input_tokens": N}``).
"""

from __future__ import annotations

from typing import Any

from tokenomy.wire.anthropic import COUNT_TOKENS
from tokenomy.wire.base import Bridge, Passthrough
from tokenomy.wire.openai import CHAT

ESTIMATED_HEADER = "x-tokenomy-estimated"


class CountTokensForward(Passthrough):
    """Anthropic upstream: forwarded as it is."""

    __slots__ = ()
    client = upstream = COUNT_TOKENS


class CountTokensLocal(Bridge):
    """OpenAI-compatible upstream: counted by the gateway, flagged as an estimate."""

    __slots__ = ()
    client = COUNT_TOKENS
    upstream = CHAT  # the upstream's wire format; nothing is sent to it
    forwards = False

    def answer(self, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        return {"input_tokens": COUNT_TOKENS.estimate_input(body)}, {ESTIMATED_HEADER: "true"}


BRIDGES = (CountTokensForward(), CountTokensLocal())
