"""An OpenAI Responses client (``POST /v1/responses``) in front of an Anthropic Messages upstream.

* :func:`responses_request_to_messages` - the client's Responses request becomes a
  Messages request;
* :func:`messages_response_to_responses` - the upstream's Message becomes a Responses
  ``response`` object;
* :func:`build_response` - the ``response`` envelope both the unary and the stream leg
  (:class:`tokenomy.providers.translate_responses_stream.MessagesToResponsesStream`) send.

The upstream is stateless and the gateway keeps no conversation store, so everything that
needs server-side state (``previous_response_id``, ``conversation``, ``item_reference``,
stored prompts, file ids, ``background``) is refused with
:class:`~tokenomy.errors.InvalidRequest`; clients such as Codex CLI send ``store: false``
and the whole conversation in ``input``, which is fully supported.

Request field map: ``instructions`` and system/developer messages (any position) →
``system``; ``input`` (a string, or message / ``function_call`` /
``function_call_output`` items) → alternating ``user``/``assistant`` turns, consecutive
same-role turns merged; ``input_text``/``output_text``/``refusal`` parts → text,
``input_image`` (data URL → base64 source, http(s) → url source) → image, ``input_file``
(inline PDF or plain text, or a ``file_url``) → document; ``function_call`` →
``tool_use`` (``call_id`` → ``id``, ``arguments`` parsed), ``function_call_output`` →
``tool_result``; ``reasoning`` items are dropped (their encrypted content is OpenAI's).
``max_output_tokens`` (or the deployment default) → ``max_tokens``; ``temperature``
clamped to 0-1; ``top_p`` (dropped when temperature is set); function ``tools``,
``tool_choice`` (auto/none/required/function/allowed_tools), ``parallel_tool_calls=false``
→ ``disable_parallel_tool_use``; ``user`` (or ``safety_identifier``) →
``metadata.user_id``; ``text.format`` json_schema → ``output_config.format``; ``stream``.
Hosted web search tools (``web_search``, ``web_search_preview``, which Codex CLI sends by
default) are dropped unless ``tool_choice`` forces them (then refused); other hosted tools
are refused. Dropped: ``store``, ``metadata``, ``include``, ``truncation``, ``service_tier``,
``prompt_cache_key``, ``prompt_cache_retention``, ``reasoning`` (as the chat translator
drops ``reasoning_effort``), ``text.verbosity``, ``max_tool_calls``, ``stream_options``,
tool ``strict``, image ``detail``.

Both functions work on parsed JSON dicts and return new dicts; inputs are never mutated.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Any

from tokenomy.errors import InvalidRequest
from tokenomy.providers._translate_common import (
    JSON,
    anthropic_usage_to_responses,
    data_url,
    dumps,
    image_source,
    now,
    obj,
    optional_int,
    optional_number,
    parse_arguments,
    random_id,
    tool_id,
)

__all__ = [
    "INCOMPLETE_REASON",
    "build_response",
    "function_call_item",
    "message_item",
    "messages_response_to_responses",
    "output_item_id",
    "output_text",
    "reasoning_item",
    "responses_request_to_messages",
]

_UPSTREAM = "this model's upstream (Anthropic Messages)"
# Hosted tools dropped when not forced (prefixes: dated variants such as
# ``web_search_preview_2025_03_11`` exist). Other hosted tools are refused: without them
# the client's agent would not work as built (file search, code interpreter, MCP, ...).
_OPTIONAL_HOSTED = ("web_search",)
log = logging.getLogger("tokenomy.providers")
_EMPTY_SCHEMA: JSON = {"type": "object", "properties": {}}

# Anthropic ``stop_reason`` → Responses ``incomplete_details.reason``; every other reason
# (end_turn, stop_sequence, tool_use, pause_turn, future ones) is a completed response.
INCOMPLETE_REASON: dict[str, str] = {
    "max_tokens": "max_output_tokens",
    "model_context_window_exceeded": "max_output_tokens",
    "refusal": "content_filter",
}

# Input item types that record work of OpenAI-hosted tools; none can be replayed here.
_HOSTED_ITEMS = frozenset(
    {
        "file_search_call",
        "web_search_call",
        "computer_call",
        "computer_call_output",
        "code_interpreter_call",
        "image_generation_call",
        "local_shell_call",
        "local_shell_call_output",
        "shell_call",
        "shell_call_output",
        "apply_patch_call",
        "apply_patch_call_output",
        "mcp_list_tools",
        "mcp_approval_request",
        "mcp_approval_response",
        "mcp_call",
        "custom_tool_call",
        "custom_tool_call_output",
    }
)


# --------------------------------------------------------------------------- request


def responses_request_to_messages(body: JSON, upstream_model: str, default_max_tokens: int) -> JSON:
    """Translate an OpenAI Responses request into an Anthropic Messages request.

    See the module docstring for the field map.

    Args:
        body: The parsed client request.
        upstream_model: The model name the upstream deployment expects.
        default_max_tokens: ``max_tokens`` to send when the client did not set
            ``max_output_tokens`` (Anthropic requires one).

    Returns:
        A new Messages request body.

    Raises:
        InvalidRequest: the body is malformed, or needs what a stateless Anthropic
            upstream cannot do (``previous_response_id``, ``conversation``, ``background``,
            stored ``prompt``, ``item_reference`` items, file ids, hosted or custom tools,
            logprobs, audio). ``param`` names the offending field.
    """
    _reject_stateful(body)
    system: list[str] = []
    instructions = body.get("instructions")
    if isinstance(instructions, str):
        if instructions:
            system.append(instructions)
    elif instructions is not None:
        raise InvalidRequest("'instructions' must be a string", param="instructions")
    turns = _convert_input(body.get("input"), system)
    if not turns:
        raise InvalidRequest(
            "'input' must contain at least one user, assistant or tool-call item", param="input"
        )

    max_tokens = optional_int(body, "max_output_tokens")
    out: JSON = {
        "model": upstream_model,
        "messages": turns,
        "max_tokens": default_max_tokens if max_tokens is None else max_tokens,
    }
    if len(system) == 1:
        out["system"] = system[0]
    elif system:
        out["system"] = [{"type": "text", "text": text} for text in system]

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

    text = body.get("text")
    if text is not None and not isinstance(text, dict):
        raise InvalidRequest("'text' must be an object", param="text")
    fmt = obj(obj(text).get("format"))
    if fmt.get("type") == "json_schema":
        schema = fmt.get("schema")
        if not isinstance(schema, dict):
            raise InvalidRequest("'text.format.schema' must be an object", param="text.format")
        out["output_config"] = {"format": {"type": "json_schema", "schema": schema}}

    user = body.get("user") or body.get("safety_identifier")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}
    if body.get("stream") is True:
        out["stream"] = True
    return out


def _reject_stateful(body: JSON) -> None:
    """Raise for fields that need server-side state or whose effect a client would miss."""
    for key in ("previous_response_id", "conversation"):
        if body.get(key) is not None:
            raise InvalidRequest(
                f"'{key}' is not supported for {_UPSTREAM}: the gateway keeps no "
                "conversation state; send the whole conversation in 'input' "
                "(with store: false)",
                param=key,
            )
    if body.get("background") is True:
        raise InvalidRequest(
            f"'background' responses are not supported for {_UPSTREAM}; "
            "use a normal or streaming request",
            param="background",
        )
    if body.get("prompt") is not None:
        raise InvalidRequest(
            f"stored prompt templates ('prompt') cannot be resolved for {_UPSTREAM}; "
            "send the instructions and input inline",
            param="prompt",
        )
    top_logprobs = optional_int(body, "top_logprobs")
    include = body.get("include")
    if top_logprobs or (isinstance(include, list) and "message.output_text.logprobs" in include):
        raise InvalidRequest(
            f"logprobs are not supported by {_UPSTREAM}",
            param="top_logprobs" if top_logprobs else "include",
        )


def _convert_input(value: Any, system: list[str]) -> list[JSON]:
    """Alternating user/assistant turns from ``input``; system text is appended to ``system``."""
    if isinstance(value, str):
        return [{"role": "user", "content": [{"type": "text", "text": value}]}] if value else []
    if not isinstance(value, list):
        raise InvalidRequest("'input' must be a string or an array of items", param="input")
    turns: list[JSON] = []

    def append(role: str, blocks: list[JSON]) -> None:
        if not blocks:
            return
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})

    for i, item in enumerate(value):
        param = f"input[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"'{param}' must be an object", param=param)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            content = item.get("content")
            if role in ("system", "developer"):
                system.extend(b["text"] for b in _text_blocks(content, param))
            elif role == "user":
                append("user", _user_blocks(content, param))
            elif role == "assistant":
                append("assistant", _text_blocks(content, param))
            else:
                raise InvalidRequest(f"unknown message role {role!r}", param=f"{param}.role")
        elif kind == "function_call":
            append("assistant", [_tool_use(item, param)])
        elif kind == "function_call_output":
            append("user", [_tool_result(item, param)])
        elif kind == "reasoning":
            continue  # OpenAI's (encrypted) reasoning: nothing Anthropic can verify or use
        elif kind == "item_reference":
            raise InvalidRequest(
                f"'item_reference' items are not supported for {_UPSTREAM}: the gateway "
                "keeps no stored items; send the item itself",
                param=param,
            )
        elif kind in _HOSTED_ITEMS:
            raise InvalidRequest(
                f"'{kind}' items are not supported by {_UPSTREAM} (only function calls are)",
                param=f"{param}.type",
            )
        else:
            raise InvalidRequest(f"unsupported input item type {kind!r}", param=f"{param}.type")
    return turns


def _text_of(part: JSON, param: str) -> str:
    key = "refusal" if part.get("type") == "refusal" else "text"
    text = part.get(key)
    if not isinstance(text, str):
        raise InvalidRequest(f"'{param}.{key}' must be a string", param=f"{param}.{key}")
    return text


def _text_blocks(content: Any, param: str) -> list[JSON]:
    """Text-only content (system, developer, assistant) as Anthropic text blocks."""
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
        part = obj(part)
        if part.get("type") not in ("input_text", "output_text", "refusal"):
            raise InvalidRequest(f"'{p}' must be a text part", param=p)
        text = _text_of(part, p)
        if text:  # Anthropic rejects empty text blocks.
            blocks.append({"type": "text", "text": text})
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
        block = _content_block(part, f"{param}.content[{j}]")
        if block is not None:
            blocks.append(block)
    return blocks


def _content_block(part: Any, param: str) -> JSON | None:
    """One user (or tool-output) content part as an Anthropic block; None if empty text."""
    if not isinstance(part, dict):
        raise InvalidRequest(f"'{param}' must be an object", param=param)
    kind = part.get("type")
    if kind in ("input_text", "output_text"):
        text = _text_of(part, param)
        return {"type": "text", "text": text} if text else None
    if kind == "input_image":
        url = part.get("image_url")
        if not isinstance(url, str):
            if part.get("file_id") is not None:
                raise InvalidRequest(
                    f"'{param}': OpenAI file ids cannot be resolved for {_UPSTREAM}; "
                    "send the image as a data URL or an http(s) URL",
                    param=param,
                )
            raise InvalidRequest(f"'{param}.image_url' is required", param=f"{param}.image_url")
        return {"type": "image", "source": image_source(url, param)}
    if kind == "input_file":
        return _document(part, param)
    if kind == "input_audio":
        raise InvalidRequest(f"audio input is not supported by {_UPSTREAM}", param=param)
    raise InvalidRequest(f"unsupported content part type {kind!r}", param=f"{param}.type")


def _document(part: JSON, param: str) -> JSON:
    """An ``input_file`` part as an Anthropic document (inline PDF or text, or a URL)."""
    data = part.get("file_data")
    url = part.get("file_url")
    source: JSON
    if isinstance(data, str):
        if data.startswith("data:"):
            media_type, payload = data_url(data, param)
        else:
            media_type, payload = "application/pdf", data  # bare base64, as OpenAI accepts
        if media_type == "application/pdf":
            source = {"type": "base64", "media_type": media_type, "data": payload}
        elif media_type in ("text/plain", "text/markdown"):
            try:
                text = base64.b64decode(payload, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError) as exc:
                raise InvalidRequest(
                    f"'{param}.file_data' is not valid base64 UTF-8 text", param=param
                ) from exc
            source = {"type": "text", "media_type": "text/plain", "data": text}
        else:
            raise InvalidRequest(
                f"file type {media_type!r} is not supported by {_UPSTREAM} "
                "(PDF and plain text are)",
                param=param,
            )
    elif isinstance(url, str) and url.startswith(("https://", "http://")):
        source = {"type": "url", "url": url}  # Anthropic fetches PDFs by URL
    else:
        raise InvalidRequest(
            f"'{param}': OpenAI file ids cannot be resolved for {_UPSTREAM}; "
            "send the file inline as file_data or as an http(s) file_url",
            param=param,
        )
    block: JSON = {"type": "document", "source": source}
    if isinstance(part.get("filename"), str) and part["filename"]:
        block["title"] = part["filename"]
    return block


def _tool_use(item: JSON, param: str) -> JSON:
    call_id, name = item.get("call_id"), item.get("name")
    if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
        raise InvalidRequest(f"'{param}' needs a call_id and a name", param=param)
    return {
        "type": "tool_use",
        "id": tool_id(call_id),
        "name": name,
        "input": parse_arguments(item.get("arguments")),
    }


def _tool_result(item: JSON, param: str) -> JSON:
    call_id = item.get("call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"'{param}.call_id' is required", param=f"{param}.call_id")
    block: JSON = {"type": "tool_result", "tool_use_id": tool_id(call_id)}
    output = item.get("output")
    if isinstance(output, str):
        if output:
            block["content"] = output
    elif isinstance(output, list):
        parts = [_content_block(part, f"{param}.output[{j}]") for j, part in enumerate(output)]
        blocks = [b for b in parts if b is not None]
        if blocks:
            block["content"] = blocks
    elif output is not None:
        raise InvalidRequest(
            f"'{param}.output' must be a string or an array of content parts",
            param=f"{param}.output",
        )
    return block


def _convert_tools(body: JSON, out: JSON) -> None:
    """Set ``tools`` and ``tool_choice`` on ``out``; no tools means no tool_choice."""
    tools = body.get("tools")
    if not tools:
        return
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array", param="tools")
    converted: list[JSON] = []
    dropped: list[str] = []
    for i, tool in enumerate(tools):
        tool = obj(tool)
        kind = tool.get("type")
        if isinstance(kind, str) and kind.startswith(_OPTIONAL_HOSTED):
            # Codex CLI sends a hosted web search by default. Claude cannot run OpenAI's
            # hosted tools; unless tool_choice forces one (refused in _tool_choice), the
            # model answers without it, as it would if the search found nothing.
            dropped.append(kind)
            continue
        if kind != "function":
            raise InvalidRequest(
                f"'tools[{i}]': tool type {kind!r} is not supported by {_UPSTREAM} "
                "(only function tools are)",
                param=f"tools[{i}]",
            )
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise InvalidRequest(f"'tools[{i}].name' is required", param=f"tools[{i}].name")
        # ``strict`` is not carried over: Anthropic's strict tools need model support, and
        # OpenAI agent SDKs set it by default, so forwarding it would fail many requests.
        entry: JSON = {
            "name": tool["name"],
            "input_schema": tool.get("parameters") or _EMPTY_SCHEMA,
        }
        if isinstance(tool.get("description"), str) and tool["description"]:
            entry["description"] = tool["description"]
        converted.append(entry)

    choice, allowed = _tool_choice(body.get("tool_choice"))
    if dropped:
        log.debug("dropped optional hosted tools %s (not supported by %s)", dropped, _UPSTREAM)
        if not converted:
            if choice is not None and choice["type"] in ("any", "tool"):
                raise InvalidRequest(
                    f"'tool_choice' requires a tool, but the only tools are hosted ones "
                    f"({', '.join(dropped)}), which {_UPSTREAM} cannot run",
                    param="tool_choice",
                )
            return
    if allowed is not None:
        # Anthropic has no allow-list: narrowing ``tools`` has the same effect.
        converted = [t for t in converted if t["name"] in allowed]
        if not converted:
            raise InvalidRequest("'tool_choice.tools' names none of the tools", param="tool_choice")
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
        if kind == "function" and isinstance(choice.get("name"), str):
            return {"type": "tool", "name": choice["name"]}, None
        if kind == "allowed_tools":
            tools = choice.get("tools")
            names = {str(obj(t).get("name")) for t in (tools if isinstance(tools, list) else [])}
            return {"type": "any" if choice.get("mode") == "required" else "auto"}, names
    raise InvalidRequest(
        "'tool_choice' must be auto, none, required, a function tool or allowed_tools "
        f"(hosted and custom tools are not supported by {_UPSTREAM})",
        param="tool_choice",
    )


# -------------------------------------------------------------------------- response


def output_item_id(kind: str, message_id: str, output_index: int) -> str:
    """A deterministic output item id: ``msg_``/``fc_``/``rs_`` + upstream id + index.

    Unary and stream legs derive the same ids from the same upstream message, so a
    client sees one identity for an item however it was delivered.
    """
    base = message_id.removeprefix("msg_")
    prefix = {"message": "msg", "function_call": "fc", "reasoning": "rs"}[kind]
    return f"{prefix}_{base}_{output_index}"


def build_response(
    *,
    message_id: str,
    model: str,
    created_at: int,
    output: list[JSON],
    stop_reason: str | None,
    usage: JSON | None,
    request: JSON | None,
    in_progress: bool = False,
) -> JSON:
    """A Responses ``response`` object.

    Args:
        message_id: The upstream Message id (the response id is ``resp_<message_id>``).
        model: The model name to show the client.
        created_at: Unix seconds.
        output: The output items.
        stop_reason: The upstream ``stop_reason``; decides ``status`` and
            ``incomplete_details``.
        usage: Anthropic usage (``None`` while in progress: ``usage`` is then null).
        request: The client's request, whose settings are echoed as OpenAI does
            (``instructions``, ``max_output_tokens``, ``tools``, ``tool_choice``, ...).
        in_progress: Build the snapshot sent with ``response.created``/``in_progress``.
    """
    req = obj(request)
    reason = INCOMPLETE_REASON.get(stop_reason) if isinstance(stop_reason, str) else None
    status = "in_progress" if in_progress else ("incomplete" if reason else "completed")
    instructions = req.get("instructions")
    fmt = obj(obj(req.get("text")).get("format"))
    raw_tools = req.get("tools")
    tools = [
        {
            "type": "function",
            "name": t["name"],
            "description": t.get("description"),
            "parameters": t.get("parameters"),
            "strict": t.get("strict"),
        }
        for t in (raw_tools if isinstance(raw_tools, list) else [])
        if isinstance(t, dict) and t.get("type") == "function" and isinstance(t.get("name"), str)
    ]
    metadata = req.get("metadata")
    user = req.get("user")
    return {
        "id": f"resp_{message_id}",
        "object": "response",
        "created_at": created_at,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": reason} if reason and not in_progress else None,
        "instructions": instructions if isinstance(instructions, str) else None,
        "max_output_tokens": _echo(req, "max_output_tokens", int),
        "model": model,
        "output": output,
        "parallel_tool_calls": req.get("parallel_tool_calls") is not False,
        "previous_response_id": None,
        "reasoning": None,
        "temperature": _echo(req, "temperature", int | float),
        "text": {
            "format": fmt if fmt.get("type") in ("json_schema", "json_object") else {"type": "text"}
        },
        "tool_choice": req.get("tool_choice") or "auto",
        "tools": tools,
        "top_p": _echo(req, "top_p", int | float),
        "truncation": "disabled",
        "usage": None if in_progress else anthropic_usage_to_responses(usage),
        "metadata": metadata
        if isinstance(metadata, dict) and all(isinstance(v, str) for v in metadata.values())
        else {},
        "user": user if isinstance(user, str) else None,
    }


def _echo(req: JSON, key: str, kind: Any) -> Any:
    """``req[key]`` if it has type ``kind`` (bools excluded), else None: echoing never raises."""
    value = req.get(key)
    return value if isinstance(value, kind) and not isinstance(value, bool) else None


def messages_response_to_responses(
    data: JSON, model: str, *, request: JSON | None = None, created_at: int | None = None
) -> JSON:
    """Translate an Anthropic Message into an OpenAI Responses ``response`` object.

    Consecutive text blocks become one ``message`` item (one ``output_text`` part per
    block, ``annotations: []``); each ``tool_use`` becomes a ``function_call`` item
    (``call_id`` = the tool_use id, ``arguments`` = compact JSON of ``input``); each
    thinking block becomes a ``reasoning`` item whose summary is the thinking text.
    Redacted thinking and server-tool blocks are dropped. ``stop_reason`` max_tokens (or
    model_context_window_exceeded) gives ``status: "incomplete"`` with reason
    ``max_output_tokens``, refusal gives ``content_filter``; usage follows
    :func:`~tokenomy.providers._translate_common.anthropic_usage_to_responses`.

    Args:
        data: The parsed upstream Message.
        model: The model name to show the client (usually what it asked for).
        request: The client's Responses request, to echo its settings; optional.
        created_at: Unix seconds for ``created_at``; now when omitted.

    Returns:
        A new Responses body. Never raises for odd upstream content: unknown blocks are
        skipped and missing usage counts as 0.
    """
    message_id = data.get("id")
    if not isinstance(message_id, str) or not message_id:
        message_id = f"msg_{random_id()}"
    output: list[JSON] = []
    content = data.get("content")
    for block in content if isinstance(content, list) else []:
        block = obj(block)
        kind = block.get("type")
        if kind == "text":
            part = output_text(str(block.get("text") or ""))
            if output and output[-1]["type"] == "message":
                output[-1]["content"].append(part)
            else:
                output.append(message_item(output_item_id("message", message_id, len(output))))
                output[-1]["content"].append(part)
        elif kind == "tool_use":
            output.append(
                function_call_item(
                    output_item_id("function_call", message_id, len(output)),
                    str(block.get("id") or ""),
                    str(block.get("name") or ""),
                    dumps(block.get("input") or {}),
                )
            )
        elif kind == "thinking":
            output.append(
                reasoning_item(
                    output_item_id("reasoning", message_id, len(output)),
                    str(block.get("thinking") or ""),
                )
            )
    stop_reason = data.get("stop_reason")
    return build_response(
        message_id=message_id,
        model=model,
        created_at=now() if created_at is None else created_at,
        output=output,
        stop_reason=stop_reason if isinstance(stop_reason, str) else None,
        usage=data.get("usage"),
        request=request,
    )


def output_text(text: str) -> JSON:
    """An ``output_text`` content part."""
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def message_item(item_id: str, *, status: str = "completed") -> JSON:
    """An assistant ``message`` output item with no content yet."""
    return {"type": "message", "id": item_id, "role": "assistant", "status": status, "content": []}


def function_call_item(
    item_id: str, call_id: str, name: str, arguments: str, *, status: str = "completed"
) -> JSON:
    """A ``function_call`` output item."""
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def reasoning_item(item_id: str, summary: str, *, status: str = "completed") -> JSON:
    """A ``reasoning`` output item whose summary is ``summary`` (none when empty).

    Claude's thinking blocks are themselves summaries of the model's reasoning, so they
    map to ``summary`` rather than to raw reasoning ``content``.
    """
    parts = [{"type": "summary_text", "text": summary}] if summary else []
    return {"type": "reasoning", "id": item_id, "summary": parts, "status": status}
