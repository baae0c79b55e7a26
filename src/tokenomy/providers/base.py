"""The adapter seam: what the gateway needs from each upstream wire format."""

from __future__ import annotations

from typing import Any, Protocol

from tokenomy.config import Provider
from tokenomy.types import Usage

# Client-facing endpoints and the wire format each belongs to.
CHAT = "chat.completions"
COMPLETIONS = "completions"
EMBEDDINGS = "embeddings"
RESPONSES = "responses"
MESSAGES = "messages"

ENDPOINT_FORMAT = {
    CHAT: "openai",
    COMPLETIONS: "openai",
    EMBEDDINGS: "openai",
    RESPONSES: "openai",
    MESSAGES: "anthropic",
}
STREAMABLE = frozenset({CHAT, COMPLETIONS, RESPONSES, MESSAGES})


class StreamMeter(Protocol):
    """Accumulates a stream's usage (and text, for the tokenizer fallback)."""

    def usage(self) -> Usage | None: ...

    def output_text(self) -> str: ...


class Adapter(Protocol):
    kind: str
    endpoints: frozenset[str]

    def url(self, provider: Provider, endpoint: str) -> str: ...

    def headers(self, provider: Provider, client_headers: Any) -> dict[str, str]: ...

    def usage(self, endpoint: str, body: dict[str, Any]) -> Usage | None: ...
