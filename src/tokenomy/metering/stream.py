"""Server-sent events and stream usage accumulators (the per-chunk hot path).

:class:`SSEParser` turns raw byte chunks, exactly as they arrive from the upstream socket
(events split across chunks, several per chunk, ``\\r\\n`` / ``\\n`` / ``\\r`` line ends,
comments), into ``(event, data)`` pairs. The meters consume those pairs (or already
parsed dicts) and remember what metering needs: the usage the upstream reported, the
model and id, finish reasons, and the generated text for a tokenizer fallback when the
upstream never reports usage or the stream is cut off.

Each meter:

* ``feed_bytes(chunk)`` — raw upstream bytes (runs the SSE parser and ``feed_sse``);
* ``feed_sse(event, data)`` — one SSE event (``orjson.loads`` once);
* ``feed(obj)`` — one already parsed event/chunk dict;
* ``usage()`` — normalised :class:`~tokenomy.events.Usage` or ``None`` if never reported;
* ``usage_complete`` — the *final* usage arrived (an Anthropic stream cut after
  ``message_start`` has input but only partial output counts);
* ``output_text()`` — everything generated (text, reasoning, tool names and arguments).

They hold plain attributes and lists and do no per-chunk allocation beyond what the
JSON parser returns: they run for every chunk of every streamed request.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Any

import orjson

from tokenomy.events import Usage
from tokenomy.metering.usage import anthropic_usage, openai_usage

__all__ = [
    "AnthropicStreamMeter",
    "OpenAIStreamMeter",
    "ResponsesStreamMeter",
    "SSEParser",
    "StreamMeter",
    "aiter_sse",
]

_BOM = b"\xef\xbb\xbf"


class SSEParser:
    """Incremental parser for ``text/event-stream`` bytes.

    Follows the WHATWG event-stream rules that matter for LLM APIs: ``event:`` sets the
    type, several ``data:`` lines are joined with ``\\n``, one optional space after the
    colon is dropped, lines starting with ``:`` are comments, ``id:``/``retry:`` and
    unknown fields are ignored, an event without data is not dispatched.

    Example:
        >>> p = SSEParser()
        >>> p.feed(b"event: ping\\ndata: {}\\n\\ndata: [DO")
        [('ping', b'{}')]
        >>> p.feed(b"NE]\\n\\n")
        [('', b'[DONE]')]
    """

    __slots__ = ("_buf", "_started")

    def __init__(self) -> None:
        self._buf = b""
        self._started = False

    def feed(self, chunk: bytes) -> list[tuple[str, bytes]]:
        """Add bytes; return the events completed by them, in order (often none)."""
        buf = self._buf + chunk if self._buf else chunk
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(buf):
                self._buf = buf  # might still be a byte-order mark; wait for more
                return []
            self._started = True
            if buf.startswith(_BOM):
                buf = buf[3:]
        if b"\r" in buf:
            # A trailing CR may be the first half of CRLF split across two chunks;
            # normalising it now would turn CRLF into two line ends (a bogus dispatch).
            hold = buf.endswith(b"\r")
            if hold:
                buf = buf[:-1]
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if hold:
                buf += b"\r"
        events: list[tuple[str, bytes]] = []
        start = 0
        find = buf.find
        while True:
            end = find(b"\n\n", start)
            if end < 0:
                break
            block = buf[start:end]
            start = end + 2
            if block.startswith(b"data: ") and b"\n" not in block:
                # Fast path: OpenAI chat streams are nothing but single-line data events.
                events.append(("", block[6:]))
            elif block:
                ev = _parse_block(block)
                if ev is not None:
                    events.append(ev)
        self._buf = buf[start:] if start else buf
        return events

    def flush(self) -> list[tuple[str, bytes]]:
        """End of stream: return a last event that lacked its closing blank line.

        The standard says to drop such an event; some servers forget the final blank
        line after ``data: [DONE]``, and a usage chunk must not be lost for that.
        """
        rest, self._buf = self._buf.rstrip(b"\r\n"), b""
        if not rest:
            return []
        ev = _parse_block(rest.replace(b"\r\n", b"\n").replace(b"\r", b"\n"))
        return [ev] if ev is not None else []


def _parse_block(block: bytes) -> tuple[str, bytes] | None:
    event = ""
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line[0] == 0x3A:  # blank (leading) line or ":" comment
            continue
        name, sep, value = line.partition(b":")
        if sep and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode("utf-8", "replace")
    if not data:
        return None
    return event, data[0] if len(data) == 1 else b"\n".join(data)


async def aiter_sse(chunks: AsyncIterable[bytes]) -> AsyncIterator[tuple[str, bytes]]:
    """Yield ``(event, data)`` from an async iterable of byte chunks.

    Example:
        ``async for event, data in aiter_sse(resp.content.iter_any()): ...``
    """
    parser = SSEParser()
    async for chunk in chunks:
        for ev in parser.feed(chunk):
            yield ev
    for ev in parser.flush():
        yield ev


class StreamMeter:
    """Common base of the stream meters: SSE plumbing and the shared result fields.

    Attributes:
        id: The upstream's response/message id ("" until seen).
        model: The model the upstream says it used ("" until seen).
        finish_reasons: Finish/stop reasons in arrival order (one per choice/message).
        done: The stream reached its proper terminal event (``[DONE]``,
            ``response.completed``…, ``message_stop``); False means it was cut off.
        error: The error object the upstream sent inside the stream, if any.
        events: Number of events fed.
    """

    __slots__ = (
        "_parser",
        "_parts",
        "_usage",
        "_usage_raw",
        "done",
        "error",
        "events",
        "finish_reasons",
        "id",
        "model",
    )

    def __init__(self) -> None:
        self._parser: SSEParser | None = None
        self._parts: list[str] = []
        self._usage_raw: dict[str, Any] | None = None
        self._usage: Usage | None = None
        self.id = ""
        self.model = ""
        self.finish_reasons: list[str] = []
        self.done = False
        self.error: Any = None
        self.events = 0

    def feed_bytes(self, chunk: bytes) -> None:
        """Feed raw upstream bytes (any split); parses SSE and meters each event."""
        parser = self._parser
        if parser is None:
            parser = self._parser = SSEParser()
        for event, data in parser.feed(chunk):
            self.feed_sse(event, data)

    def close(self) -> None:
        """The upstream body ended: meter an unterminated last event, if any."""
        if self._parser is not None:
            for event, data in self._parser.flush():
                self.feed_sse(event, data)

    def feed_sse(self, event: str, data: bytes) -> None:
        """Meter one SSE event; non-JSON data (e.g. keep-alives) is ignored."""
        if data == b"[DONE]":
            self.done = True
            return
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            return
        if isinstance(obj, dict):
            self.feed(obj)

    def feed(self, obj: dict[str, Any]) -> None:  # pragma: no cover - abstract
        """Meter one parsed event or chunk."""
        raise NotImplementedError

    def usage(self) -> Usage | None:  # pragma: no cover - abstract
        """The usage the upstream reported so far, or ``None`` if it reported none."""
        raise NotImplementedError

    @property
    def usage_complete(self) -> bool:
        """True once the upstream's final usage numbers have arrived."""
        return self._usage_raw is not None

    def output_text(self) -> str:
        """All generated text (content, reasoning, tool names and arguments), joined."""
        parts = self._parts
        if len(parts) > 1:
            # Collapse so repeated calls stay cheap.
            self._parts = parts = ["".join(parts)]
        return parts[0] if parts else ""


class OpenAIStreamMeter(StreamMeter):
    """Meter for Chat Completions and (legacy) Completions streams.

    Usage is taken from whichever chunk carries it: OpenAI's extra final chunk with
    ``choices: []`` (``stream_options.include_usage``), a chunk carrying both choices
    and usage (llama.cpp, several proxies), or every chunk (vLLM's
    ``continuous_usage_stats``, cumulative, so the last one wins — never summed).
    """

    __slots__ = ()

    def feed(self, obj: dict[str, Any]) -> None:
        """Meter one parsed ``chat.completion.chunk`` / ``text_completion`` chunk."""
        self.events += 1
        if not self.id:
            self.id = obj.get("id") or ""
        if not self.model:
            self.model = obj.get("model") or ""
        usage = obj.get("usage")
        if usage:
            self._usage_raw = usage
            self._usage = None
        choices = obj.get("choices")
        if choices:
            parts = self._parts
            for choice in choices:
                delta = choice.get("delta")
                if delta:
                    content = delta.get("content")
                    if content:
                        if type(content) is str:
                            parts.append(content)
                        else:  # Mistral streams content as a list of typed parts
                            parts.append(_text_of(content))
                    # DeepSeek/vLLM name it reasoning_content, OpenRouter/Ollama reasoning.
                    reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                    if reasoning and isinstance(reasoning, str):
                        parts.append(reasoning)
                    refusal = delta.get("refusal")
                    if refusal:
                        parts.append(refusal)
                    tool_calls = delta.get("tool_calls")
                    if tool_calls:
                        for call in tool_calls:
                            fn = call.get("function")
                            if fn:
                                name = fn.get("name")
                                if name:
                                    parts.append(name)
                                args = fn.get("arguments")
                                if args:
                                    parts.append(args)
                    fn = delta.get("function_call")
                    if fn:
                        parts.append((fn.get("name") or "") + (fn.get("arguments") or ""))
                else:
                    text = choice.get("text")  # legacy completions
                    if text:
                        parts.append(text)
                reason = choice.get("finish_reason")
                if reason:
                    self.finish_reasons.append(reason)
        elif "error" in obj and not choices:
            self.error = obj["error"]

    def usage(self) -> Usage | None:
        """Normalised usage from the last chunk that carried it, or ``None``."""
        if self._usage is None and self._usage_raw is not None:
            self._usage = openai_usage(self._usage_raw)
        return self._usage


def _text_of(value: Any) -> str:
    """Text inside a non-string content value (a list of parts or nested dicts)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(_text_of(v) for v in value)
    if isinstance(value, dict):
        return "".join(
            _text_of(v) for k, v in value.items() if k in ("text", "thinking", "content")
        )
    return ""


_RESPONSES_TEXT_DELTAS = frozenset(
    {
        "response.output_text.delta",
        "response.refusal.delta",
        "response.reasoning_text.delta",
        "response.reasoning_summary_text.delta",
        "response.function_call_arguments.delta",
        "response.custom_tool_call_input.delta",
        "response.mcp_call_arguments.delta",
        "response.audio.transcript.delta",
        "response.code_interpreter_call_code.delta",
    }
)
_RESPONSES_TERMINAL = frozenset({"response.completed", "response.incomplete", "response.failed"})


class ResponsesStreamMeter(StreamMeter):
    """Meter for Responses API streams (``POST /v1/responses`` with ``stream: true``).

    Usage arrives in the ``response`` object of the terminal event:
    ``response.completed``, ``response.incomplete`` or ``response.failed``.
    ``finish_reasons`` receives the response ``status`` (``completed``, ``incomplete``,
    ``failed``).
    """

    __slots__ = ("status",)

    def __init__(self) -> None:
        super().__init__()
        self.status = ""

    def feed(self, obj: dict[str, Any]) -> None:
        """Meter one parsed Responses stream event."""
        self.events += 1
        kind = obj.get("type")
        if kind in _RESPONSES_TEXT_DELTAS:
            delta = obj.get("delta")
            if delta and isinstance(delta, str):
                self._parts.append(delta)
            return
        if kind == "response.output_item.added":
            item = obj.get("item") or {}
            name = item.get("name")  # function / custom tool calls name the tool here
            if name and isinstance(name, str):
                self._parts.append(name)
            return
        response = obj.get("response")
        if isinstance(response, dict):
            if not self.id:
                self.id = response.get("id") or ""
            model = response.get("model")
            if model:
                self.model = model
            if kind in _RESPONSES_TERMINAL:
                self.done = True
                self.status = response.get("status") or kind.rsplit(".", 1)[1]
                self.finish_reasons.append(self.status)
                usage = response.get("usage")
                if usage:
                    self._usage_raw = usage
                    self._usage = None
                if response.get("error"):
                    self.error = response["error"]
            return
        if kind == "error":
            self.error = obj.get("error") or obj

    def usage(self) -> Usage | None:
        """Normalised usage of the terminal event, or ``None``."""
        if self._usage is None and self._usage_raw is not None:
            self._usage = openai_usage(self._usage_raw)
        return self._usage


class AnthropicStreamMeter(StreamMeter):
    """Meter for Anthropic Messages streams.

    ``message_start`` carries the input side (and a provisional ``output_tokens``);
    each ``message_delta`` carries *cumulative* counts, so its fields replace the
    earlier ones (never added). ``usage_complete`` turns true with the first
    ``message_delta`` that has usage.
    """

    __slots__ = ("_delta_usage",)

    def __init__(self) -> None:
        super().__init__()
        self._delta_usage: dict[str, Any] | None = None

    def feed(self, obj: dict[str, Any]) -> None:
        """Meter one parsed Anthropic stream event."""
        self.events += 1
        kind = obj.get("type")
        if kind == "content_block_delta":
            delta = obj.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                text = delta.get("text")
            elif dtype == "input_json_delta":
                text = delta.get("partial_json")
            elif dtype == "thinking_delta":
                text = delta.get("thinking")
            else:  # signature_delta, citations_delta: not generated tokens we can count
                return
            if text:
                self._parts.append(text)
        elif kind == "content_block_start":
            block = obj.get("content_block") or {}
            # Text may already be in the start block; a tool name is generated output.
            text = block.get("text") or block.get("thinking") or block.get("name")
            if text and isinstance(text, str):
                self._parts.append(text)
        elif kind == "message_delta":
            reason = (obj.get("delta") or {}).get("stop_reason")
            if reason:
                self.finish_reasons.append(reason)
            usage = obj.get("usage")
            if usage:
                self._delta_usage = usage
                self._usage = None
        elif kind == "message_start":
            message = obj.get("message") or {}
            self.id = message.get("id") or ""
            self.model = message.get("model") or ""
            usage = message.get("usage")
            if usage:
                self._usage_raw = usage
                self._usage = None
        elif kind == "message_stop":
            self.done = True
        elif kind == "error":
            self.error = obj.get("error") or obj

    @property
    def usage_complete(self) -> bool:
        """True once a ``message_delta`` with the final output count has arrived."""
        return self._delta_usage is not None

    def usage(self) -> Usage | None:
        """``message_start`` usage overlaid with the latest cumulative delta usage."""
        if self._usage is not None:
            return self._usage
        start, delta = self._usage_raw, self._delta_usage
        if delta is None:
            merged = start
        elif start is None:
            merged = delta
        else:
            merged = dict(start)
            for key, value in delta.items():
                if value is not None:
                    merged[key] = value
        self._usage = anthropic_usage(merged)
        return self._usage
