"""Anthropic Messages SSE events → OpenAI Responses stream events (Responses client).

:class:`MessagesToResponsesStream` is the stream leg of
:mod:`tokenomy.providers.translate_responses_to_messages`: fed parsed upstream events one
at a time, it returns the ``(event name, data)`` pairs to send right away, numbered with
``sequence_number``, and ends with ``response.completed`` (or ``response.incomplete``)
carrying the same ``response`` object the unary leg builds for the same content.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tokenomy.errors import RequestError
from tokenomy.providers._translate_common import (
    JSON,
    anthropic_stream_error,
    dumps,
    now,
    obj,
    random_id,
)
from tokenomy.providers.translate_responses_to_messages import (
    build_response,
    function_call_item,
    message_item,
    output_item_id,
    output_text,
    reasoning_item,
)

__all__ = ["MessagesToResponsesStream"]

Event = tuple[str, JSON]


@dataclass
class _Block:
    """An open upstream content block and the output item it feeds."""

    kind: str  # "text" | "tool_use" | "thinking"
    output_index: int
    content_index: int = 0  # text: part index within the message item
    text: str = ""  # text, thinking text or tool-call arguments so far
    summary_open: bool = False  # thinking: summary part announced
    item: JSON = field(default_factory=dict)


class MessagesToResponsesStream:
    """Turns an Anthropic Messages event stream into OpenAI Responses stream events.

    Feed every SSE event in order and send each returned ``(event, data)`` pair as
    ``event: <event>`` / ``data: <json>``. The Responses stream has no ``[DONE]``: the
    terminal event is ``response.completed`` / ``response.incomplete`` (or the
    ``response.failed`` built by :meth:`failed`).

    Output order: ``response.created`` and ``response.in_progress`` (on
    ``message_start``); per text block ``response.content_part.added``,
    ``response.output_text.delta`` ..., ``response.output_text.done``,
    ``response.content_part.done`` (consecutive text blocks share one ``message`` item,
    opened by ``response.output_item.added`` and closed by ``response.output_item.done``
    when a non-text block starts or the message ends); per ``tool_use`` block a
    ``function_call`` item with ``response.function_call_arguments.delta`` ... ``.done``;
    per thinking block a ``reasoning`` item with ``response.reasoning_summary_part.added``,
    ``response.reasoning_summary_text.delta`` ... ``.done``,
    ``response.reasoning_summary_part.done``. Redacted thinking and server-tool blocks
    produce nothing. ``message_delta`` closes what is open; ``message_stop`` sends the
    terminal event with the full response and usage.

    Errors: an ``error`` event raises :class:`~tokenomy.errors.UpstreamError` (as
    :class:`~tokenomy.providers.translate_streams.MessagesToChatStream` does); the gateway
    can then send :meth:`failed` to end the client's stream in Responses format.
    """

    def __init__(
        self, model: str, *, request: JSON | None = None, created_at: int | None = None
    ) -> None:
        """Start a translation.

        Args:
            model: Model name shown on the response (usually what the client asked for).
            request: The client's Responses request, to echo its settings; optional.
            created_at: Unix seconds for ``created_at``; now when omitted.
        """
        self.model = model
        self.request = request
        self.created_at = now() if created_at is None else created_at
        self._message_id = f"msg_{random_id()}"
        self._seq = 0
        self._started = False
        self._finished = False  # terminal event produced; nothing more to send
        self._delta_seen = False  # message_delta arrived: the stream may end normally
        self._stop_reason: str | None = None
        self._usage: JSON | None = None
        self._output: list[JSON] = []  # item snapshots, final once their block closed
        self._blocks: dict[int, _Block] = {}  # open upstream blocks by Anthropic index
        self._message: int | None = None  # output index of the open message item

    @property
    def started(self) -> bool:
        """True once ``response.created`` has been produced."""
        return self._started

    @property
    def finished(self) -> bool:
        """True once the terminal event (completed, incomplete or failed) was produced."""
        return self._finished

    def usage(self) -> JSON | None:
        """The upstream's usage so far, merged across events, in Anthropic wire format.

        ``message_start`` reports input and cache counts, ``message_delta`` cumulative
        output (and sometimes final input) counts; later non-null values overwrite earlier
        ones. ``None`` if the upstream reported none. Pass it to
        ``tokenomy.metering.usage.anthropic_usage`` to meter.
        """
        return dict(self._usage) if self._usage is not None else None

    def feed(self, event_type: str, data: JSON) -> list[Event]:
        """Translate one upstream event.

        Args:
            event_type: The SSE ``event:`` name (``message_start``, ``content_block_delta``,
                ``ping``, ``error``, ...). Unknown names produce nothing.
            data: The parsed ``data:`` JSON of that event.

        Returns:
            Zero or more ``(event name, event data)`` pairs to send, in order.

        Raises:
            UpstreamError: for an ``error`` event.
        """
        if event_type == "error":
            raise anthropic_stream_error(data)
        if self._finished:
            return []
        events: list[Event] = []
        if event_type == "message_start":
            message = obj(data.get("message"))
            if not self._started and isinstance(message.get("id"), str) and message["id"]:
                self._message_id = message["id"]
            if isinstance(message.get("usage"), dict):
                self._usage = dict(message["usage"])
            self._start(events)
        elif event_type == "content_block_start":
            self._start(events)
            self._block_start(data, events)
        elif event_type == "content_block_delta":
            self._start(events)
            self._block_delta(data, events)
        elif event_type == "content_block_stop":
            block = self._blocks.pop(_index(data), None)
            if block is not None:
                self._close_block(block, events)
        elif event_type == "message_delta":
            usage = data.get("usage")
            if isinstance(usage, dict):
                merged = self._usage or {}
                merged.update({k: v for k, v in usage.items() if v is not None})
                self._usage = merged
            stop_reason = obj(data.get("delta")).get("stop_reason")
            if isinstance(stop_reason, str):
                self._stop_reason = stop_reason
            self._delta_seen = True
            self._start(events)
            self._close_all(events)
        elif event_type == "message_stop":
            # A stream without message_delta still ends the response for the client.
            self._start(events)
            self._close_all(events)
            events.append(self._terminal())
        return events  # ping, future event types: nothing

    def finish(self) -> list[Event]:
        """Events still owed once the upstream stream has ended.

        After ``message_stop`` this returns nothing. If the upstream closed after
        ``message_delta`` but before ``message_stop`` it closes what is open and returns
        the terminal event. If it closed before ``message_delta`` it returns nothing and
        :attr:`finished` stays False: the stream was cut and the gateway should say so
        (e.g. with :meth:`failed`). Calling it again returns nothing.
        """
        if self._finished or not self._delta_seen:
            return []
        events: list[Event] = []
        self._close_all(events)
        events.append(self._terminal())
        return events

    def failed(self, error: RequestError) -> list[Event]:
        """Events that end the client's stream with ``response.failed`` for ``error``.

        For an error raised by :meth:`feed` or a cut upstream; the response carries the
        items finished so far, the usage reported so far and ``error`` (``code``
        ``rate_limit_exceeded`` for a 429, else ``server_error``). Sends
        ``response.created`` first if nothing was sent yet. Returns nothing once the
        stream has ended.
        """
        if self._finished:
            return []
        events: list[Event] = []
        self._start(events)
        self._finished = True
        status = getattr(error, "http_status", error.status)
        response = self._response()
        response["status"] = "failed"
        response["error"] = {
            "code": "rate_limit_exceeded" if status == 429 else "server_error",
            "message": error.message,
        }
        response["output"] = [item for item in self._output if item.get("status") != "in_progress"]
        if self._usage is None:
            response["usage"] = None
        events.append(self._event({"type": "response.failed", "response": response}))
        return events

    # ------------------------------------------------------------------ internals

    def _event(self, data: JSON) -> Event:
        data["sequence_number"] = self._seq
        self._seq += 1
        return data["type"], data

    def _response(self, *, in_progress: bool = False) -> JSON:
        return build_response(
            message_id=self._message_id,
            model=self.model,
            created_at=self.created_at,
            output=[dict(item) for item in self._output] if not in_progress else [],
            stop_reason=self._stop_reason,
            usage=self._usage,
            request=self.request,
            in_progress=in_progress,
        )

    def _start(self, events: list[Event]) -> None:
        if self._started:
            return
        self._started = True
        for kind in ("response.created", "response.in_progress"):
            events.append(self._event({"type": kind, "response": self._response(in_progress=True)}))

    def _terminal(self) -> Event:
        self._finished = True
        response = self._response()
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        return self._event({"type": kind, "response": response})

    def _item_added(self, item: JSON, events: list[Event]) -> int:
        index = len(self._output)
        self._output.append(item)
        events.append(
            self._event(
                {"type": "response.output_item.added", "output_index": index, "item": dict(item)}
            )
        )
        return index

    def _item_done(self, index: int, item: JSON, events: list[Event]) -> None:
        self._output[index] = item
        events.append(
            self._event({"type": "response.output_item.done", "output_index": index, "item": item})
        )

    def _close_message(self, events: list[Event]) -> None:
        if self._message is None:
            return
        index, self._message = self._message, None
        item = self._output[index]
        self._item_done(index, {**item, "status": "completed"}, events)

    def _close_all(self, events: list[Event]) -> None:
        # Normally empty: Anthropic closes every block before message_delta.
        for key in sorted(self._blocks):
            self._close_block(self._blocks.pop(key), events)
        self._close_message(events)

    def _block_start(self, data: JSON, events: list[Event]) -> None:
        key = _index(data)
        if key in self._blocks:  # a repeated start: keep the block already open
            return
        block = obj(data.get("content_block"))
        kind = block.get("type")
        if kind == "text":
            if self._message is None:
                item_id = output_item_id("message", self._message_id, len(self._output))
                self._message = self._item_added(
                    message_item(item_id, status="in_progress"), events
                )
            message = self._output[self._message]
            state = _Block("text", self._message, content_index=len(message["content"]))
            message["content"] = [*message["content"], output_text("")]
            events.append(
                self._event(
                    {
                        "type": "response.content_part.added",
                        "item_id": message["id"],
                        "output_index": state.output_index,
                        "content_index": state.content_index,
                        "part": output_text(""),
                    }
                )
            )
            self._blocks[key] = state
            if block.get("text"):
                self._text(state, str(block["text"]), events)
        elif kind == "tool_use":
            self._close_message(events)
            index = len(self._output)
            item = function_call_item(
                output_item_id("function_call", self._message_id, index),
                str(block.get("id") or ""),
                str(block.get("name") or ""),
                "",
                status="in_progress",
            )
            state = _Block("tool_use", self._item_added(item, events), item=item)
            self._blocks[key] = state
            initial = block.get("input")
            if initial:  # a replayed or synthetic start carries the whole input
                self._arguments(state, dumps(initial), events)
        elif kind == "thinking":
            self._close_message(events)
            index = len(self._output)
            item = reasoning_item(
                output_item_id("reasoning", self._message_id, index), "", status="in_progress"
            )
            state = _Block("thinking", self._item_added(item, events), item=item)
            self._blocks[key] = state
            if block.get("thinking"):
                self._thinking(state, str(block["thinking"]), events)
        # redacted_thinking, server-tool blocks and future types: nothing to show

    def _block_delta(self, data: JSON, events: list[Event]) -> None:
        state = self._blocks.get(_index(data))
        if state is None:
            return  # delta of a skipped (or unknown) block
        delta = obj(data.get("delta"))
        kind = delta.get("type")
        if kind == "text_delta" and state.kind == "text" and delta.get("text"):
            self._text(state, str(delta["text"]), events)
        elif kind == "input_json_delta" and state.kind == "tool_use" and delta.get("partial_json"):
            self._arguments(state, str(delta["partial_json"]), events)
        elif kind == "thinking_delta" and state.kind == "thinking" and delta.get("thinking"):
            self._thinking(state, str(delta["thinking"]), events)
        # signature_delta, citations_delta, empty fragments: nothing to show

    def _text(self, state: _Block, text: str, events: list[Event]) -> None:
        state.text += text
        events.append(
            self._event(
                {
                    "type": "response.output_text.delta",
                    "item_id": self._output[state.output_index]["id"],
                    "output_index": state.output_index,
                    "content_index": state.content_index,
                    "delta": text,
                    "logprobs": [],
                }
            )
        )

    def _arguments(self, state: _Block, fragment: str, events: list[Event]) -> None:
        state.text += fragment
        events.append(
            self._event(
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": state.item["id"],
                    "output_index": state.output_index,
                    "delta": fragment,
                }
            )
        )

    def _thinking(self, state: _Block, text: str, events: list[Event]) -> None:
        item_id = state.item["id"]
        if not state.summary_open:
            state.summary_open = True
            events.append(
                self._event(
                    {
                        "type": "response.reasoning_summary_part.added",
                        "item_id": item_id,
                        "output_index": state.output_index,
                        "summary_index": 0,
                        "part": {"type": "summary_text", "text": ""},
                    }
                )
            )
        state.text += text
        events.append(
            self._event(
                {
                    "type": "response.reasoning_summary_text.delta",
                    "item_id": item_id,
                    "output_index": state.output_index,
                    "summary_index": 0,
                    "delta": text,
                }
            )
        )

    def _close_block(self, state: _Block, events: list[Event]) -> None:
        if state.kind == "text":
            message = self._output[state.output_index]
            part = output_text(state.text)
            content = list(message["content"])
            content[state.content_index] = part
            message["content"] = content
            common = {
                "item_id": message["id"],
                "output_index": state.output_index,
                "content_index": state.content_index,
            }
            events.append(
                self._event(
                    {
                        "type": "response.output_text.done",
                        **common,
                        "text": state.text,
                        "logprobs": [],
                    }
                )
            )
            events.append(
                self._event({"type": "response.content_part.done", **common, "part": part})
            )
            # The message item stays open: a following text block adds a part to it.
        elif state.kind == "tool_use":
            if not state.text.strip():
                # No input streamed means no arguments; clients parse "{}", not "".
                self._arguments(state, "{}", events)
            item = {**state.item, "arguments": state.text, "status": "completed"}
            events.append(
                self._event(
                    {
                        "type": "response.function_call_arguments.done",
                        "item_id": item["id"],
                        "output_index": state.output_index,
                        "name": item["name"],
                        "arguments": state.text,
                    }
                )
            )
            self._item_done(state.output_index, item, events)
        else:
            item = reasoning_item(state.item["id"], state.text)
            if state.summary_open:
                common = {
                    "item_id": item["id"],
                    "output_index": state.output_index,
                    "summary_index": 0,
                }
                events.append(
                    self._event(
                        {
                            "type": "response.reasoning_summary_text.done",
                            **common,
                            "text": state.text,
                        }
                    )
                )
                events.append(
                    self._event(
                        {
                            "type": "response.reasoning_summary_part.done",
                            **common,
                            "part": {"type": "summary_text", "text": state.text},
                        }
                    )
                )
            self._item_done(state.output_index, item, events)


def _index(data: JSON) -> int:
    index = data.get("index")
    return index if type(index) is int else -1
