"""Request bodies: the minimal validation each endpoint needs, and token estimates.

Bodies are not modelled with pydantic (that would cost on every request); only the
fields the gateway relies on are checked, with messages a client can act on.

Whatever the usage event will hold (model, end user, agent, task, metadata) is checked
here *before* the upstream is called: once the upstream has answered, the call must be
recorded, so nothing recorded may be refused by the journal or the database afterwards.
Texts with NUL characters or invalid UTF-8 are refused rather than silently altered;
lengths and the metadata's size and depth are capped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from tokenomy.config import Model
from tokenomy.errors import InvalidRequest
from tokenomy.metering.tokenizer import estimate_input
from tokenomy.providers.base import CHAT, COMPLETIONS, EMBEDDINGS, MESSAGES, RESPONSES

# Limits on what the usage event records (PostgreSQL and SQLite take far more; these keep
# one request from bloating the ledger, and each is refused with 400 when exceeded).
MAX_TEXT_CHARS = 256  # model, user / metadata.user_id, X-Tokenomy-Agent / -Task
MAX_METADATA_BYTES = 16 * 1024  # OpenAI ``metadata``, serialized as JSON
MAX_METADATA_DEPTH = 8
# Bodies are re-serialized for the upstream by orjson, which stops at 254 levels of
# nesting; translation between formats adds a few. No real request comes near this.
MAX_BODY_DEPTH = 128
_ORJSON_MAX_DEPTH = 254
# Client headers forwarded to an upstream as they are (aiohttp encodes them as UTF-8).
FORWARDED_HEADERS = ("anthropic-version", "anthropic-beta")


def recorded_text(value: str, param: str) -> str:
    """``value`` if the ledger can store it as it is; else ``InvalidRequest`` naming ``param``.

    Body strings come from ``orjson.loads``, which refuses invalid UTF-8 and lone
    surrogates, so only NUL (valid JSON, refused by PostgreSQL) and length remain.
    """
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidRequest(
            f"'{param}' must be at most {MAX_TEXT_CHARS} characters; got {len(value)}.",
            param=param,
        )
    if "\x00" in value:
        raise InvalidRequest(f"'{param}' must not contain NUL characters.", param=param)
    return value


def header_text(headers: Mapping[str, str], name: str, limit: int | None = MAX_TEXT_CHARS) -> str:
    """A header's value if it is valid UTF-8 (and at most ``limit`` characters), else 400.

    aiohttp decodes header bytes as UTF-8 with ``surrogateescape``: a value that was not
    UTF-8 arrives holding lone surrogates, which no encoder (orjson, psycopg, aiohttp's
    client) accepts.
    """
    value = headers.get(name)
    if not value:
        return ""
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidRequest(
                f"Header {name} is not valid UTF-8; send UTF-8 text.", param=name
            ) from None
    if limit is not None and len(value) > limit:
        raise InvalidRequest(
            f"Header {name} must be at most {limit} characters; got {len(value)}.", param=name
        )
    if "\x00" in value:
        raise InvalidRequest(f"Header {name} must not contain NUL characters.", param=name)
    return value


def check_body_depth(raw: bytes | bytearray, body: dict[str, Any]) -> None:
    """Refuse a body nested deeper than ``MAX_BODY_DEPTH`` (cheap for ordinary bodies).

    A body cannot be deeper than it has brackets, so counting them (C speed) clears most
    bodies at once. Otherwise orjson, which refuses more than 254 levels, serializes the
    body wrapped in 254 - MAX_BODY_DEPTH lists: it fails exactly when the body is deeper
    than MAX_BODY_DEPTH, at serialization speed instead of a walk in Python.
    """
    if raw.count(b"{") + raw.count(b"[") <= MAX_BODY_DEPTH:
        return
    wrapped: Any = body
    for _ in range(_ORJSON_MAX_DEPTH - MAX_BODY_DEPTH):
        wrapped = [wrapped]
    try:
        orjson.dumps(wrapped)
    except orjson.JSONEncodeError:
        raise InvalidRequest(
            f"Request body is nested more than {MAX_BODY_DEPTH} levels deep."
        ) from None


def check_metadata(meta: dict[str, Any]) -> dict[str, Any]:
    """OpenAI ``metadata`` as the event will store it: serializable, small and shallow."""
    try:
        size = len(orjson.dumps(meta))
    except orjson.JSONEncodeError:
        size = -1
    if size > MAX_METADATA_BYTES:
        raise InvalidRequest(
            f"'metadata' must be at most {MAX_METADATA_BYTES} bytes as JSON; got {size}.",
            param="metadata",
        )
    # Size first: the walk then visits at most a few thousand values.
    if size < 0 or _too_deep(meta, MAX_METADATA_DEPTH):
        raise InvalidRequest(
            f"'metadata' is nested too deeply: at most {MAX_METADATA_DEPTH} levels.",
            param="metadata",
        )
    return meta


def _too_deep(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > limit:
            return True
        children = v.values() if isinstance(v, dict) else v
        stack.extend((c, depth + 1) for c in children if isinstance(c, (dict, list)))
    return False


def validate_body(endpoint: str, body: dict[str, Any]) -> str:
    """Check the fields the gateway needs; return the requested model."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model")
    recorded_text(model, "model")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean.", param="stream")
    if stream and endpoint == EMBEDDINGS:
        raise InvalidRequest("Embeddings cannot be streamed.", param="stream")
    if endpoint in (CHAT, MESSAGES):
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise InvalidRequest(
                "'messages' is required and must be a non-empty array.", param="messages"
            )
        for i, m in enumerate(messages):
            if not isinstance(m, dict) or not isinstance(m.get("role"), str):
                raise InvalidRequest(
                    f"messages[{i}] must be an object with a 'role'.", param=f"messages[{i}]"
                )
    if endpoint == MESSAGES:
        mt = body.get("max_tokens")
        if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
            raise InvalidRequest(
                "'max_tokens' is required and must be a positive integer.", param="max_tokens"
            )
    if endpoint == COMPLETIONS and "prompt" not in body:
        raise InvalidRequest("'prompt' is required.", param="prompt")
    if endpoint == EMBEDDINGS and "input" not in body:
        raise InvalidRequest("'input' is required.", param="input")
    if endpoint == RESPONSES and "input" not in body and "previous_response_id" not in body:
        raise InvalidRequest("'input' is required.", param="input")
    for name in ("max_tokens", "max_completion_tokens", "max_output_tokens", "n"):
        v = body.get(name)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            raise InvalidRequest(f"'{name}' must be a positive integer.", param=name)
    return model


def response_text(endpoint: str, data: dict[str, Any]) -> str:
    """All generated text of a non-streamed response (for counting when usage is missing)."""
    parts: list[str] = []
    if endpoint == MESSAGES:
        for block in data.get("content") or []:
            if isinstance(block, dict):
                if isinstance(block.get("text"), str):
                    parts.append(block["text"])
                elif block.get("type") == "tool_use":
                    parts.append(str(block.get("input")))
    elif endpoint == RESPONSES:
        for item in data.get("output") or []:
            if not isinstance(item, dict):
                continue
            for c in item.get("content") or []:
                if isinstance(c, dict) and isinstance(c.get("text"), str):
                    parts.append(c["text"])
            if isinstance(item.get("arguments"), str):
                parts.append(item["arguments"])
    else:
        for choice in data.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            if isinstance(choice.get("text"), str):
                parts.append(choice["text"])
            msg = choice.get("message")
            if isinstance(msg, dict):
                if isinstance(msg.get("content"), str):
                    parts.append(msg["content"])
                for tc in msg.get("tool_calls") or []:
                    fn = tc.get("function") if isinstance(tc, dict) else None
                    if isinstance(fn, dict):
                        parts.append(str(fn.get("name", "")) + str(fn.get("arguments", "")))
    return "".join(parts)


# When a hard budget applies and the client sets no output cap, the gateway sets this one
# upstream, so that the reservation really is the worst case.
DEFAULT_OUTPUT_CAP = 16_384
# o200k counts differ from other vendors' tokenizers; reserve with a margin.
_INPUT_MARGIN_NUM, _INPUT_MARGIN_DEN, _INPUT_MARGIN_ADD = 5, 4, 64
_SMALL_BODY_BYTES = 2_048
_INLINE_COUNT_BYTES = 32_768


def worst_case_input(
    endpoint: str, body: dict[str, Any], body_bytes: int, count_long: bool = False
) -> int | None:
    """Input tokens to reserve for; None when the prompt is long enough to count in a thread.

    Byte-level BPE tokenizers (OpenAI's, Anthropic's, Llama's) never make more tokens than
    the text has bytes, and the JSON body holds more bytes than its text plus per-message
    overheads: for small bodies its size is a strict bound that costs nothing to compute.
    Larger bodies are counted offline, with a margin for other vendors' tokenizers.
    """
    if body_bytes <= _SMALL_BODY_BYTES:
        return body_bytes
    if body_bytes > _INLINE_COUNT_BYTES and not count_long:
        return None
    counted = estimate_input(endpoint, body)
    bound = -(-counted * _INPUT_MARGIN_NUM // _INPUT_MARGIN_DEN) + _INPUT_MARGIN_ADD
    return min(bound, body_bytes)


_CAP_FIELDS = {
    CHAT: ("max_completion_tokens", "max_tokens"),
    COMPLETIONS: ("max_tokens",),
    RESPONSES: ("max_output_tokens",),
    MESSAGES: ("max_tokens",),
}


def output_cap(endpoint: str, body: dict[str, Any]) -> int | None:
    """The most output the request allows over all its choices, if it sets a cap."""
    if endpoint == EMBEDDINGS:
        return 0
    for name in _CAP_FIELDS[endpoint]:
        cap = body.get(name)
        if isinstance(cap, int):
            break
    else:
        return None
    n = body.get("n") if endpoint in (CHAT, COMPLETIONS) else 1
    return int(cap) * (n if isinstance(n, int) and n > 0 else 1)


def cap_output(endpoint: str, body: dict[str, Any], model: Model, upstream_url: str) -> int:
    """Most output the request can produce (x ``n`` choices); sets a cap when none is given."""
    cap = output_cap(endpoint, body)
    if cap is not None:
        return cap
    field = _CAP_FIELDS[endpoint][-1]
    if endpoint == CHAT and "api.openai.com" in upstream_url:
        field = "max_completion_tokens"  # OpenAI's reasoning models refuse max_tokens
    body[field] = model.max_output_tokens or DEFAULT_OUTPUT_CAP
    return output_cap(endpoint, body) or 0
