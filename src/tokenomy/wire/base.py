"""The wire-format seam's interfaces: a wire format, its endpoints, and the bridges between them.

* :class:`Wire` — one wire format (OpenAI, Anthropic): how its upstreams are addressed
  (URL, headers, body preparation), how its errors look, how it lists models, and which
  request fields name the caller.
* :class:`Endpoint` — one endpoint of a wire format (chat.completions, messages, ...):
  body validation, the output cap, input estimates, usage and text of a response, the
  stream meter and the in-stream error.
* :class:`Bridge` — one (client endpoint, upstream wire) pair: the upstream request,
  the client's response and the stream relay. Chosen once per request, by a dict lookup.
* :class:`Relay` — per streamed request: upstream SSE events in, client bytes out.

Wire formats, endpoints and bridges are stateless singletons; per-request state lives in
the relay and the meter it holds.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

import orjson

from tokenomy.config import Model, Provider
from tokenomy.errors import InvalidRequest
from tokenomy.events import Usage, UsageEvent
from tokenomy.metering.stream import StreamMeter
from tokenomy.redact import scrub_json
from tokenomy.wire.steps import Fragment
from tokenomy.wire.texts import Piece

# The one default output cap: what the gateway sends upstream when a client sets none and
# one is needed (Anthropic requires ``max_tokens``; a hard budget needs a real worst case),
# unless the model's ``max_output_tokens`` says otherwise.
DEFAULT_OUTPUT_CAP = 16_384
# Limits on what the usage event records (PostgreSQL and SQLite take far more; these keep
# one request from bloating the ledger, and each is refused with 400 when exceeded). What
# the event records is checked before the upstream is called: once it has answered, the
# call must be recorded, so nothing recorded may be refused afterwards.
MAX_TEXT_CHARS = 256  # model, user / metadata.user_id, X-Tokenomy-Agent / -Task
MAX_METADATA_BYTES = 16 * 1024  # OpenAI ``metadata``, serialized as JSON
MAX_METADATA_DEPTH = 8
# o200k counts differ from other vendors' tokenizers; reserve with a margin.
_INPUT_MARGIN_NUM, _INPUT_MARGIN_DEN, _INPUT_MARGIN_ADD = 5, 4, 64
_SMALL_BODY_BYTES = 2_048
_INLINE_COUNT_BYTES = 32_768
# In-stream error events, scrubbed of secrets before they are relayed.
_ERROR_EVENTS = frozenset({"error", "response.failed"})


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event (``event:`` line optional)."""
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + orjson.dumps(data) + b"\n\n"


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


def check_messages(body: dict[str, Any]) -> None:
    """Refuse a body without a non-empty ``messages`` array of objects with a ``role``."""
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


class Relay:
    """One streamed request's relay: subclasses implement ``event``, ``tail`` and ``error``.

    Each relay sees every upstream event once, returns the bytes to send to the client,
    and says when it has reached the stream's terminal event: the gateway records the
    usage *before* it sends that event, so a client that saw the end of the stream can
    never have an unrecorded request.
    """

    meter: StreamMeter
    terminal_seen = False

    def event(self, name: str | None, data: bytes) -> tuple[bytes, bool]:
        """Bytes for the client, and whether this event is the stream's terminal one.

        When terminal, the returned bytes are everything *before* the terminal; the
        terminal itself comes from ``tail()`` after the usage has been recorded.
        """
        raise NotImplementedError

    def tail(self) -> bytes:
        raise NotImplementedError

    def error(self, message: str) -> bytes:
        """An in-stream error for the client (headers are already sent)."""
        raise NotImplementedError

    def usage(self) -> Usage | None:
        return self.meter.usage()

    @property
    def content_started(self) -> bool:
        """Whether the upstream has produced output yet (text, reasoning, a tool call, a
        finish reason). The gateway commits a stream to its client only then: until this
        turns true it holds the status line and the start-up events, so a failure can
        still move to another deployment or be answered as an HTTP error."""
        meter = self.meter
        return bool(meter.finish_reasons) or bool(meter.output_text())

    @property
    def usage_complete(self) -> bool:
        return self.meter.usage_complete

    def output_text(self) -> str:
        return self.meter.output_text()


class TypedEventPassthrough(Relay):
    """Passthrough of a stream of typed events (``event:`` lines) ending in a known type."""

    def __init__(self, endpoint: Endpoint, terminal: frozenset[str]) -> None:
        self.endpoint = endpoint
        self.meter = endpoint.meter()
        self.terminal = terminal
        self._held = b""

    def event(self, name: str | None, data: bytes) -> tuple[bytes, bool]:
        obj = orjson.loads(data)
        kind = name or (obj.get("type") if isinstance(obj, dict) else None) or ""
        self.meter.feed(obj)
        if kind in _ERROR_EVENTS:
            data = orjson.dumps(scrub_json(obj))  # upstreams echo credentials in errors
        out = (b"event: " + kind.encode() + b"\n" if kind else b"") + b"data: " + data + b"\n\n"
        if kind in self.terminal:
            self.terminal_seen = True
            self._held = out
            return b"", True
        return out, False

    def tail(self) -> bytes:
        return self._held

    def error(self, message: str) -> bytes:
        return self.endpoint.stream_error(message)


class Wire:
    """One wire format. Subclasses set ``name`` and implement the methods."""

    __slots__ = ("_headers",)
    name: ClassVar[str]  # also a provider's ``kind`` and the ledger's ``api_format``
    title: ClassVar[str]  # for people: "OpenAI"
    # The catalog provider of every upstream of this format, if only one vendor speaks it.
    sole_vendor: ClassVar[str | None] = None
    # Client headers passed on to this format's upstreams as they are.
    forwarded_headers: ClassVar[tuple[str, ...]] = ()
    # Prompt caching of this format's upstreams: the shortest prompt prefix they cache
    # (tokens) and how long an unused cache entry lives (seconds). The shredder uses them
    # to say when caching would help a bloated context and when it cannot.
    cache_min_tokens: ClassVar[int] = 1024
    cache_ttl_s: ClassVar[float] = 300.0

    def __init__(self) -> None:
        self._headers: dict[str, dict[str, str]] = {}

    # -- upstream side -------------------------------------------------------------------
    def url(self, provider: Provider, endpoint: Endpoint) -> str:
        """Where ``endpoint`` lives on a provider of this wire format."""
        return provider.base_url + endpoint.upstream_path

    def headers(self, provider: Provider, client_headers: Mapping[str, str]) -> dict[str, str]:
        """The headers of an upstream call (built once per provider)."""
        raise NotImplementedError

    # -- client side ---------------------------------------------------------------------
    def record_caller(self, body: dict[str, Any], event: UsageEvent) -> None:
        """Copy the body's end user (and metadata) onto the event, checked for the ledger."""
        raise NotImplementedError

    def error_body(self, err: Any) -> dict[str, Any]:
        """A :class:`~tokenomy.errors.RequestError` as this wire format's error JSON."""
        raise NotImplementedError

    def stream_error(self, message: str) -> bytes:
        """An in-stream error event this format's SDKs raise on."""
        raise NotImplementedError

    def models(self, names: list[str]) -> dict[str, Any]:
        """The ``GET /v1/models`` listing in this format."""
        raise NotImplementedError


class Endpoint:
    """One endpoint of a wire format. Subclasses set the class attributes."""

    __slots__ = ()
    name: ClassVar[str]  # recorded as the usage event's ``endpoint``
    path: ClassVar[str]  # the gateway's path for it
    upstream_path: ClassVar[str]  # its path below a provider's base_url
    wire: ClassVar[Wire]
    # Fields holding the output cap, the one set when none is given last.
    cap_fields: ClassVar[tuple[str, ...]] = ()
    # Billed calls reserve and spend budgets; others (count_tokens) only count as requests.
    billed: ClassVar[bool] = True

    def validate(self, body: dict[str, Any]) -> str:
        """Check the fields the gateway needs; return the requested model."""
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise InvalidRequest(
                "'model' is required and must be a non-empty string.", param="model"
            )
        recorded_text(model, "model")
        stream = body.get("stream")
        if stream is not None and not isinstance(stream, bool):
            raise InvalidRequest("'stream' must be a boolean.", param="stream")
        self.check(body)
        for name in ("max_tokens", "max_completion_tokens", "max_output_tokens", "n"):
            v = body.get(name)
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
                raise InvalidRequest(f"'{name}' must be a positive integer.", param=name)
        return model

    def check(self, body: dict[str, Any]) -> None:
        """The endpoint's own required fields."""

    def output_cap(self, body: dict[str, Any]) -> int | None:
        """The most output the request allows over all its choices, if it sets a cap."""
        for name in self.cap_fields:
            cap = body.get(name)
            if isinstance(cap, int):
                return cap * self.choices(body)
        return None

    def choices(self, body: dict[str, Any]) -> int:
        """How many outputs the request asks for."""
        return 1

    def set_output_cap(self, body: dict[str, Any], model: Model, upstream_url: str) -> int:
        """Most output the request can produce; sets a cap (in place) when none is given."""
        cap = self.output_cap(body)
        if cap is not None:
            return cap
        body[self.cap_field(upstream_url)] = model.max_output_tokens or DEFAULT_OUTPUT_CAP
        return self.output_cap(body) or 0

    def cap_field(self, upstream_url: str) -> str:
        """The field to set when the client set no cap."""
        return self.cap_fields[-1]

    def prepare(self, body: dict[str, Any], upstream_model: str, stream: bool) -> None:
        """Make a client body of this endpoint ready for an upstream of its format (in place)."""
        body["model"] = upstream_model

    def estimate_input(self, body: dict[str, Any]) -> int:
        """Offline estimate of the request's input tokens."""
        raise NotImplementedError

    def worst_case_input(
        self, body: dict[str, Any], body_bytes: int, count_long: bool = False
    ) -> int | None:
        """Input tokens to reserve for; None when the prompt is long enough to count in a thread.

        Byte-level BPE tokenizers (OpenAI's, Anthropic's, Llama's) never make more tokens
        than the text has bytes, and the JSON body holds more bytes than its text plus
        per-message overheads: for small bodies its size is a strict bound that costs
        nothing to compute. Larger bodies are counted offline, with a margin for other
        vendors' tokenizers.
        """
        if body_bytes <= _SMALL_BODY_BYTES:
            return body_bytes
        if body_bytes > _INLINE_COUNT_BYTES and not count_long:
            return None
        counted = self.estimate_input(body)
        bound = -(-counted * _INPUT_MARGIN_NUM // _INPUT_MARGIN_DEN) + _INPUT_MARGIN_ADD
        return min(bound, body_bytes)

    def step_fragments(self, body: dict[str, Any], start: int) -> tuple[int, list[Fragment]]:
        """What this step adds: the number of conversation items, and fragments of the
        items from ``start`` on (see ``wire/steps.py``). None for endpoints without turns."""
        return 0, []

    def texts(self, body: dict[str, Any]) -> Iterator[Piece]:
        """Every text the request carries, as ``(where, text or Unscannable)`` pairs
        (see ``wire/texts.py``); what the data-sovereignty detectors scan."""
        raise NotImplementedError

    def usage(self, data: dict[str, Any]) -> Usage | None:
        """The usage a (non-streamed) response reports, or None."""
        raise NotImplementedError

    def response_text(self, data: dict[str, Any]) -> str:
        """All generated text of a non-streamed response (for counting when usage is missing)."""
        raise NotImplementedError

    def meter(self) -> StreamMeter:
        """A fresh meter for one of this endpoint's streams."""
        raise NotImplementedError

    def stream_error(self, message: str) -> bytes:
        """An in-stream error for this endpoint's clients."""
        return self.wire.stream_error(message)


class Bridge:
    """One (client endpoint, upstream wire) pair; stateless, chosen once per request."""

    __slots__ = ()
    client: ClassVar[Endpoint]
    upstream: ClassVar[Endpoint]
    # False: answered by the gateway itself (``answer``), nothing is sent upstream.
    forwards: ClassVar[bool] = True

    def request(
        self, body: dict[str, Any], upstream_model: str, model: Model, stream: bool
    ) -> dict[str, Any]:
        """The upstream body for a (validated) client body."""
        raise NotImplementedError

    def response(self, data: dict[str, Any], model: str, body: dict[str, Any]) -> bytes | None:
        """The client's body for an upstream response; None to relay the upstream's bytes."""
        return None

    def relay(self, body: dict[str, Any], model: str) -> Relay:
        """A relay for one streamed request."""
        raise NotImplementedError

    def answer(self, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        """(body, headers) of a call answered locally (only when ``forwards`` is False)."""
        raise NotImplementedError


class Passthrough(Bridge):
    """A client and an upstream of the same wire format: the body goes as it is."""

    __slots__ = ()

    def request(
        self, body: dict[str, Any], upstream_model: str, model: Model, stream: bool
    ) -> dict[str, Any]:
        upstream = dict(body)
        self.upstream.prepare(upstream, upstream_model, stream)
        return upstream
