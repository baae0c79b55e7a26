"""Vocabulary shared by both translation directions: reason maps, usage maps, JSON helpers.

Everything here works on already-parsed JSON values (dicts, lists, str, int) and never on
models of whole bodies. Nothing here does I/O except reading the clock or drawing a random
id when the caller did not supply one.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

import orjson

from tokenomy.errors import InvalidRequest, UpstreamError
from tokenomy.redact import scrub

JSON = dict[str, Any]
"""A parsed JSON object, as handed over by the gateway."""

# Anthropic ``stop_reason`` → OpenAI ``finish_reason``. ``pause_turn`` (a server-tool loop
# paused) and unknown future reasons have no OpenAI word; "stop" is what a client treats
# as "the turn is over, look at the content", which is the honest reading.
STOP_TO_FINISH: dict[str, str] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}

# OpenAI ``finish_reason`` → Anthropic ``stop_reason``. OpenAI does not say whether "stop"
# was a natural end or a stop sequence (nor which one), so it is always ``end_turn``.
FINISH_TO_STOP: dict[str, str] = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}

# Anthropic's error ``type`` → the HTTP status Anthropic uses for it, so an error that
# arrives inside a 200 stream still carries a meaningful status on ``UpstreamError``.
_ANTHROPIC_ERROR_STATUS: dict[str, int] = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def now() -> int:
    """Unix time in whole seconds, for OpenAI's ``created`` field."""
    return int(time.time())


def random_id() -> str:
    """A random id body for responses whose upstream sent none."""
    return uuid.uuid4().hex


_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def tool_id(raw: Any) -> str:
    """A tool-call id Anthropic accepts (``^[a-zA-Z0-9_-]+$``).

    OpenAI-compatible servers mint ids such as ``functions.get_weather:0``; Anthropic
    rejects those. The mapping is deterministic, so the id on a ``tool_use`` and on the
    ``tool_result`` that answers it stay equal after translation.
    """
    text = raw if isinstance(raw, str) else ""
    return _UNSAFE_ID_CHARS.sub("_", text) or f"toolu_{random_id()}"


def dumps(value: Any) -> str:
    """Compact JSON text (OpenAI ``arguments`` strings are compact)."""
    return orjson.dumps(value).decode()


def parse_arguments(arguments: Any) -> JSON:
    """Turn an OpenAI tool-call ``arguments`` string into an Anthropic ``input`` object.

    Anthropic requires ``input`` to be an object. Models do emit invalid JSON now and then,
    and raising would make a whole conversation unusable, so text that is not a JSON
    object is kept verbatim as ``{"_raw": text}``: nothing is lost and the tool (or the
    model, on the next turn) sees exactly what was produced. Empty or missing arguments
    mean "no arguments" and become ``{}``.
    """
    if arguments is None:
        return {}
    if isinstance(arguments, dict):
        # Some OpenAI-compatible servers send an object instead of a string.
        return arguments
    if not isinstance(arguments, str):
        return {"_raw": dumps(arguments)}
    if not arguments.strip():
        return {}
    try:
        parsed = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return parsed if isinstance(parsed, dict) else {"_raw": arguments}


def count(value: Any) -> int:
    """A non-negative token count from a JSON value; ``null``, bools and garbage are 0."""
    if type(value) is int:
        return value if value > 0 else 0
    if type(value) is float and 0 < value < float("inf"):
        return int(value)
    return 0


def obj(value: Any) -> JSON:
    """``value`` if it is a JSON object, else an empty one."""
    return value if isinstance(value, dict) else {}


def anthropic_usage_to_openai(usage: Any) -> JSON:
    """Anthropic ``usage`` → OpenAI ``usage``.

    Anthropic's ``input_tokens`` excludes cache reads and writes; OpenAI's
    ``prompt_tokens`` includes both, with reads in ``prompt_tokens_details.cached_tokens``
    and writes in ``prompt_tokens_details.cache_write_tokens``. Thinking tokens become
    ``completion_tokens_details.reasoning_tokens`` when Anthropic reports them.
    """
    u = obj(usage)
    cache_read = count(u.get("cache_read_input_tokens"))
    cache_write = count(u.get("cache_creation_input_tokens"))
    prompt = count(u.get("input_tokens")) + cache_read + cache_write
    completion = count(u.get("output_tokens"))
    out: JSON = {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cache_read, "cache_write_tokens": cache_write},
    }
    details = u.get("output_tokens_details")
    if isinstance(details, dict) and details.get("thinking_tokens") is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": count(details["thinking_tokens"])}
    return out


def openai_usage_to_anthropic(usage: Any) -> JSON:
    """OpenAI ``usage`` → Anthropic ``usage``.

    ``input_tokens = prompt_tokens - cached_tokens - cache_write_tokens`` (never below 0),
    ``cache_read_input_tokens = cached_tokens``, ``cache_creation_input_tokens =
    cache_write_tokens`` (0 when the upstream does not report writes, as most do not),
    ``output_tokens = completion_tokens``; reasoning tokens become
    ``output_tokens_details.thinking_tokens`` when reported.
    """
    u = obj(usage)
    prompt = count(u.get("prompt_tokens"))
    in_details = obj(u.get("prompt_tokens_details"))
    cached = min(count(in_details.get("cached_tokens")), prompt)
    cache_write = min(count(in_details.get("cache_write_tokens")), prompt - cached)
    out: JSON = {
        "input_tokens": prompt - cached - cache_write,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cached,
        "output_tokens": count(u.get("completion_tokens")),
    }
    out_details = u.get("completion_tokens_details")
    if isinstance(out_details, dict) and out_details.get("reasoning_tokens") is not None:
        out["output_tokens_details"] = {"thinking_tokens": count(out_details["reasoning_tokens"])}
    return out


def anthropic_stream_error(data: Any) -> UpstreamError:
    """The error to raise for an Anthropic ``error`` stream event."""
    err = obj(obj(data).get("error"))
    kind = str(err.get("type") or "api_error")
    message = scrub(str(err.get("message") or "upstream stream failed"))  # echoed keys
    return UpstreamError(
        f"upstream error during stream ({kind}): {message}",
        upstream_status=_ANTHROPIC_ERROR_STATUS.get(kind),
        upstream_body=data,
    )


def openai_stream_error(chunk: JSON) -> UpstreamError:
    """The error to raise for an OpenAI-format stream chunk that carries ``error``."""
    raw = chunk.get("error")
    err = obj(raw)
    message = scrub(str(err.get("message") or raw or "upstream stream failed"))  # echoed keys
    kind = err.get("type") or err.get("code")
    prefix = f"upstream error during stream ({kind})" if kind else "upstream error during stream"
    return UpstreamError(f"{prefix}: {message}", upstream_body=chunk)


def require_list(body: JSON, key: str) -> list[Any]:
    """``body[key]`` as a non-empty list, or :class:`InvalidRequest` naming ``key``."""
    value = body.get(key)
    if not isinstance(value, list) or not value:
        raise InvalidRequest(f"'{key}' must be a non-empty array", param=key)
    return value


def optional_number(body: JSON, key: str) -> float | int | None:
    """``body[key]`` if it is a number, ``None`` if absent or null, else InvalidRequest."""
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"'{key}' must be a number", param=key)
    return value


def optional_int(body: JSON, key: str) -> int | None:
    """``body[key]`` if it is an integer, ``None`` if absent or null, else InvalidRequest."""
    value = body.get(key)
    if value is None:
        return None
    if type(value) is not int:
        raise InvalidRequest(f"'{key}' must be an integer", param=key)
    return value


def finish_to_stop(finish: str | None, *, has_tools: bool, refused: bool) -> str:
    """Anthropic ``stop_reason`` for an OpenAI ``finish_reason`` and what was produced."""
    if refused:
        return "refusal"
    stop = FINISH_TO_STOP.get(finish, "end_turn") if finish else "end_turn"
    # Some compatible servers say "stop" after a tool call; Anthropic clients only run
    # tools on stop_reason "tool_use", so trust the content over the label.
    if stop == "end_turn" and has_tools:
        return "tool_use"
    return stop


def anthropic_usage_to_responses(usage: Any) -> JSON:
    """Anthropic ``usage`` → OpenAI Responses ``usage``.

    ``input_tokens = input + cache_read + cache_creation`` with reads in
    ``input_tokens_details.cached_tokens`` and writes in ``cache_write_tokens``;
    thinking tokens become ``output_tokens_details.reasoning_tokens`` (0 when unreported).
    """
    u = obj(usage)
    cache_read = count(u.get("cache_read_input_tokens"))
    cache_write = count(u.get("cache_creation_input_tokens"))
    prompt = count(u.get("input_tokens")) + cache_read + cache_write
    output = count(u.get("output_tokens"))
    thinking = count(obj(u.get("output_tokens_details")).get("thinking_tokens"))
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": cache_read, "cache_write_tokens": cache_write},
        "output_tokens": output,
        "output_tokens_details": {"reasoning_tokens": thinking},
        "total_tokens": prompt + output,
    }


_ANTHROPIC_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def data_url(url: str, param: str) -> tuple[str, str]:
    """(media type, base64 payload) of a base64 ``data:`` URL, else InvalidRequest."""
    header, sep, payload = url[5:].partition(",")
    media_type, *options = header.split(";")
    if not url.startswith("data:") or not sep or "base64" not in options:
        raise InvalidRequest(f"'{param}': data URLs must be base64-encoded", param=param)
    return media_type.strip().lower(), payload


def image_source(url: str, param: str) -> JSON:
    """An Anthropic image ``source`` for an OpenAI image URL (data URL → base64, http(s) → url)."""
    if url.startswith("data:"):
        media_type, data = data_url(url, param)
        if media_type == "image/jpg":
            media_type = "image/jpeg"
        if media_type not in _ANTHROPIC_IMAGE_TYPES:
            raise InvalidRequest(
                f"image type {media_type!r} is not supported by this model's upstream "
                "(jpeg, png, gif and webp are)",
                param=param,
            )
        return {"type": "base64", "media_type": media_type, "data": data}
    if url.startswith(("https://", "http://")):
        return {"type": "url", "url": url}
    raise InvalidRequest(f"'{param}': image URL must be http(s) or a data URL", param=param)
