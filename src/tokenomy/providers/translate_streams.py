"""Stream translation in both directions, one stateful class per direction.

* :class:`MessagesToChatStream` - Anthropic Messages SSE events → OpenAI
  ``chat.completion.chunk`` dicts (OpenAI client, Anthropic upstream);
* :class:`ChatToMessagesStream` - OpenAI ``chat.completion.chunk`` dicts → Anthropic
  ``(event, data)`` pairs (Anthropic client, OpenAI upstream).

Both are fed parsed JSON one event at a time and return what to send right away; both
raise :class:`~tokenomy.errors.UpstreamError` for an error reported inside the stream,
which the gateway renders as the in-stream error of the client's format.
"""

from __future__ import annotations

from tokenomy.errors import UpstreamError
from tokenomy.providers._translate_common import (
    JSON,
    STOP_TO_FINISH,
    anthropic_stream_error,
    anthropic_usage_to_openai,
    dumps,
    finish_to_stop,
    now,
    obj,
    openai_stream_error,
    openai_usage_to_anthropic,
    random_id,
    tool_id,
)

__all__ = ["ChatToMessagesStream", "MessagesToChatStream"]


class MessagesToChatStream:
    """Turns an Anthropic Messages event stream into OpenAI ``chat.completion.chunk`` dicts.

    Feed every SSE event in order; send what :meth:`feed` returns to the client, each as
    one ``data:`` line, and end with ``data: [DONE]`` after ``message_stop`` (or after
    :meth:`finish` when the upstream closed early).

    Output order: a role chunk (``delta.role = "assistant"``), then content / tool-call /
    ``reasoning_content`` deltas, then one chunk with ``finish_reason`` (on
    ``message_delta``), then - only with ``include_usage`` - a usage chunk with
    ``choices: []`` (on ``message_stop``). With ``include_usage`` every other chunk carries
    ``"usage": null``, as OpenAI's own stream does.

    Errors: an ``error`` event raises :class:`~tokenomy.errors.UpstreamError` (message
    names the Anthropic error type, ``upstream_status`` is the status Anthropic uses for
    that type, ``upstream_body`` the event). The gateway renders it as the error chunk
    of its wire format; :meth:`usage` still returns what was reported before the error.
    """

    def __init__(self, model: str, include_usage: bool, *, created: int | None = None) -> None:
        """Start a translation.

        Args:
            model: Model name written on every chunk (usually what the client asked for).
            include_usage: The client's ``stream_options.include_usage``.
            created: Unix seconds for ``created``; now when omitted.
        """
        self.model = model
        self.include_usage = include_usage
        self.created = now() if created is None else created
        self._id = f"chatcmpl-{random_id()}"
        self._started = False
        self._tool_index: dict[int, int] = {}  # Anthropic block index → OpenAI tool index
        self._usage: JSON | None = None
        self._finished = False  # finish_reason chunk sent
        self._done = False  # usage chunk (or its absence) settled; nothing more to send

    @property
    def finished(self) -> bool:
        """True once the chunk carrying ``finish_reason`` has been produced."""
        return self._finished

    def usage(self) -> JSON | None:
        """The upstream's usage so far, merged across events, in Anthropic wire format.

        ``message_start`` reports input and cache counts, ``message_delta`` cumulative
        output (and sometimes final input) counts; later non-null values overwrite
        earlier ones, as the Anthropic SDK merges them. Returns ``None`` if the upstream
        reported none. Pass it to ``tokenomy.metering.usage.anthropic_usage`` to meter.
        """
        return dict(self._usage) if self._usage is not None else None

    def feed(self, event_type: str, data: JSON) -> list[JSON]:
        """Translate one upstream event.

        Args:
            event_type: The SSE ``event:`` name (``message_start``, ``content_block_delta``,
                ``ping``, ``error``, ...). Unknown names produce nothing.
            data: The parsed ``data:`` JSON of that event.

        Returns:
            Zero or more ``chat.completion.chunk`` dicts to send, in order.

        Raises:
            UpstreamError: for an ``error`` event.
        """
        if event_type == "error":
            raise anthropic_stream_error(data)
        if self._done:
            return []
        if event_type == "message_start":
            message = obj(data.get("message"))
            if isinstance(message.get("id"), str):
                self._id = f"chatcmpl-{message['id']}"
            if isinstance(message.get("usage"), dict):
                self._usage = dict(message["usage"])
            return self._start()
        if event_type == "content_block_start":
            return self._start() + self._block_start(data)
        if event_type == "content_block_delta":
            return self._start() + self._block_delta(data)
        if event_type == "message_delta":
            return self._message_delta(data)
        if event_type == "message_stop":
            # A stream without message_delta still owes the client a finish_reason.
            out = [] if self._finished else self._start() + self._finish_chunk("stop")
            return out + self.finish()
        return []  # ping, content_block_stop, future event types

    def finish(self) -> list[JSON]:
        """Chunks still owed once the upstream stream has ended.

        After ``message_stop`` this returns nothing. If the upstream closed after
        ``message_delta`` but before ``message_stop`` it returns the usage chunk (when
        requested). If it closed before ``message_delta`` it returns nothing and
        :attr:`finished` stays False: the stream was cut and the gateway should say so.
        Calling it again returns nothing.
        """
        if self._done or not self._finished:
            return []
        self._done = True
        if not self.include_usage:
            return []
        return [
            {
                "id": self._id,
                "object": "chat.completion.chunk",
                "created": self.created,
                "model": self.model,
                "choices": [],
                "usage": anthropic_usage_to_openai(self._usage),
            }
        ]

    def _chunk(self, delta: JSON, finish_reason: str | None = None) -> JSON:
        chunk: JSON = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }
        if self.include_usage:
            chunk["usage"] = None
        return chunk

    def _start(self) -> list[JSON]:
        if self._started:
            return []
        self._started = True
        return [self._chunk({"role": "assistant", "content": "", "refusal": None})]

    def _block_start(self, data: JSON) -> list[JSON]:
        block = obj(data.get("content_block"))
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            return [self._chunk({"content": block["text"]})]
        if kind == "thinking" and block.get("thinking"):
            return [self._chunk({"reasoning_content": block["thinking"]})]
        if kind == "tool_use":
            tool_index = len(self._tool_index)
            self._tool_index[data.get("index", -1)] = tool_index
            initial = block.get("input")
            return [
                self._chunk(
                    {
                        "tool_calls": [
                            {
                                "index": tool_index,
                                "id": str(block.get("id") or ""),
                                "type": "function",
                                # Streams start tool input as {} and send it as input_json_delta; a
                                # non-empty start (replayed or synthetic) is the whole input.
                                "function": {
                                    "name": str(block.get("name") or ""),
                                    "arguments": dumps(initial) if initial else "",
                                },
                            }
                        ]
                    }
                )
            ]
        return []

    def _block_delta(self, data: JSON) -> list[JSON]:
        delta = obj(data.get("delta"))
        kind = delta.get("type")
        if kind == "text_delta" and delta.get("text"):
            return [self._chunk({"content": delta["text"]})]
        if kind == "input_json_delta" and delta.get("partial_json"):
            tool_index = self._tool_index.get(data.get("index", -1))
            if tool_index is None:
                return []  # input of a server tool: nothing the client can call
            return [
                self._chunk(
                    {
                        "tool_calls": [
                            {"index": tool_index, "function": {"arguments": delta["partial_json"]}}
                        ]
                    }
                )
            ]
        if kind == "thinking_delta" and delta.get("thinking"):
            return [self._chunk({"reasoning_content": delta["thinking"]})]
        return []  # signature_delta, citations_delta, empty fragments

    def _message_delta(self, data: JSON) -> list[JSON]:
        usage = data.get("usage")
        if isinstance(usage, dict):
            merged = self._usage if self._usage is not None else {}
            # Counts on message_delta are cumulative totals: overwrite, don't add; a null
            # or absent field keeps the message_start value.
            merged.update({k: v for k, v in usage.items() if v is not None})
            self._usage = merged
        if self._finished:
            return []
        stop_reason = obj(data.get("delta")).get("stop_reason")
        finish = STOP_TO_FINISH.get(stop_reason, "stop") if isinstance(stop_reason, str) else "stop"
        if finish == "stop" and self._tool_index:
            finish = "tool_calls"
        return self._start() + self._finish_chunk(finish)

    def _finish_chunk(self, finish: str) -> list[JSON]:
        self._finished = True
        return [self._chunk({}, finish)]


class ChatToMessagesStream:
    """Turns OpenAI ``chat.completion.chunk`` dicts into Anthropic Messages SSE events.

    Feed every parsed chunk in order; send each returned ``(event, data)`` pair as
    ``event: <event>`` / ``data: <json>``. When the upstream ends (``data: [DONE]`` or end
    of body) call :meth:`finish` and send what it returns.

    Output order: ``message_start`` (on the first chunk; its usage is all zeros because
    OpenAI reports usage only at the end), then ``content_block_start`` / ``_delta`` /
    ``_stop`` for text (``text_delta``) and tool calls (``tool_use`` + ``input_json_delta``),
    one block open at a time (the last block is closed as soon as ``finish_reason``
    arrives). ``message_delta`` (``stop_reason`` and the full usage, input included) and
    ``message_stop`` come only from :meth:`finish`: OpenAI may send usage in the
    ``finish_reason`` chunk, in a later ``choices: []`` chunk, or never, and only the end
    of the upstream stream settles which. That also lets the gateway record usage before
    the client sees ``message_stop``. Without usage, ``message_delta`` reports
    ``output_tokens: 0`` and :meth:`usage` returns ``None``.

    Errors: a chunk carrying ``error`` raises :class:`~tokenomy.errors.UpstreamError`
    (the gateway renders it as an Anthropic ``error`` event). So does a tool-call argument
    fragment for a tool call whose block was already closed (an upstream interleaving
    parallel calls), which Anthropic events cannot express.
    """

    def __init__(self, model: str) -> None:
        """Start a translation.

        Args:
            model: Model name for ``message_start`` (usually what the client asked for).
        """
        self.model = model
        self._started = False
        self._stopped = False
        self._blocks = 0  # content blocks opened so far (= next block index)
        self._open: int | None = None  # index of the open block
        self._open_is_text = False
        self._tools: dict[int, int] = {}  # OpenAI tool_calls index → block index
        self._finish: str | None = None
        self._refused = False
        self._usage: JSON | None = None

    @property
    def started(self) -> bool:
        """True once ``message_start`` has been produced."""
        return self._started

    @property
    def stopped(self) -> bool:
        """True once ``message_stop`` has been produced."""
        return self._stopped

    def usage(self) -> JSON | None:
        """The last non-empty ``usage`` the upstream sent, in OpenAI wire format, or None.

        Pass it to ``tokenomy.metering.usage.openai_usage`` to meter.
        """
        return dict(self._usage) if self._usage is not None else None

    def feed(self, chunk: JSON) -> list[tuple[str, JSON]]:
        """Translate one upstream chunk.

        Args:
            chunk: A parsed ``chat.completion.chunk`` (the ``[DONE]`` sentinel is not a
                chunk: call :meth:`finish` instead).

        Returns:
            Zero or more ``(event name, event data)`` pairs to send, in order; never
            ``message_delta`` or ``message_stop`` (see :meth:`finish`). Chunks after
            ``message_stop`` produce nothing but may still update :meth:`usage`.

        Raises:
            UpstreamError: the chunk carries ``error``, or tool-call fragments interleave.
        """
        if chunk.get("error"):
            raise openai_stream_error(chunk)
        usage = chunk.get("usage")
        if isinstance(usage, dict) and usage:
            # Cumulative wherever a server repeats it: the last one is the total.
            self._usage = usage
        if self._stopped:
            return []
        events: list[tuple[str, JSON]] = []
        if not self._started:
            events.append(self._message_start(chunk))
        for choice in chunk.get("choices") or []:
            choice = obj(choice)
            if choice.get("index", 0) != 0:
                continue  # never requested; don't mix a second choice into the message
            delta = obj(choice.get("delta"))
            content = delta.get("content")
            if isinstance(content, str) and content:
                self._text(content, events)
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:
                self._refused = True
                self._text(refusal, events)
            for position, call in enumerate(delta.get("tool_calls") or []):
                self._tool_call(obj(call), position, events)
            finish = choice.get("finish_reason")
            if isinstance(finish, str) and finish:
                self._finish = finish
                self._close(events)
        return events

    def finish(self) -> list[tuple[str, JSON]]:
        """Events still owed once the upstream stream has ended.

        Closes a block still open, then sends ``message_delta`` (stop reason and usage)
        and ``message_stop``. A stream that ended without ``finish_reason`` gets
        ``tool_use`` if it produced tool calls, else ``end_turn``. Returns nothing if no
        chunk was ever fed (:attr:`started` is False: the gateway should report an
        upstream error); calling it again returns nothing.
        """
        if not self._started or self._stopped:
            return []
        events: list[tuple[str, JSON]] = []
        self._close(events)
        events.extend(self._stop())
        return events

    def _message_start(self, chunk: JSON) -> tuple[str, JSON]:
        self._started = True
        upstream_id = chunk.get("id")
        if not isinstance(upstream_id, str) or not upstream_id:
            upstream_id = random_id()
        return (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": f"msg_{upstream_id}",
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                },
            },
        )

    def _open_block(self, block: JSON, events: list[tuple[str, JSON]]) -> int:
        self._close(events)
        index = self._blocks
        self._blocks += 1
        self._open = index
        self._open_is_text = block["type"] == "text"
        events.append(
            (
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": block},
            )
        )
        return index

    def _close(self, events: list[tuple[str, JSON]]) -> None:
        if self._open is not None:
            events.append(
                ("content_block_stop", {"type": "content_block_stop", "index": self._open})
            )
            self._open = None

    def _delta(self, index: int, delta: JSON, events: list[tuple[str, JSON]]) -> None:
        events.append(
            ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})
        )

    def _text(self, text: str, events: list[tuple[str, JSON]]) -> None:
        if self._open is not None and self._open_is_text:
            index = self._open
        else:
            index = self._open_block({"type": "text", "text": ""}, events)
        self._delta(index, {"type": "text_delta", "text": text}, events)

    def _tool_call(self, call: JSON, position: int, events: list[tuple[str, JSON]]) -> None:
        key = call.get("index")
        if type(key) is not int:
            # Servers that omit ``index`` send each call whole, in list order.
            key = position if call.get("id") else max(self._tools, default=0)
        fn = obj(call.get("function"))
        arguments = fn.get("arguments")
        if isinstance(arguments, dict):
            arguments = dumps(arguments)  # some servers send the object itself
        if not isinstance(arguments, str):
            arguments = ""
        if key not in self._tools:
            self._tools[key] = self._open_block(
                {
                    "type": "tool_use",
                    "id": tool_id(call.get("id")),
                    "name": str(fn.get("name") or ""),
                    "input": {},
                },
                events,
            )
        elif self._tools[key] != self._open and arguments:
            raise UpstreamError(
                "upstream interleaved tool-call argument fragments, which cannot be "
                "streamed as Anthropic events",
                upstream_body=call,
            )
        if arguments:
            self._delta(
                self._tools[key], {"type": "input_json_delta", "partial_json": arguments}, events
            )

    def _stop(self) -> list[tuple[str, JSON]]:
        self._stopped = True
        stop_reason = finish_to_stop(
            self._finish, has_tools=bool(self._tools), refused=self._refused
        )
        usage = (
            openai_usage_to_anthropic(self._usage)
            if self._usage is not None
            else {"output_tokens": 0}
        )
        return [
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": usage,
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
