"""Exact offline counts for a local deployment: its model's own tokenizer and chat template.

Used by the gateway only when a server reports no usage (or a stream is cut short): a
provider with ``tokenizer = "PATH.gguf"`` (or a model package name) is counted with the
GGUF's vocabulary on the prompt rendered exactly as ``tokenomy local serve`` renders it
(:mod:`tokenomy.local.template`), instead of the generic o200k estimate. Counts stay
flagged as estimated on the event: they are ours, not the server's.

The output is counted from the reply's text with special tokens parsed: ``tokenomy local
serve`` returns the control tokens a model emits (``<end_of_turn>`` included) as text, so
the text is a faithful record of every token the server counted.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tokenomy.errors import LocalModelError
from tokenomy.local.gguf import GGUFError
from tokenomy.local.model import resolve_model
from tokenomy.local.template import NotRenderable, render_chat
from tokenomy.local.tokenizer import GgufTokenizer, UnsupportedTokenizer, load
from tokenomy.metering.tokenizer import count_text

if TYPE_CHECKING:
    from tokenomy.config import Deployment
    from tokenomy.wire.base import Endpoint

log = logging.getLogger("tokenomy.local")


class LocalCounter:
    """Token counts of OpenAI chat/completions requests and replies for one GGUF model."""

    def __init__(self, tokenizer: GgufTokenizer) -> None:
        self.tokenizer = tokenizer

    def input_tokens(self, endpoint: str, body: dict[str, Any]) -> int | None:
        """Prompt tokens of a request as the server counts them; None if not countable here.

        Args:
            endpoint: the gateway endpoint name (``chat.completions`` or ``completions``).
            body: the request body as sent upstream.
        """
        count = _PROMPTS.get(endpoint)
        return None if count is None else count(self.tokenizer, body)

    def output_tokens(self, text: str) -> int:
        """Tokens of a reply's text (no BOS; control-token text counts as one token each)."""
        return self.tokenizer.count(text, add_special=False) if text else 0


def _chat_prompt(tok: GgufTokenizer, body: dict[str, Any]) -> int | None:
    if body.get("tools") or body.get("functions"):
        return None  # tool definitions are rendered by templates we do not own
    try:
        return tok.count(render_chat(body.get("messages")))
    except NotRenderable:
        return None


def _completions_prompt(tok: GgufTokenizer, body: dict[str, Any]) -> int | None:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return tok.count(prompt)
    if isinstance(prompt, list) and prompt and all(type(t) is int for t in prompt):
        return len(prompt) + (1 if tok.add_bos else 0)
    return None  # several prompts, or mixed: not ours to guess


# The endpoints whose prompts are rendered like `tokenomy local serve` renders them.
_PROMPTS: dict[str, Callable[[GgufTokenizer, dict[str, Any]], int | None]] = {
    "chat.completions": _chat_prompt,
    "completions": _completions_prompt,
}

_counters: dict[str, LocalCounter] = {}
_lock = threading.Lock()


def counter_for(spec: str) -> LocalCounter:
    """The counter for a provider's ``tokenizer`` setting (a GGUF path or a model package).

    Loaded once per process; call it off the event loop (loading reads the GGUF header).

    Raises:
        LocalModelError: no such model, or a tokenizer this module does not implement.
    """
    counter = _counters.get(spec)
    if counter is None:
        with _lock:
            counter = _counters.get(spec)
            if counter is None:
                try:
                    counter = LocalCounter(load(resolve_model(spec)))
                except (UnsupportedTokenizer, GGUFError, OSError) as exc:
                    raise LocalModelError(f"tokenizer {spec!r}: {exc}") from exc
                _counters[spec] = counter
    return counter


class OfflineCounts:
    """The gateway's fallback counters for one deployment: its GGUF's, else the generic ones.

    A ``tokenizer`` that cannot be loaded (model uninstalled, unsupported vocabulary) is
    logged once and the generic o200k estimate is used instead: a count is never lost.
    """

    def __init__(self, spec: str | None) -> None:
        self.spec = spec

    def _counter(self) -> LocalCounter | None:
        if self.spec is None or self.spec in _broken:
            return None
        try:
            return counter_for(self.spec)
        except LocalModelError as exc:
            _broken.add(self.spec)
            log.warning("local tokenizer unavailable, using the generic estimate: %s", exc)
            return None

    def input_tokens(self, endpoint: Endpoint, body: dict[str, Any]) -> Callable[[], int]:
        """A deferred count of the request's input tokens (call it off the event loop)."""

        def count() -> int:
            counter = self._counter()
            n = counter.input_tokens(endpoint.name, body) if counter is not None else None
            return endpoint.estimate_input(body) if n is None else n

        return count

    def output_tokens(self, text: str) -> int:
        """Tokens of a reply's text."""
        counter = self._counter()
        return counter.output_tokens(text) if counter is not None else count_text(text)


_broken: set[str] = set()
_GENERIC = OfflineCounts(None)


def offline_counts(deployment: Deployment | None) -> OfflineCounts:
    """The counters for ``deployment`` (its provider's ``tokenizer``, if it names one)."""
    spec = deployment.provider.tokenizer if deployment is not None else None
    return _GENERIC if spec is None else OfflineCounts(spec)
