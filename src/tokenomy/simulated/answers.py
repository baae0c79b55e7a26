"""What the simulated model answers, and that answer in each wire format.

The simulated model is deterministic: the same request gets the same answer.

* **Input tokens** are counted with the project's offline tokenizer (o200k, the same
  counts the gateway uses when an upstream reports no usage): ``estimate_*_input`` of
  the endpoint's body. Streamed and unary answers of one request report the same count.
* **Output** is made of words that are each exactly one o200k token (``" the"``,
  ``" agent"``...), so the text of an answer of ``n`` output tokens tokenizes to ``n``
  tokens: the reported usage and the text agree. An answer has ``answer_tokens`` words,
  cut at the request's output cap (then the finish reason says so).
* **Tool calls**: when the request offers tools and does not forbid them, the model calls
  one when told to (``required``, a named tool, Anthropic ``any``/``tool``), or on
  ``auto`` when the last message is not a tool result (ReAct: act, then observe). The tool
  and its arguments follow from a hash of the last message's content, so an agent that
  sends the same message gets the same call (what a looping agent looks like); a tool
  whose schema has no properties is called with ``{}``. A tool call's output tokens are
  the o200k count of its name and arguments.
* **Cached input** (OpenAI formats): see :mod:`tokenomy.simulated.cache`.
"""

from __future__ import annotations

import base64
import struct
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from tokenomy.metering import tokenizer

# Each word, with its leading space, is one o200k token, and so is any run of them
# (checked in tests/simulate/test_answers.py).
_VOCABULARY = (
    "the of and to in is for on with as at by from that this it be are was an or not "
    "have will can more new data model token agent plan step tool call cost value time "
    "work team first next report check result system price energy power chip box cloud "
    "local budget fleet task answer loop order travel hotel flight city route day week "
    "search list read write file code test build run fast good best"
)
WORDS = tuple(" " + w for w in _VOCABULARY.split(" "))
EMBEDDING_DIMENSIONS = 1536
_TOOL_ARG_WORDS = 6


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text


@dataclass(frozen=True, slots=True)
class Answer:
    """One simulated answer, before it is put in a wire format."""

    id: str
    model: str
    input_tokens: int
    words: tuple[str, ...]  # the text, one token each (empty for a tool call)
    tool: ToolCall | None
    output_tokens: int
    truncated: bool  # stopped at the request's output cap
    cached_tokens: int = 0  # of the input, read from the prompt cache (tokenomy.simulated.cache)

    @property
    def text(self) -> str:
        return "".join(self.words)


def _seed(value: Any) -> int:
    return zlib.crc32(orjson.dumps(value, option=orjson.OPT_SORT_KEYS))


def _words(n: int, seed: int) -> tuple[str, ...]:
    k = len(WORDS)
    return tuple(WORDS[(seed + i * 7) % k] for i in range(n))


def _tool_names(tools: Any) -> list[tuple[str, list[str] | None]]:
    """(name, property names) of each function tool (OpenAI chat, Responses or Anthropic).

    The property names are None for a tool without a parameters schema.
    """
    out: list[tuple[str, list[str] | None]] = []
    if not isinstance(tools, list):
        return out
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        wrapped = tool.get("function")
        fn: dict[str, Any] = wrapped if isinstance(wrapped, dict) else tool
        name = fn.get("name")
        if not isinstance(name, str) or not name:
            continue
        schema = fn.get("parameters", fn.get("input_schema"))
        props = schema.get("properties") if isinstance(schema, dict) else None
        out.append((name, list(props) if isinstance(props, dict) else None))
    return out


def _forced_tool(choice: Any) -> tuple[bool, bool, str | None]:
    """(tools allowed, a call forced, the forced tool's name) from a ``tool_choice``."""
    if choice in (None, "auto"):
        return True, False, None
    if choice == "none":
        return False, False, None
    if choice in ("required", "any"):
        return True, True, None
    if isinstance(choice, dict):
        kind = choice.get("type")
        if kind == "none":
            return False, False, None
        if kind == "auto":
            return True, False, None
        if kind == "any":
            return True, True, None
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else choice.get("name")
        return True, True, name if isinstance(name, str) else None
    return True, False, None


def _after_tool_result(items: Any) -> bool:
    """Whether the conversation's last item is a tool's result (any wire format)."""
    last = items[-1] if isinstance(items, list) and items else None
    if not isinstance(last, dict):
        return False
    if last.get("type") == "function_call_output" or last.get("role") == "tool":
        return True
    content = last.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


def _last_content(items: Any) -> Any:
    last = items[-1] if isinstance(items, list) and items else items
    if isinstance(last, dict):  # what it says, not its ids (a tool result's call id)
        return last.get("content", last.get("output", last))
    return last


@dataclass(frozen=True, slots=True)
class Shape:
    """What the simulated model needs to know of one endpoint (looked up once per request)."""

    items: str  # the field holding the conversation (its last item seeds the answer)
    caps: tuple[str, ...]  # output cap fields, the first one set wins
    count: Callable[[dict[str, Any]], int]  # input tokens, offline (o200k)


SHAPES: dict[str, Shape] = {
    "chat.completions": Shape(
        "messages", ("max_completion_tokens", "max_tokens"), tokenizer.estimate_chat_input
    ),
    "completions": Shape("prompt", ("max_tokens",), tokenizer.estimate_completions_input),
    "embeddings": Shape("input", (), tokenizer.estimate_embeddings_input),
    "responses": Shape("input", ("max_output_tokens",), tokenizer.estimate_responses_input),
    "messages": Shape("messages", ("max_tokens",), tokenizer.estimate_messages_input),
    "messages.count_tokens": Shape("messages", (), tokenizer.estimate_messages_input),
}


def output_cap(endpoint: str, body: dict[str, Any]) -> int | None:
    for name in SHAPES[endpoint].caps:
        cap = body.get(name)
        if isinstance(cap, int) and not isinstance(cap, bool) and cap > 0:
            return cap
    return None


def input_tokens(endpoint: str, body: dict[str, Any]) -> int:
    """The request's input tokens, counted offline (o200k)."""
    return SHAPES[endpoint].count(body)


def answer(endpoint: str, body: dict[str, Any], answer_tokens: int) -> Answer:
    """The simulated model's answer to a (parsed) request of ``endpoint``."""
    model = str(body.get("model") or "simulated")
    items = body.get(SHAPES[endpoint].items)
    seed = _seed(_last_content(items))
    rid = f"{seed:08x}{time.monotonic_ns() & 0xFFFFFFFF:08x}"
    n_in = input_tokens(endpoint, body)
    cap = output_cap(endpoint, body)
    tool = None
    allowed, forced, name = _forced_tool(body.get("tool_choice"))
    tools = _tool_names(body.get("tools")) if allowed else []
    if tools and (forced or not _after_tool_result(items)):
        by_name = dict(tools)
        if name not in by_name:
            name = tools[seed % len(tools)][0]
        props = by_name[name]
        props = ["query"] if props is None else props  # no schema: a free-text argument
        args = {p: "".join(_words(_TOOL_ARG_WORDS, seed + i)).strip() for i, p in enumerate(props)}
        tool = ToolCall(f"call_{rid}", name, orjson.dumps(args).decode())
        n_out = tokenizer.count_text(tool.name) + tokenizer.count_text(tool.arguments)
        if cap is None or n_out <= cap:
            return Answer(rid, model, n_in, (), tool, n_out, False)
        tool = None  # the call does not fit the cap: a cut-off text instead
    n_out = answer_tokens if cap is None else min(answer_tokens, cap)
    return Answer(rid, model, n_in, _words(n_out, seed), None, n_out, n_out < answer_tokens)


def embeddings(body: dict[str, Any]) -> tuple[list[Any], int]:
    """(data items, input tokens) of an embeddings request."""
    raw = body.get("input")
    inputs = raw if isinstance(raw, list) and raw and not isinstance(raw[0], int) else [raw]
    dims = body.get("dimensions")
    dims = dims if isinstance(dims, int) and 0 < dims <= 8192 else EMBEDDING_DIMENSIONS
    as_base64 = body.get("encoding_format") == "base64"
    data: list[Any] = []
    for i, item in enumerate(inputs):
        seed = _seed(item)
        vector = [((seed >> (j % 24)) % 1000 - 500) / 5000.0 for j in range(dims)]
        value: Any = (
            base64.b64encode(struct.pack(f"<{dims}f", *vector)).decode() if as_base64 else vector
        )
        data.append({"object": "embedding", "index": i, "embedding": value})
    return data, input_tokens("embeddings", body)


def chunks(words: tuple[str, ...], size: int) -> Iterator[str]:
    for i in range(0, len(words), size):
        yield "".join(words[i : i + size])
