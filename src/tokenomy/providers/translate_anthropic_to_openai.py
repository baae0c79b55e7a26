"""An Anthropic Messages client in front of an OpenAI Chat Completions upstream.

* :func:`messages_request_to_chat` - the client's Messages request becomes a Chat
  Completions request;
* :func:`chat_response_to_messages` - the upstream's ChatCompletion becomes a Message.

The stream leg is :class:`tokenomy.providers.translate_streams.ChatToMessagesStream`.
Both work on parsed JSON dicts and return new dicts; inputs are never mutated.
"""

from __future__ import annotations

from typing import Any, Literal

from tokenomy.errors import InvalidRequest
from tokenomy.providers._translate_common import (
    JSON,
    dumps,
    finish_to_stop,
    obj,
    openai_usage_to_anthropic,
    optional_int,
    optional_number,
    parse_arguments,
    random_id,
    require_list,
    tool_id,
)

__all__ = ["chat_response_to_messages", "messages_request_to_chat"]

# Assistant-turn blocks that record Anthropic-side work (thinking, server tools): an
# OpenAI upstream can neither verify nor replay them, so they are left out.
_SKIPPED_ASSISTANT_BLOCKS = frozenset(
    {
        "thinking",
        "redacted_thinking",
        "server_tool_use",
        "web_search_tool_result",
        "web_fetch_tool_result",
        "code_execution_tool_result",
        "bash_code_execution_tool_result",
        "text_editor_code_execution_tool_result",
        "tool_search_tool_result",
        "container_upload",
    }
)


# --------------------------------------------------------------------------- request


def messages_request_to_chat(
    body: JSON,
    upstream_model: str,
    *,
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens",
) -> JSON:
    """Translate an Anthropic Messages request into an OpenAI Chat Completions request.

    ``system`` becomes a leading system message; each user turn becomes ``tool``
    messages (one per ``tool_result``, first, as OpenAI requires them right after the
    assistant's tool calls) followed by a user message with the remaining blocks. See
    :mod:`tokenomy.providers.translate` for the full field map.

    Args:
        body: The parsed client request.
        upstream_model: The model name the upstream deployment expects.
        max_tokens_field: Where to put ``max_tokens``; OpenAI's reasoning models accept
            only ``max_completion_tokens``, most compatible servers only ``max_tokens``.

    Returns:
        A new Chat Completions request body; a streaming request also asks for
        ``stream_options.include_usage`` so the stream can be metered.

    Raises:
        InvalidRequest: the body is malformed, or uses what an OpenAI upstream cannot do
            (server tools such as web search, Files-API sources, URL or non-PDF documents,
            search results). ``param`` names the offending field.
    """
    messages: list[JSON] = []
    system = body.get("system")
    if system is not None:
        text = _joined_text(system, "system")
        if text:
            messages.append({"role": "system", "content": text})
    for i, msg in enumerate(require_list(body, "messages")):
        param = f"messages[{i}]"
        if not isinstance(msg, dict):
            raise InvalidRequest(f"'{param}' must be an object", param=param)
        role = msg.get("role")
        content = msg.get("content")
        if role == "user":
            messages.extend(_user_messages(content, param))
        elif role == "assistant":
            assistant = _assistant_message(content, param)
            if assistant is not None:
                messages.append(assistant)
        elif role == "system":
            text = _joined_text(content, f"{param}.content")
            if text:
                messages.append({"role": "system", "content": text})
        else:
            raise InvalidRequest(f"unknown message role {role!r}", param=f"{param}.role")

    out: JSON = {"model": upstream_model, "messages": messages}
    max_tokens = optional_int(body, "max_tokens")
    if max_tokens is not None:
        out[max_tokens_field] = max_tokens
    stop = body.get("stop_sequences")
    if stop:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise InvalidRequest(
                "'stop_sequences' must be an array of strings", param="stop_sequences"
            )
        out["stop"] = list(stop)
    for key in ("temperature", "top_p"):
        value = optional_number(body, key)
        if value is not None:
            out[key] = value
    # top_k has no Chat Completions counterpart; it only narrows sampling, so dropping it
    # is safe.

    _convert_tools(body, out)

    user_id = obj(body.get("metadata")).get("user_id")
    if isinstance(user_id, str) and user_id:
        out["user"] = user_id
    schema = obj(obj(obj(body.get("output_config")).get("format")))
    if schema.get("type") == "json_schema" and isinstance(schema.get("schema"), dict):
        out["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "response", "schema": schema["schema"]},
        }
    if body.get("stream") is True:
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    return out


def _joined_text(content: Any, param: str) -> str:
    """System content (string or text blocks) as one string."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise InvalidRequest(f"'{param}' must be a string or an array of text blocks", param=param)
    texts: list[str] = []
    for j, block in enumerate(content):
        block = obj(block)
        if block.get("type") != "text" or not isinstance(block.get("text"), str):
            raise InvalidRequest(f"'{param}[{j}]' must be a text block", param=f"{param}[{j}]")
        texts.append(block["text"])
    return "\n\n".join(t for t in texts if t)


def _user_messages(content: Any, param: str) -> list[JSON]:
    """One Anthropic user turn → tool messages first, then (if anything is left) a user one."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    if not isinstance(content, list):
        raise InvalidRequest(
            f"'{param}.content' must be a string or an array of blocks", param=f"{param}.content"
        )
    tool_messages: list[JSON] = []
    tool_images: list[JSON] = []
    parts: list[JSON] = []
    for j, block in enumerate(content):
        p = f"{param}.content[{j}]"
        block = obj(block)
        kind = block.get("type")
        if kind == "tool_result":
            message, images = _tool_message(block, p)
            tool_messages.append(message)
            tool_images.extend(images)
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            parts.append(_content_part(block, p))
    # OpenAI tool messages carry text only: images a tool returned go to the user message
    # that follows, where the model can still see them.
    parts = tool_images + parts
    out = tool_messages
    if parts:
        if len(parts) == 1 and parts[0]["type"] == "text":
            out.append({"role": "user", "content": parts[0]["text"]})
        else:
            out.append({"role": "user", "content": parts})
    return out


def _content_part(block: JSON, param: str) -> JSON:
    kind = block.get("type")
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise InvalidRequest(f"'{param}.text' must be a string", param=f"{param}.text")
        return {"type": "text", "text": block["text"]}
    if kind == "image":
        return _image_part(obj(block.get("source")), param)
    if kind == "document":
        return _document_part(block, param)
    raise InvalidRequest(
        f"content block type {kind!r} is not supported by this model's upstream "
        "(OpenAI Chat Completions)",
        param=f"{param}.type",
    )


def _image_part(source: JSON, param: str) -> JSON:
    kind = source.get("type")
    if kind == "base64" and isinstance(source.get("data"), str):
        url = f"data:{source.get('media_type')};base64,{source['data']}"
    elif kind == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise InvalidRequest(
            f"image source type {kind!r} is not supported by this model's upstream "
            "(base64 and url are)",
            param=f"{param}.source",
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _document_part(block: JSON, param: str) -> JSON:
    source = obj(block.get("source"))
    kind, media_type = source.get("type"), source.get("media_type")
    data = source.get("data")
    if kind == "text" and isinstance(data, str):
        return {"type": "text", "text": data}
    if kind == "base64" and media_type == "application/pdf" and isinstance(data, str):
        title = block.get("title")
        return {
            "type": "file",
            "file": {
                "filename": title if isinstance(title, str) and title else "document.pdf",
                "file_data": f"data:application/pdf;base64,{data}",
            },
        }
    raise InvalidRequest(
        "only inline PDF and plain-text documents are supported by this model's upstream",
        param=f"{param}.source",
    )


def _tool_message(block: JSON, param: str) -> tuple[JSON, list[JSON]]:
    """(OpenAI tool message, image parts the result carried) for a ``tool_result``."""
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"'{param}.tool_use_id' is required", param=f"{param}.tool_use_id")
    content = block.get("content")
    texts: list[str] = []
    images: list[JSON] = []
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for j, item in enumerate(content):
            item = obj(item)
            part = _content_part(item, f"{param}.content[{j}]")
            if part["type"] == "text":
                texts.append(part["text"])
            else:
                images.append(part)
    elif content is not None:
        raise InvalidRequest(
            f"'{param}.content' must be a string or an array", param=f"{param}.content"
        )
    text = "\n".join(t for t in texts if t)
    if block.get("is_error") is True:
        # OpenAI has no error flag on tool results: say it in the text the model reads.
        text = f"Error: {text}" if text else "Error"
    if images:
        images.insert(0, {"type": "text", "text": f"Images returned by tool call {call_id}:"})
    return {"role": "tool", "tool_call_id": call_id, "content": text}, images


def _assistant_message(content: Any, param: str) -> JSON | None:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    if not isinstance(content, list):
        raise InvalidRequest(
            f"'{param}.content' must be a string or an array of blocks", param=f"{param}.content"
        )
    texts: list[str] = []
    calls: list[JSON] = []
    for j, block in enumerate(content):
        block = obj(block)
        kind = block.get("type")
        if kind == "text" and isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif kind == "tool_use":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise InvalidRequest(
                    f"'{param}.content[{j}]' needs an id and a name", param=f"{param}.content[{j}]"
                )
            calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {
                        "name": block["name"],
                        "arguments": dumps(block.get("input") or {}),
                    },
                }
            )
        elif kind not in _SKIPPED_ASSISTANT_BLOCKS:
            raise InvalidRequest(
                f"assistant content block type {kind!r} is not supported by this model's "
                "upstream (OpenAI Chat Completions)",
                param=f"{param}.content[{j}].type",
            )
    if not texts and not calls:
        return None  # only thinking / server-tool history: nothing OpenAI can take
    message: JSON = {"role": "assistant", "content": "".join(texts) if texts else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _convert_tools(body: JSON, out: JSON) -> None:
    """Set ``tools``, ``tool_choice`` and ``parallel_tool_calls``; none without tools."""
    tools = body.get("tools")
    if not tools:
        return
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array", param="tools")
    converted: list[JSON] = []
    for i, tool in enumerate(tools):
        tool = obj(tool)
        if tool.get("type") not in (None, "custom") or not isinstance(tool.get("name"), str):
            raise InvalidRequest(
                f"'tools[{i}]': tool type {tool.get('type')!r} is an Anthropic server tool "
                "and cannot run on this model's upstream (OpenAI Chat Completions)",
                param=f"tools[{i}]",
            )
        fn: JSON = {"name": tool["name"]}
        if isinstance(tool.get("description"), str) and tool["description"]:
            fn["description"] = tool["description"]
        fn["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
        if tool.get("strict") is True:
            fn["strict"] = True
        converted.append({"type": "function", "function": fn})
    out["tools"] = converted

    choice = obj(body.get("tool_choice"))
    kind = choice.get("type")
    if kind == "auto":
        out["tool_choice"] = "auto"
    elif kind == "any":
        out["tool_choice"] = "required"
    elif kind == "none":
        out["tool_choice"] = "none"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        out["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    elif body.get("tool_choice") is not None:
        raise InvalidRequest("'tool_choice' must be auto, any, tool or none", param="tool_choice")
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False


# -------------------------------------------------------------------------- response


def chat_response_to_messages(resp: JSON, model: str) -> JSON:
    """Translate an OpenAI ChatCompletion into an Anthropic Message.

    Only the first choice is used (requests never ask for more). ``content`` and
    ``refusal`` become text blocks; ``tool_calls`` become ``tool_use`` blocks whose
    ``input`` is the parsed ``arguments`` - arguments that are not a JSON object are kept
    as ``{"_raw": "<arguments>"}`` and empty ones become ``{}``. Tool-call ids are made
    Anthropic-safe (characters outside ``[A-Za-z0-9_-]`` become ``_``). Non-standard
    ``reasoning_content`` is dropped: a thinking block would need a signature.

    Args:
        resp: The parsed upstream ChatCompletion.
        model: The model name to show the client (usually what it asked for).

    Returns:
        A new Message body with ``id`` ``"msg_" + upstream id``. Never raises for odd
        upstream content; missing usage counts as 0.
    """
    choices = resp.get("choices")
    choice = obj(choices[0]) if isinstance(choices, list) and choices else {}
    message = obj(choice.get("message"))
    blocks: list[JSON] = []
    content = message.get("content")
    if isinstance(content, list):  # a few compatible servers answer with parts
        content = "".join(str(obj(p).get("text") or "") for p in content)
    if isinstance(content, str) and content:
        blocks.append({"type": "text", "text": content})
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:
        blocks.append({"type": "text", "text": refusal})
    calls = [obj(c) for c in message.get("tool_calls") or []]
    legacy = message.get("function_call")
    if isinstance(legacy, dict):
        calls.append({"id": f"call_{random_id()}", "function": legacy})
    for call in calls:
        fn = obj(call.get("function"))
        if not fn:
            continue  # custom tool calls: never requested by this gateway
        blocks.append(
            {
                "type": "tool_use",
                "id": tool_id(call.get("id")),
                "name": str(fn.get("name") or ""),
                "input": parse_arguments(fn.get("arguments")),
            }
        )
    finish = choice.get("finish_reason")
    stop_reason = finish_to_stop(
        finish if isinstance(finish, str) else None,
        has_tools=any(b["type"] == "tool_use" for b in blocks),
        refused=bool(refusal),
    )
    return {
        "id": f"msg_{resp.get('id') or random_id()}",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": blocks,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": openai_usage_to_anthropic(resp.get("usage")),
    }
