"""An OpenAI Chat Completions client in front of an Anthropic Messages upstream.

* :func:`chat_request_to_messages` - the client's Chat Completions request becomes a
  Messages request;
* :func:`messages_response_to_chat` - the upstream's Message becomes a ChatCompletion.

The stream leg is :class:`tokenomy.providers.translate_streams.MessagesToChatStream`.
Both work on parsed JSON dicts and return new dicts; inputs are never mutated.
"""

from __future__ import annotations

from typing import Any

from tokenomy.errors import InvalidRequest
from tokenomy.providers._translate_common import (
    JSON,
    STOP_TO_FINISH,
    anthropic_usage_to_openai,
    data_url,
    dumps,
    image_source,
    now,
    obj,
    optional_int,
    optional_number,
    parse_arguments,
    random_id,
    require_list,
    tool_id,
)

__all__ = ["chat_request_to_messages", "messages_response_to_chat"]

_EMPTY_SCHEMA: JSON = {"type": "object", "properties": {}}


# --------------------------------------------------------------------------- request


def chat_request_to_messages(body: JSON, upstream_model: str, default_max_tokens: int) -> JSON:
    """Translate an OpenAI Chat Completions request into an Anthropic Messages request.

    ``system`` and ``developer`` messages, wherever they appear, are hoisted in order into
    ``system``; the other messages become alternating ``user``/``assistant`` turns
    (consecutive same-role turns merged, ``tool`` messages turned into ``tool_result``
    blocks of a user turn). See :mod:`tokenomy.providers.translate` for the full field map.

    Args:
        body: The parsed client request.
        upstream_model: The model name the upstream deployment expects.
        default_max_tokens: ``max_tokens`` to send when the client set neither
            ``max_completion_tokens`` nor ``max_tokens`` (Anthropic requires one).

    Returns:
        A new Messages request body.

    Raises:
        InvalidRequest: the body is malformed, or asks for something an Anthropic upstream
            cannot do (``n`` > 1, ``logprobs``, audio, the deprecated ``functions`` API,
            custom tools, web search, moderation, OpenAI file ids, unsupported image
            types). ``param`` names the offending field.
    """
    _reject_untranslatable(body)
    system, turns = _convert_messages(require_list(body, "messages"))
    if not turns:
        raise InvalidRequest(
            "at least one user, assistant or tool message is required", param="messages"
        )

    max_tokens = optional_int(body, "max_completion_tokens")
    if max_tokens is None:
        max_tokens = optional_int(body, "max_tokens")
    out: JSON = {
        "model": upstream_model,
        "messages": turns,
        "max_tokens": default_max_tokens if max_tokens is None else max_tokens,
    }
    if system:
        if len(system) == 1 and "cache_control" not in system[0]:
            out["system"] = system[0]["text"]
        else:
            out["system"] = system

    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        if stop:
            out["stop_sequences"] = list(stop)
    elif stop is not None:
        raise InvalidRequest("'stop' must be a string or an array of strings", param="stop")

    temperature = optional_number(body, "temperature")
    if temperature is not None:
        # OpenAI's range is 0-2, Anthropic's 0-1: clamp rather than scale, so the common
        # values 0 ... 1 keep their meaning.
        out["temperature"] = min(max(temperature, 0), 1)
    top_p = optional_number(body, "top_p")
    if top_p is not None and temperature is None:
        # Current Claude models reject temperature and top_p together; temperature wins.
        out["top_p"] = top_p

    _convert_tools(body, out)

    response_format = obj(body.get("response_format"))
    if response_format.get("type") == "json_schema":
        schema = obj(response_format.get("json_schema")).get("schema")
        if not isinstance(schema, dict):
            raise InvalidRequest(
                "'response_format.json_schema.schema' must be an object", param="response_format"
            )
        out["output_config"] = {"format": {"type": "json_schema", "schema": schema}}

    user = body.get("user") or body.get("safety_identifier")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    if body.get("stream") is True:
        out["stream"] = True
    return out


def _reject_untranslatable(body: JSON) -> None:
    """Raise for fields whose effect a client would miss in the response."""
    n = optional_int(body, "n")
    if n is not None and n != 1:
        raise InvalidRequest(
            "'n' other than 1 is not supported by this model's upstream (Anthropic Messages)",
            param="n",
        )
    if body.get("logprobs"):
        raise InvalidRequest(
            "'logprobs' is not supported by this model's upstream (Anthropic Messages)",
            param="logprobs",
        )
    if body.get("top_logprobs"):
        raise InvalidRequest(
            "'top_logprobs' is not supported by this model's upstream (Anthropic Messages)",
            param="top_logprobs",
        )
    modalities = body.get("modalities")
    if body.get("audio") is not None or (isinstance(modalities, list) and "audio" in modalities):
        raise InvalidRequest(
            "audio output is not supported by this model's upstream (Anthropic Messages)",
            param="audio" if body.get("audio") is not None else "modalities",
        )
    for key in ("functions", "function_call"):
        if body.get(key) is not None:
            raise InvalidRequest(
                f"the deprecated '{key}' parameter is not supported here; use 'tools'",
                param=key,
            )
    for key in ("web_search_options", "moderation"):
        if body.get(key) is not None:
            raise InvalidRequest(
                f"'{key}' is not supported by this model's upstream (Anthropic Messages)",
                param=key,
            )


def _convert_messages(messages: list[Any]) -> tuple[list[JSON], list[JSON]]:
    """(system text blocks, alternating user/assistant turns) from OpenAI messages."""
    system: list[JSON] = []
    turns: list[JSON] = []

    def append(role: str, blocks: list[JSON]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for i, msg in enumerate(messages):
        param = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise InvalidRequest(f"'{param}' must be an object", param=param)
        role = msg.get("role")
        content = msg.get("content")
        if role in ("system", "developer"):
            system.extend(_text_blocks(content, param))
        elif role == "user":
            append("user", _user_blocks(content, param))
        elif role == "assistant":
            append("assistant", _assistant_blocks(msg, param))
        elif role == "tool":
            call_id = msg.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise InvalidRequest(
                    f"'{param}.tool_call_id' is required", param=f"{param}.tool_call_id"
                )
            block: JSON = {"type": "tool_result", "tool_use_id": tool_id(call_id)}
            if isinstance(content, str):
                if content:
                    block["content"] = content
            else:
                parts = _text_blocks(content, param)
                if parts:
                    block["content"] = parts
            append("user", [block])
        elif role == "function":
            raise InvalidRequest(
                "'function' messages (deprecated functions API) are not supported here; "
                "use tool messages",
                param=f"{param}.role",
            )
        else:
            raise InvalidRequest(f"unknown message role {role!r}", param=f"{param}.role")
    return system, turns


def _cache_control(part: JSON) -> JSON | None:
    """The Anthropic ``cache_control`` a client marked on an OpenAI content part."""
    explicit = part.get("cache_control")
    if isinstance(explicit, dict):
        # Anthropic-style marker on an OpenAI part, as LiteLLM-era clients send it.
        return explicit
    breakpoint_ = part.get("prompt_cache_breakpoint")
    if isinstance(breakpoint_, dict):
        # OpenAI offers 30m / 12h, Anthropic 5m / 1h: map the long one to the long one.
        if breakpoint_.get("ttl") == "12h":
            return {"type": "ephemeral", "ttl": "1h"}
        return {"type": "ephemeral"}
    return None


def _with_cache(block: JSON, part: JSON) -> JSON:
    cache = _cache_control(part)
    if cache is not None:
        block["cache_control"] = cache
    return block


def _text_blocks(content: Any, param: str) -> list[JSON]:
    """Text-only content (system, developer, tool) as Anthropic text blocks."""
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequest(
            f"'{param}.content' must be a string or an array of text parts",
            param=f"{param}.content",
        )
    blocks: list[JSON] = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise InvalidRequest(
                f"'{param}.content[{j}]' must be a text part", param=f"{param}.content[{j}]"
            )
        text = part.get("text")
        if not isinstance(text, str):
            raise InvalidRequest(
                f"'{param}.content[{j}].text' must be a string",
                param=f"{param}.content[{j}].text",
            )
        if text:  # Anthropic rejects empty text blocks.
            blocks.append(_with_cache({"type": "text", "text": text}, part))
    return blocks


def _user_blocks(content: Any, param: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise InvalidRequest(
            f"'{param}.content' must be a string or an array of content parts",
            param=f"{param}.content",
        )
    blocks: list[JSON] = []
    for j, part in enumerate(content):
        p = f"{param}.content[{j}]"
        if not isinstance(part, dict):
            raise InvalidRequest(f"'{p}' must be an object", param=p)
        kind = part.get("type")
        if kind == "text":
            blocks.extend(_text_blocks([part], param))
        elif kind == "image_url":
            image = part.get("image_url")
            url = image.get("url") if isinstance(image, dict) else image
            if not isinstance(url, str):
                raise InvalidRequest(f"'{p}.image_url.url' is required", param=f"{p}.image_url")
            blocks.append(_with_cache({"type": "image", "source": image_source(url, p)}, part))
        elif kind == "file":
            blocks.append(_with_cache(_document(obj(part.get("file")), p), part))
        elif kind == "input_audio":
            raise InvalidRequest(
                "audio input is not supported by this model's upstream (Anthropic Messages)",
                param=p,
            )
        else:
            raise InvalidRequest(f"unsupported content part type {kind!r}", param=f"{p}.type")
    return blocks


def _document(file: JSON, param: str) -> JSON:
    data = file.get("file_data")
    if not isinstance(data, str):
        raise InvalidRequest(
            f"'{param}': OpenAI file ids cannot be resolved for this model's upstream; "
            "send the file inline as file_data",
            param=param,
        )
    if data.startswith("data:"):
        media_type, payload = data_url(data, param)
    else:
        media_type, payload = "application/pdf", data  # bare base64, as OpenAI accepts
    if media_type != "application/pdf":
        raise InvalidRequest(
            f"file type {media_type!r} is not supported by this model's upstream (PDF is)",
            param=param,
        )
    block: JSON = {
        "type": "document",
        "source": {"type": "base64", "media_type": "application/pdf", "data": payload},
    }
    if isinstance(file.get("filename"), str) and file["filename"]:
        block["title"] = file["filename"]
    return block


def _assistant_blocks(msg: JSON, param: str) -> list[JSON]:
    blocks: list[JSON] = []
    content = msg.get("content")
    if isinstance(content, str):
        if content:
            blocks.append({"type": "text", "text": content})
    elif isinstance(content, list):
        for j, part in enumerate(content):
            part = obj(part)
            kind = part.get("type")
            text = part.get("text") if kind == "text" else part.get("refusal")
            if kind not in ("text", "refusal") or not isinstance(text, str):
                raise InvalidRequest(
                    f"'{param}.content[{j}]' must be a text or refusal part",
                    param=f"{param}.content[{j}]",
                )
            if text:
                blocks.append(_with_cache({"type": "text", "text": text}, part))
    elif content is not None:
        raise InvalidRequest(
            f"'{param}.content' must be a string, an array or null", param=f"{param}.content"
        )
    if msg.get("function_call") is not None:
        raise InvalidRequest(
            "assistant 'function_call' (deprecated functions API) is not supported here; "
            "use tool_calls",
            param=f"{param}.function_call",
        )
    if msg.get("audio") is not None:
        raise InvalidRequest(
            "assistant audio is not supported by this model's upstream (Anthropic Messages)",
            param=f"{param}.audio",
        )
    calls = msg.get("tool_calls") or []
    if not isinstance(calls, list):
        raise InvalidRequest(f"'{param}.tool_calls' must be an array", param=f"{param}.tool_calls")
    for j, call in enumerate(calls):
        p = f"{param}.tool_calls[{j}]"
        call = obj(call)
        fn = call.get("function")
        if call.get("type", "function") != "function" or not isinstance(fn, dict):
            raise InvalidRequest(f"'{p}': only function tool calls are supported", param=p)
        if not isinstance(fn.get("name"), str) or not isinstance(call.get("id"), str):
            raise InvalidRequest(f"'{p}' needs an id and a function name", param=p)
        blocks.append(
            {
                "type": "tool_use",
                "id": tool_id(call["id"]),
                "name": fn["name"],
                "input": parse_arguments(fn.get("arguments")),
            }
        )
    return blocks


def _convert_tools(body: JSON, out: JSON) -> None:
    """Set ``tools`` and ``tool_choice`` on ``out``; no tools means no tool_choice."""
    tools = body.get("tools")
    if not tools:
        return
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array", param="tools")
    converted: list[JSON] = []
    for i, tool in enumerate(tools):
        tool = obj(tool)
        fn = tool.get("function")
        if tool.get("type") != "function" or not isinstance(fn, dict):
            raise InvalidRequest(
                f"'tools[{i}]': only function tools are supported by this model's upstream",
                param=f"tools[{i}]",
            )
        if not isinstance(fn.get("name"), str) or not fn["name"]:
            raise InvalidRequest(
                f"'tools[{i}].function.name' is required", param=f"tools[{i}].function.name"
            )
        # ``strict`` is not carried over: Anthropic's strict tools need model support, and
        # OpenAI agent SDKs set it by default, so forwarding it would fail many requests.
        entry: JSON = {"name": fn["name"], "input_schema": fn.get("parameters") or _EMPTY_SCHEMA}
        if isinstance(fn.get("description"), str) and fn["description"]:
            entry["description"] = fn["description"]
        converted.append(entry)

    choice, allowed = _tool_choice(body.get("tool_choice"))
    if allowed is not None:
        # Anthropic has no allow-list: narrowing ``tools`` has the same effect.
        converted = [t for t in converted if t["name"] in allowed]
        if not converted:
            raise InvalidRequest(
                "'tool_choice.allowed_tools' names none of the tools", param="tool_choice"
            )
    if body.get("parallel_tool_calls") is False and (choice or {}).get("type") != "none":
        choice = choice or {"type": "auto"}
        choice["disable_parallel_tool_use"] = True
    out["tools"] = converted
    if choice is not None:
        out["tool_choice"] = choice


def _tool_choice(choice: Any) -> tuple[JSON | None, set[str] | None]:
    """(Anthropic tool_choice, names an ``allowed_tools`` choice restricts tools to)."""
    if choice is None:
        return None, None
    if choice == "auto":
        return {"type": "auto"}, None
    if choice == "none":
        return {"type": "none"}, None
    if choice == "required":
        return {"type": "any"}, None
    if isinstance(choice, dict):
        kind = choice.get("type")
        name = obj(choice.get("function")).get("name")
        if kind == "function" and isinstance(name, str):
            return {"type": "tool", "name": name}, None
        if kind == "allowed_tools":
            allowed = obj(choice.get("allowed_tools"))
            names = {
                str(obj(obj(t).get("function")).get("name")) for t in allowed.get("tools") or []
            }
            return {"type": "any" if allowed.get("mode") == "required" else "auto"}, names
    raise InvalidRequest(
        "'tool_choice' must be auto, none, required, a named function tool or allowed_tools",
        param="tool_choice",
    )


# -------------------------------------------------------------------------- response


def messages_response_to_chat(resp: JSON, model: str, *, created: int | None = None) -> JSON:
    """Translate an Anthropic Message into an OpenAI ChatCompletion.

    Text blocks are concatenated into ``content``; ``tool_use`` blocks become
    ``tool_calls`` (input serialised as compact JSON); thinking text becomes the
    non-standard ``reasoning_content`` field (DeepSeek/vLLM convention), redacted thinking
    and server-tool blocks are dropped. Usage follows
    :func:`~tokenomy.providers._translate_common.anthropic_usage_to_openai`.

    Args:
        resp: The parsed upstream Message.
        model: The model name to show the client (usually what it asked for).
        created: Unix seconds for ``created``; now when omitted.

    Returns:
        A new ChatCompletion body. Never raises for odd upstream content: unknown blocks
        are skipped and missing usage counts as 0.
    """
    message, has_tools = _chat_message(resp.get("content"))
    stop_reason = resp.get("stop_reason")
    finish = STOP_TO_FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
    if has_tools and finish == "stop":
        finish = "tool_calls"  # clients loop on tool_calls; never hide a requested call
    return {
        "id": f"chatcmpl-{resp.get('id') or random_id()}",
        "object": "chat.completion",
        "created": now() if created is None else created,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
        "usage": anthropic_usage_to_openai(resp.get("usage")),
    }


def _chat_message(content: Any) -> tuple[JSON, bool]:
    texts: list[str] = []
    thoughts: list[str] = []
    calls: list[JSON] = []
    for block in content if isinstance(content, list) else []:
        block = obj(block)
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "thinking":
            thoughts.append(str(block.get("thinking") or ""))
        elif kind == "tool_use":
            calls.append(
                {
                    "id": str(block.get("id") or ""),
                    "type": "function",
                    "function": {
                        "name": str(block.get("name") or ""),
                        "arguments": dumps(block.get("input") or {}),
                    },
                }
            )
    message: JSON = {
        "role": "assistant",
        # OpenAI sends null content for a pure tool call, "" for an empty answer.
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
        "annotations": [],
    }
    if calls:
        message["tool_calls"] = calls
    if thoughts:
        message["reasoning_content"] = "\n\n".join(thoughts)
    return message, bool(calls)
