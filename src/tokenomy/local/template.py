"""The chat template of the local lane: one explicit template, rendered in two places.

The packaged model is a *base* model: its GGUF carries no chat template, and llama.cpp
would otherwise fall back to ChatML, whose markers are plain text to Gemma's vocabulary.
``tokenomy local serve`` therefore hands the server :data:`CHAT_TEMPLATE` (Jinja, in
Gemma's turn format, whose markers are single tokens), and the gateway renders the very
same prompt with :func:`render_chat` to count input tokens when a server sends no usage.
A test checks that both renderings agree byte for byte (the server's ``/apply-template``).

Rendering rules (both sides): roles pass through except ``assistant`` → ``model``; text
parts of a content list are joined with ``\\n`` (llama.cpp's rule for templates that take
plain-string content); every turn is ``<start_of_turn>ROLE\\nTEXT<end_of_turn>\\n``; the
generation prompt is ``<start_of_turn>model\\n``. The BOS token is added by the tokenizer.
"""

from __future__ import annotations

from typing import Any

CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{{- '<start_of_turn>' + ('model' if message['role'] == 'assistant' else message['role'])"
    " + '\\n' + message['content'] + '<end_of_turn>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<start_of_turn>model\\n' -}}{%- endif -%}"
)

#: Control tokens of the template; a reply never contains them (they end or frame turns).
TURN_START, TURN_END = "<start_of_turn>", "<end_of_turn>"


class NotRenderable(ValueError):
    """A message the template cannot render (tools, images, ...): count another way."""


def _text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts: list[str] = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text":
                texts.append(str(part.get("text") or ""))
            else:
                raise NotRenderable("only text content parts are rendered")
        return "\n".join(texts)
    raise NotRenderable(f"content of type {type(content).__name__}")


def render_chat(messages: Any, *, add_generation_prompt: bool = True) -> str:
    """The prompt text the server builds from chat ``messages`` with :data:`CHAT_TEMPLATE`.

    Raises:
        NotRenderable: tool calls, non-text parts or malformed messages.
    """
    if not isinstance(messages, list):
        raise NotRenderable("messages is not a list")
    out: list[str] = []
    for message in messages:
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise NotRenderable("a message without a role")
        if message.get("tool_calls") or message.get("function_call"):
            raise NotRenderable("tool calls")
        role = "model" if message["role"] == "assistant" else message["role"]
        out.append(f"{TURN_START}{role}\n{_text(message.get('content'))}{TURN_END}\n")
    if add_generation_prompt:
        out.append(f"{TURN_START}model\n")
    return "".join(out)
