"""Offline token counting: the fallback when an upstream reports no usage.

Counts use OpenAI's public ``o200k_base`` vocabulary, shipped inside this package
(``data/o200k_base.tiktoken.gz``) and loaded into :mod:`tiktoken` directly, so counting
never touches the network or tiktoken's download cache (air-gapped sites work, and so
does this sandbox). The vocabulary is loaded lazily on first use (≈0.5 s, once per
process) so gateway start-up does not pay for it; call :func:`warm_up` from a
background thread to take that cost off the first request.

Every number produced here is an *estimate* and must be flagged as such on the usage
event. For OpenAI chat models the message overheads follow OpenAI's cookbook ("How to
count tokens with tiktoken"); for Anthropic models o200k is only an approximation of
Claude's (unpublished) tokenizer.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import threading
from collections.abc import Callable
from importlib import resources
from typing import TYPE_CHECKING, Any

import orjson

from tokenomy.events import Usage

if TYPE_CHECKING:
    import tiktoken

__all__ = [
    "O200K_SHA256",
    "complete_usage",
    "count_text",
    "encoding",
    "estimate_chat_input",
    "estimate_completions_input",
    "estimate_embeddings_input",
    "estimate_messages_input",
    "estimate_responses_input",
    "warm_up",
]

#: sha256 of the *decompressed* o200k_base.tiktoken, as pinned by tiktoken_ext/openai_public.
O200K_SHA256 = "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d"
_DATA_FILE = "o200k_base.tiktoken.gz"

# The split pattern and special tokens of o200k_base, copied from tiktoken_ext/openai_public.py.
_O200K_PAT_STR = "|".join(
    [
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
        r"""\p{N}{1,3}""",
        r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
        r"""\s*[\r\n]+""",
        r"""\s+(?!\S)""",
        r"""\s+""",
    ]
)
_O200K_SPECIAL = {"<|endoftext|>": 199999, "<|endofprompt|>": 200018}

# OpenAI chat overheads (cookbook, gpt-4o family): every message is wrapped in
# <|start|>{role/name}\n{content}<|end|>\n, every reply primed with <|start|>assistant<|message|>.
_PER_MESSAGE = 3
_PER_NAME = 1
_REPLY_PRIMING = 3
# Tool definitions as the cookbook counts them for gpt-4o / gpt-4o-mini.
_FUNC_INIT, _PROP_INIT, _PROP_KEY, _ENUM_INIT, _ENUM_ITEM, _FUNC_END = 7, 3, 3, -3, 3, 12
# Per tool call in an assistant message (id/type framing); not documented, measured ~3.
_PER_TOOL_CALL = 3
# Images: OpenAI's low-detail cost, and high-detail at 1024x1024 (85 + 4 tiles x 170)
# since the real size is unknown without decoding the image.
_IMAGE_LOW, _IMAGE_HIGH = 85, 765
# Anthropic: tokens ≈ width x height / 750, capped around 1,600 for a 1.15 MP image.
_ANTHROPIC_IMAGE = 1600
# Anthropic's documented tool-use system prompt (Claude 4 family): auto/none vs any/tool.
_ANTHROPIC_TOOLS_AUTO, _ANTHROPIC_TOOLS_FORCED = 346, 313

_lock = threading.Lock()
_encoding: tiktoken.Encoding | None = None


def _read_vocabulary() -> bytes:
    """The compressed vocabulary shipped in the package (works from a wheel or a zip)."""
    return resources.files("tokenomy.metering").joinpath("data", _DATA_FILE).read_bytes()


def _load() -> tiktoken.Encoding:
    import tiktoken  # deferred: keeps tiktoken's import off gateway start-up

    raw = gzip.decompress(_read_vocabulary())
    digest = hashlib.sha256(raw).hexdigest()
    if digest != O200K_SHA256:
        raise RuntimeError(f"{_DATA_FILE} is corrupt: sha256 {digest} != {O200K_SHA256}")
    b64decode = base64.b64decode
    ranks = {b64decode(tok): int(rank) for tok, rank in (line.split() for line in raw.splitlines())}
    return tiktoken.Encoding(
        name="o200k_base",
        pat_str=_O200K_PAT_STR,
        mergeable_ranks=ranks,
        special_tokens=_O200K_SPECIAL,
    )


def encoding() -> tiktoken.Encoding:
    """The shipped o200k_base encoding, loaded on first call (thread-safe, once)."""
    enc = _encoding
    if enc is None:
        with _lock:
            enc = _encoding
            if enc is None:
                enc = _set_encoding(_load())
    return enc


def _set_encoding(enc: tiktoken.Encoding) -> tiktoken.Encoding:
    global _encoding
    _encoding = enc
    return enc


def warm_up() -> None:
    """Load the vocabulary now (e.g. ``await asyncio.to_thread(warm_up)`` after start-up)."""
    encoding()


def count_text(text: str) -> int:
    """Number of o200k_base tokens in ``text`` (special-token text counts as plain text)."""
    if not text:
        return 0
    return len(encoding().encode_ordinary(text))


def _json(value: Any) -> str:
    return orjson.dumps(value).decode() if not isinstance(value, str) else value


# --------------------------------------------------------------------------- OpenAI chat


def _openai_content(content: Any) -> int:
    """Tokens of a chat/Responses ``content`` value: a string or a list of parts."""
    if isinstance(content, str):
        return count_text(content)
    if not isinstance(content, list):
        return 0 if content is None else count_text(_json(content))
    n = 0
    for part in content:
        if isinstance(part, str):
            n += count_text(part)
            continue
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if kind in ("image_url", "input_image"):
            image = part.get("image_url")
            detail = (image.get("detail") if isinstance(image, dict) else None) or part.get(
                "detail"
            )
            n += _IMAGE_LOW if detail == "low" else _IMAGE_HIGH
        elif "text" in part:  # text, input_text, output_text
            n += count_text(str(part.get("text") or ""))
        elif "refusal" in part:
            n += count_text(str(part.get("refusal") or ""))
        # input_audio / file parts: size unknown without decoding; not invented.
    return n


def _tool_definitions(tools: list[Any]) -> int:
    """Tool/function definitions, counted the way OpenAI's cookbook does for gpt-4o."""
    n = 0
    for tool in tools:
        if not isinstance(tool, dict):
            continue
        # Chat wraps as {"type": "function", "function": {...}}; Responses and the legacy
        # ``functions`` parameter put name/description/parameters at the top level.
        wrapped = tool.get("function")
        fn: dict[str, Any] = wrapped if isinstance(wrapped, dict) else tool
        name = str(fn.get("name") or tool.get("type") or "")
        desc = str(fn.get("description") or "").removesuffix(".")
        n += _FUNC_INIT + count_text(f"{name}:{desc}")
        params = fn.get("parameters")
        props = params.get("properties") if isinstance(params, dict) else None
        if isinstance(props, dict) and props:
            n += _PROP_INIT
            for key, prop in props.items():
                n += _PROP_KEY
                prop = prop if isinstance(prop, dict) else {}
                enum = prop.get("enum")
                if isinstance(enum, list):
                    n += _ENUM_INIT
                    for item in enum:
                        n += _ENUM_ITEM + count_text(str(item))
                ptype = prop.get("type")
                ptype = ptype if isinstance(ptype, str) else _json(ptype)
                pdesc = str(prop.get("description") or "").removesuffix(".")
                n += count_text(f"{key}:{ptype}:{pdesc}")
                nested = {k: v for k, v in prop.items() if k in ("properties", "items", "anyOf")}
                if nested:  # the cookbook ignores nested schemas; count them as JSON
                    n += count_text(_json(nested))
    return n + _FUNC_END if n else 0


def estimate_chat_input(body: dict[str, Any]) -> int:
    """Estimate ``prompt_tokens`` of an OpenAI Chat Completions request body.

    Counts every message's role, content (text parts; images at OpenAI's low/high
    detail rates), ``name`` and assistant ``tool_calls``/``function_call``, plus the
    per-message and reply-priming overheads OpenAI documents, plus ``tools`` /
    ``functions`` definitions.

    Args:
        body: The parsed request body (``messages``, optional ``tools``/``functions``).

    Returns:
        Estimated input tokens (never negative).
    """
    n = 0
    for msg in body.get("messages") or ():
        if not isinstance(msg, dict):
            continue
        n += _PER_MESSAGE + count_text(str(msg.get("role") or ""))
        n += _openai_content(msg.get("content"))
        name = msg.get("name")
        if name:
            n += _PER_NAME + count_text(str(name))
        for call in msg.get("tool_calls") or ():
            fn = call.get("function") if isinstance(call, dict) else None
            if isinstance(fn, dict):
                n += _PER_TOOL_CALL + count_text(str(fn.get("name") or ""))
                n += count_text(_json(fn.get("arguments") or ""))
        fn = msg.get("function_call")
        if isinstance(fn, dict):
            n += count_text(str(fn.get("name") or ""))
            n += count_text(_json(fn.get("arguments") or ""))
    tools = body.get("tools") or body.get("functions")
    if isinstance(tools, list):
        n += _tool_definitions(tools)
    return n + _REPLY_PRIMING


# ----------------------------------------------------------- completions, embeddings, responses


def _prompt_value(value: Any) -> int:
    """``prompt`` / ``input`` of completions and embeddings: text, texts, or token ids."""
    if isinstance(value, str):
        return count_text(value)
    if isinstance(value, list):
        if value and all(type(v) is int for v in value):
            return len(value)  # already tokenised
        return sum(_prompt_value(v) for v in value)
    return 0


def _responses_input(value: Any) -> int:
    if isinstance(value, str):
        return _PER_MESSAGE + count_text(value)
    if not isinstance(value, list):
        return 0
    n = 0
    for item in value:
        if isinstance(item, str):
            n += count_text(item)
            continue
        if not isinstance(item, dict):
            continue
        kind = item.get("type")
        if kind in (None, "message"):
            n += _PER_MESSAGE + count_text(str(item.get("role") or ""))
            n += _openai_content(item.get("content"))
        elif kind in ("function_call", "custom_tool_call"):
            n += _PER_TOOL_CALL + count_text(str(item.get("name") or ""))
            n += count_text(_json(item.get("arguments") or item.get("input") or ""))
        elif kind in ("function_call_output", "custom_tool_call_output"):
            n += _PER_MESSAGE + _openai_content(item.get("output"))
        elif kind == "reasoning":
            for s in item.get("summary") or ():
                if isinstance(s, dict):
                    n += count_text(str(s.get("text") or ""))
        else:
            n += _openai_content(item.get("content"))
    return n


def estimate_completions_input(body: dict[str, Any]) -> int:
    """Estimate input tokens of a (legacy) Completions request: its ``prompt``.

    Token-id arrays count exactly; there is no message overhead.
    """
    return _prompt_value(body.get("prompt"))


def estimate_embeddings_input(body: dict[str, Any]) -> int:
    """Estimate input tokens of an Embeddings request: its ``input``.

    Token-id arrays count exactly; there is no message overhead.
    """
    return _prompt_value(body.get("input"))


def estimate_responses_input(body: dict[str, Any]) -> int:
    """Estimate input tokens of a Responses request (counted like chat).

    Counts ``input`` (a string or message / tool-call items), ``instructions`` and
    ``tools`` definitions, plus the reply-priming overhead.
    """
    n = _responses_input(body.get("input"))
    instructions = body.get("instructions")
    if isinstance(instructions, str) and instructions:
        n += _PER_MESSAGE + count_text(instructions)
    elif isinstance(instructions, list):
        n += _responses_input(instructions)
    tools = body.get("tools")
    if isinstance(tools, list):
        n += _tool_definitions(tools)
    return n + _REPLY_PRIMING


# ------------------------------------------------------------------------------ Anthropic


def _anthropic_content(content: Any, *, keep_thinking: bool) -> int:
    if isinstance(content, str):
        return count_text(content)
    if not isinstance(content, list):
        return 0
    n = 0
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text":
            n += count_text(str(block.get("text") or ""))
        elif kind == "tool_use" or kind == "server_tool_use":
            n += count_text(str(block.get("name") or "")) + count_text(_json(block.get("input")))
        elif kind == "tool_result":
            n += _anthropic_content(block.get("content"), keep_thinking=False)
        elif kind == "image":
            n += _ANTHROPIC_IMAGE
        elif kind == "document":
            source = block.get("source")
            if isinstance(source, dict) and source.get("type") == "text":
                n += count_text(str(source.get("data") or ""))
            elif isinstance(source, dict) and source.get("type") == "content":
                n += _anthropic_content(source.get("content"), keep_thinking=False)
            # base64 PDFs: page count unknown without parsing; not invented.
        elif kind == "thinking" and keep_thinking:
            n += count_text(str(block.get("thinking") or ""))
        # Earlier turns' thinking blocks are stripped by the API and not billed as input.
    return n


def _is_tool_results(msg: dict[str, Any]) -> bool:
    content = msg.get("content")
    return isinstance(content, list) and any(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


def estimate_messages_input(body: dict[str, Any]) -> int:
    """Estimate ``input_tokens`` (all input) of an Anthropic Messages request body.

    Counts ``system`` (string or text blocks), every message's content blocks (text,
    tool_use, tool_result, text documents; images at ~1,600 tokens; thinking only of an
    assistant turn still in progress, as the API drops earlier turns' thinking),
    ``tools`` (name, description, input schema) plus Anthropic's documented tool-use
    system prompt. Uses o200k, an approximation of Claude's tokenizer.

    Args:
        body: The parsed request body.

    Returns:
        Estimated input tokens, cache reads/writes included.
    """
    n = 0
    system = body.get("system")
    if system:
        n += _PER_MESSAGE + _anthropic_content(system, keep_thinking=False)
    messages = [m for m in body.get("messages") or () if isinstance(m, dict)]
    last_assistant = max(
        (i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=-1
    )
    # Its thinking stays in context only while the turn continues: it is the prefill
    # (last message) or followed by nothing but tool results.
    if not all(_is_tool_results(m) for m in messages[last_assistant + 1 :]):
        last_assistant = -1
    for i, msg in enumerate(messages):
        keep = i == last_assistant
        n += _PER_MESSAGE + _anthropic_content(msg.get("content"), keep_thinking=keep)
    tools = body.get("tools")
    if isinstance(tools, list) and tools:
        for tool in tools:
            if not isinstance(tool, dict):
                continue
            n += count_text(str(tool.get("name") or tool.get("type") or ""))
            n += count_text(str(tool.get("description") or ""))
            schema = tool.get("input_schema")
            if schema is not None:
                n += count_text(_json(schema))
        choice = body.get("tool_choice")
        forced = isinstance(choice, dict) and choice.get("type") in ("any", "tool")
        n += _ANTHROPIC_TOOLS_FORCED if forced else _ANTHROPIC_TOOLS_AUTO
    return n + _REPLY_PRIMING


def complete_usage(
    reported: Usage | None,
    *,
    complete: bool,
    estimate_input_tokens: Callable[[], int],
    output_text: str,
    count_output: Callable[[str], int] = count_text,
) -> tuple[Usage, bool]:
    """Fill what the upstream did not report; return ``(usage, estimated)``.

    * Reported and complete: returned as is, ``estimated`` False.
    * Nothing reported: input from ``estimate_input_tokens()``, output counted from
      ``output_text``.
    * Partially reported (an Anthropic stream cut after ``message_start``, a vLLM stream
      cut mid-way): the reported input side is kept (it is exact); output becomes the
      larger of the reported partial count and the count of the text received.

    Args:
        reported: A meter's ``usage()`` (or a non-stream response's usage).
        complete: A meter's ``usage_complete``.
        estimate_input_tokens: Called only if input must be estimated (it tokenises
            the request, so it is not paid for when not needed).
        output_text: A meter's ``output_text()``.
        count_output: Counts ``output_text`` (default: o200k; a local deployment passes
            its model's own tokenizer, see ``tokenomy.local.metering``).
    """
    if reported is not None and complete:
        return reported, False
    counted_output = count_output(output_text)
    if reported is None or reported.input_tokens == 0:
        usage = Usage(input_tokens=estimate_input_tokens(), output_tokens=counted_output)
        if reported is not None:
            usage.output_tokens = max(reported.output_tokens, counted_output)
            usage.reasoning_tokens = min(reported.reasoning_tokens, usage.output_tokens)
        return usage, True
    usage = Usage(
        input_tokens=reported.input_tokens,
        cached_tokens=reported.cached_tokens,
        cache_write_tokens=reported.cache_write_tokens,
        cache_write_1h_tokens=reported.cache_write_1h_tokens,
        output_tokens=max(reported.output_tokens, counted_output),
        reasoning_tokens=reported.reasoning_tokens,
        audio_input_tokens=reported.audio_input_tokens,
        audio_output_tokens=reported.audio_output_tokens,
    )
    return usage, True
