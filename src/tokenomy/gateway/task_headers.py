"""Which task a call belongs to, from the headers agents already send.

``X-Tokenomy-Task``, else Helicone's ``Helicone-Session-Id``, else LiteLLM's
``x-litellm-trace-id``: existing agents need no change. ``X-Tokenomy-Parent-Task`` links a
sub-agent's task to the task that started it. Each is checked like every recorded header
(UTF-8, no NUL, at most 256 characters; 400 otherwise).
"""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

from tokenomy.gateway.requests import header_text

TASK_HEADERS = ("X-Tokenomy-Task", "Helicone-Session-Id", "x-litellm-trace-id")
PARENT_HEADER = "X-Tokenomy-Parent-Task"
# Looked up by their lowercase names first: multidict finds a lowercase name ~10x faster
# than a mixed-case one, and most calls carry none of these headers (bench/RESULTS.md).
_TASK_KEYS = tuple((name.lower(), name) for name in TASK_HEADERS)
_PARENT_KEY = PARENT_HEADER.lower()


def task_headers(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> tuple[str, str]:
    """``(task, parent_task)`` of a call ("" when absent)."""
    task = ""
    for key, name in _TASK_KEYS:
        if key in headers:
            task = header_text(headers, name)
            if task:
                break
    parent = header_text(headers, PARENT_HEADER) if _PARENT_KEY in headers else ""
    return task, parent


__all__ = ["PARENT_HEADER", "TASK_HEADERS", "task_headers"]
