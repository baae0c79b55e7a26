"""What one agent step adds to its conversation, per wire format (for the shredder).

Agent prompts grow by appending, so the whole prompt of a healthy agent looks like its
previous one. What tells a loop from progress is what each step *adds*: new messages, the
tools it called (name + argument hash) and what they returned (result hash). Each endpoint
walks its own body shape here and hands back :class:`Fragment` tuples; nothing outside the
seam looks at a body's format.

Only the items from ``start`` on are hashed (the ones the previous step had not sent), so
the cost per call is the size of what is new, not of the whole context.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import orjson

MESSAGE = "message"
TOOL_CALL = "tool_call"
TOOL_RESULT = "tool_result"
TOOL_ERROR = "tool_error"
# A tool result whose text starts like this (OpenAI has no error flag on tool messages).
_ERROR_PREFIXES = ("error", "exception", "traceback", "failed", "fatal")


class Fragment(NamedTuple):
    """One thing a step added: a message, a tool call, or a tool's result."""

    kind: str  # MESSAGE | TOOL_CALL | TOOL_RESULT | TOOL_ERROR
    name: str  # the role of a message, the tool of a call
    digest: int  # hash of the content (a call: its name and arguments), this process only
    size: int  # characters of content (about 4 per token)
    ref: str = ""  # the call id a result answers (or a call's own id)
    text: str = ""  # a message's or result's text (the body's own string, not a copy)


def digest(value: Any) -> int:
    """A 64-bit hash of a string or JSON value, for comparisons within this process.

    Python's own string hash (SipHash, several times faster than blake2b here): digests
    are kept only in this process's memory, never stored or compared across processes,
    so its per-process seed does not matter.
    """
    if isinstance(value, str | bytes):
        return hash(value)
    try:
        return hash(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))
    except (TypeError, orjson.JSONEncodeError):
        return hash(repr(value))


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out: list[str] = []
        for part in content:
            if isinstance(part, dict):
                t = part.get("text")
                if isinstance(t, str):
                    out.append(t)
                elif isinstance(part.get("content"), str | list):
                    out.append(_text(part["content"]))
            elif isinstance(part, str):
                out.append(part)
        return "".join(out)
    return "" if content is None else str(content)


def _looks_failed(text: str) -> bool:
    head = text.lstrip()[:32].lower()
    return head.startswith(_ERROR_PREFIXES) or head.startswith('{"error"')


def _window(items: list[Any], start: int) -> list[Any]:
    # A conversation that did not grow (a retry, or a context rewritten shorter): its last
    # item stands for the step.
    if 0 <= start < len(items):
        return items[start:]
    return items[-1:]


def chat_fragments(body: dict[str, Any], start: int) -> tuple[int, list[Fragment]]:
    """OpenAI Chat Completions: ``messages`` with ``tool_calls`` and ``tool`` messages."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 0, []
    out: list[Fragment] = []
    for m in _window(messages, start):
        if not isinstance(m, dict):
            continue
        role = str(m.get("role", ""))
        text = _text(m.get("content"))
        if role in ("tool", "function"):
            kind = TOOL_ERROR if _looks_failed(text) else TOOL_RESULT
            ref = str(m.get("tool_call_id") or m.get("name") or "")
            out.append(Fragment(kind, role, digest(text), len(text), ref, text))
            continue
        if text or not m.get("tool_calls"):
            out.append(Fragment(MESSAGE, role, digest(text), len(text), "", text))
        for tc in m.get("tool_calls") or ():
            fn = tc.get("function") if isinstance(tc, dict) else None
            if isinstance(fn, dict):
                name, args = str(fn.get("name", "")), fn.get("arguments", "")
                size = len(args) if isinstance(args, str) else 0
                ref = str(tc.get("id", ""))
                out.append(Fragment(TOOL_CALL, name, digest([name, args]), size, ref))
    return len(messages), out


def messages_fragments(body: dict[str, Any], start: int) -> tuple[int, list[Fragment]]:
    """Anthropic Messages: content blocks ``tool_use`` and ``tool_result`` (``is_error``)."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 0, []
    out: list[Fragment] = []
    for m in _window(messages, start):
        if not isinstance(m, dict):
            continue
        role = str(m.get("role", ""))
        content = m.get("content")
        if isinstance(content, str):
            out.append(Fragment(MESSAGE, role, digest(content), len(content), "", content))
            continue
        texts: list[str] = []
        for block in content if isinstance(content, list) else ():
            if not isinstance(block, dict):
                continue
            kind = block.get("type")
            if kind == "tool_use":
                name = str(block.get("name", ""))
                args = block.get("input")
                ref = str(block.get("id", ""))
                size = len(orjson.dumps(args)) if args is not None else 0
                out.append(Fragment(TOOL_CALL, name, digest([name, args]), size, ref))
            elif kind == "tool_result":
                text = _text(block.get("content"))
                failed = block.get("is_error") is True or _looks_failed(text)
                ref = str(block.get("tool_use_id", ""))
                kind = TOOL_ERROR if failed else TOOL_RESULT
                out.append(Fragment(kind, role, digest(text), len(text), ref, text))
            elif isinstance(block.get("text"), str):
                texts.append(block["text"])
        if texts:
            text = "".join(texts)
            out.append(Fragment(MESSAGE, role, digest(text), len(text), "", text))
    return len(messages), out


def responses_fragments(body: dict[str, Any], start: int) -> tuple[int, list[Fragment]]:
    """OpenAI Responses: ``input`` items (messages, ``function_call``, ``function_call_output``)."""
    items = body.get("input")
    if isinstance(items, str):
        return 1, [Fragment(MESSAGE, "user", digest(items), len(items), "", items)]
    if not isinstance(items, list):
        return 0, []
    out: list[Fragment] = []
    for item in _window(items, start):
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind == "function_call":
            name, args = str(item.get("name", "")), item.get("arguments", "")
            size = len(args) if isinstance(args, str) else 0
            ref = str(item.get("call_id", ""))
            out.append(Fragment(TOOL_CALL, name, digest([name, args]), size, ref))
        elif kind == "function_call_output":
            text = _text(item.get("output"))
            failed = _looks_failed(text)
            ref = str(item.get("call_id", ""))
            what = TOOL_ERROR if failed else TOOL_RESULT
            out.append(Fragment(what, "tool", digest(text), len(text), ref, text))
        else:
            text = _text(item.get("content"))
            role = str(item.get("role", ""))
            out.append(Fragment(MESSAGE, role, digest(text), len(text), "", text))
    return len(items), out


__all__ = [
    "MESSAGE",
    "TOOL_CALL",
    "TOOL_ERROR",
    "TOOL_RESULT",
    "Fragment",
    "chat_fragments",
    "digest",
    "messages_fragments",
    "responses_fragments",
]
