"""Which task a call belongs to, from the headers agents already send.

``X-Tokenomy-Task``, else Helicone's ``Helicone-Session-Id``, else LiteLLM's
``x-litellm-trace-id``: existing agents need no change. ``X-Tokenomy-Parent-Task`` links a
sub-agent's task to the task that started it. Each is checked like every recorded header
(UTF-8, no NUL, at most 256 characters; 400 otherwise).
"""

from __future__ import annotations

from collections.abc import Mapping

from tokenomy.gateway.requests import header_text

TASK_HEADERS = ("X-Tokenomy-Task", "Helicone-Session-Id", "x-litellm-trace-id")
PARENT_HEADER = "X-Tokenomy-Parent-Task"


def task_headers(headers: Mapping[str, str]) -> tuple[str, str]:
    """``(task, parent_task)`` of a call ("" when absent)."""
    task = ""
    for name in TASK_HEADERS:
        task = header_text(headers, name)
        if task:
            break
    parent = header_text(headers, PARENT_HEADER)
    return task, parent


__all__ = ["PARENT_HEADER", "TASK_HEADERS", "task_headers"]
