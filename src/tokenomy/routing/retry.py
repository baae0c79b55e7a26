"""Which failures are retried, how long to wait, and which errors mean something else.

Retried: the statuses of the model's retry table (408, 409, 429, 5xx by default),
connection errors, timeouts (including a deployment's ``ttft_timeout_s``), and streams
that fail before their first content event. Never retried: any other 4xx — a content
policy refusal gets exactly one attempt. A context-window error is not retried on the same
model but may move to the model's ``context_window_fallback``.

Backoff applies when an attempt goes back to a deployment that already failed for this
request: exponential from ``backoff_initial_ms`` up to ``backoff_max_ms``, with full
jitter, and never shorter than the deployment's ``retry-after``. A first attempt on
another deployment goes at once.
"""

from __future__ import annotations

import email.utils
import random
import re
import time

from tokenomy.config import RetrySection
from tokenomy.errors import RequestError, UpstreamError, UpstreamTimeout, UpstreamUnavailable

# Longest retry-after honoured; a longer one makes the attempt give up on that deployment.
MAX_RETRY_AFTER_S = 60.0

_CONTEXT_WINDOW = re.compile(
    r"context_length_exceeded|maximum context length|context window|prompt is too long|"
    r"input is too long|too many (?:input )?tokens|exceeds? the (?:model's )?(?:maximum )?"
    r"context|reduce the length of the (?:messages|prompt)|string_above_max_length",
    re.IGNORECASE,
)
_CONTEXT_STATUSES = frozenset({400, 413, 422})


class FirstTokenTimeout(UpstreamTimeout):
    """A deployment sent no first token within its ``ttft_timeout_s``."""

    def __init__(self, provider: str, seconds: float) -> None:
        super().__init__(
            f"Upstream {provider} sent no first token within {seconds:g} s (ttft_timeout_s)."
        )


class StreamFailed(UpstreamError):
    """A stream failed before its first content event (garbage, a non-stream body, an
    in-stream error, an early end): nothing reached the client, so it may be retried."""


def is_context_window(err: RequestError) -> bool:
    """An upstream's "the prompt does not fit" error (OpenAI, Anthropic and look-alikes)."""
    if not isinstance(err, UpstreamError) or err.upstream_status not in _CONTEXT_STATUSES:
        return False
    body = err.upstream_body
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body or "")
    return bool(_CONTEXT_WINDOW.search(text) or _CONTEXT_WINDOW.search(err.message))


def is_retryable(err: RequestError, policy: RetrySection) -> bool:
    """Whether another attempt may serve the request after ``err``."""
    if isinstance(err, (UpstreamTimeout, UpstreamUnavailable)):
        return True
    if not isinstance(err, UpstreamError):
        return False  # the gateway's own refusals (budget, bad request, ...)
    status = err.upstream_status
    if status is None:  # garbage, a non-stream body, an in-stream error before content
        return True
    return status in policy.statuses


def reason(err: RequestError) -> str:
    """A short reason for the event's ``fallback_reason`` and the response header."""
    if isinstance(err, FirstTokenTimeout):
        return "ttft_timeout"
    if isinstance(err, UpstreamTimeout):
        return "timeout"
    if isinstance(err, UpstreamUnavailable):
        return "unavailable"
    if isinstance(err, UpstreamError):
        if err.upstream_status is not None:
            return f"http_{err.upstream_status}"
        return "stream_failed_before_content"
    return err.code


def retry_after_s(err: RequestError) -> float:
    """The upstream's ``retry-after`` (seconds or an HTTP date), 0 when absent."""
    value = err.headers.get("retry-after")
    if not value:
        return 0.0
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return 0.0
    return max(0.0, when.timestamp() - time.time())


def backoff_s(policy: RetrySection, failures: int) -> float:
    """Full-jitter exponential backoff before the ``failures``-th retry of one deployment."""
    cap = min(policy.backoff_max_ms, policy.backoff_initial_ms * (2 ** max(failures - 1, 0)))
    return random.uniform(cap / 2, cap) / 1000 if cap > 0 else 0.0
