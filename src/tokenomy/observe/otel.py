"""OpenTelemetry: one CLIENT span per call, in the GenAI semantic conventions, over OTLP/HTTP.

On with ``[otel] enabled = true``. Spans go where the standard environment variables
point: ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` (as is) or ``OTEL_EXPORTER_OTLP_ENDPOINT``
(+ ``/v1/traces``; default ``http://localhost:4318``), with ``OTEL_EXPORTER_OTLP_(TRACES_)
HEADERS``, ``..._TIMEOUT`` and ``..._PROTOCOL``; the resource from ``OTEL_SERVICE_NAME``
(default ``tokenomy``) and ``OTEL_RESOURCE_ATTRIBUTES``. Off, none of this is imported
and no request pays anything for it.

Why not the OpenTelemetry SDK's tracer: per span it validates every attribute, and its
exporter builds protobuf messages attribute by attribute, which cost more CPU per call
than the gateway's whole request path can spare (bench/observe.py). Here the request path
only appends the finished call to a queue (its usage event, the client's trace context
and the end time); a worker thread turns batches of them into one OTLP request and posts
it, writing each span's JSON directly (the attributes that repeat from call to call,
such as team, model and provider, are encoded once and reused). The wire format is
OTLP/HTTP JSON (which every OTLP/HTTP receiver must accept), or binary protobuf with
``OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf`` (needs the ``tokenomy[otel]`` extra:
``opentelemetry-proto``), at about twice the cost per span.

The span is made with the call's real start and end times, as a child of the client's
W3C ``traceparent`` when it sent a valid one (the call seam of ``tokenomy.observe`` passes
the client's headers); otherwise it starts a trace of its own.
"""

from __future__ import annotations

import http.client
import logging
import os
import random
import re
import threading
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from tokenomy.config import Settings
from tokenomy.errors import ConfigError
from tokenomy.events import UsageEvent
from tokenomy.money import nanos_str

log = logging.getLogger("tokenomy.observe")

# GenAI ``gen_ai.operation.name`` of each endpoint.
OPERATIONS = {
    "chat.completions": "chat",
    "messages": "chat",
    "responses": "chat",
    "completions": "text_completion",
    "embeddings": "embeddings",
}
SPAN_KIND_CLIENT = 3
STATUS_ERROR = 2

# W3C trace context: version 00 is exactly this; a later version may append fields after
# another "-", which are ignored; "ff" is invalid.
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}(-.*)?$")

# What a span needs of a call, taken from its event when the call is recorded: plain
# values in plain tuples, which the garbage collector stops tracking. (Queued events
# stayed tracked and were promoted through the generations: a collection of the whole
# heap in the exporter every few hundred spans, ~9k instructions a span.)
_Fixed = tuple[str, str, str, str, str, str, str, str, str, str, str, str]
_Item = tuple[
    _Fixed,  # the attributes calls share (``_fixed``)
    str,  # request id
    int,  # end (ns)
    float,  # latency (ms)
    tuple[int, int, int, int, int],  # input, output, cache read, cache write, reasoning
    bool,  # estimated
    int | None,  # cost (nanos)
    str,  # task
    str,  # error type ("": none)
    tuple[str, str, str] | None,  # the client's trace context
]


def _env(name: str, default: str = "") -> str:
    """``OTEL_EXPORTER_OTLP_TRACES_<name>``, else ``OTEL_EXPORTER_OTLP_<name>``."""
    return (
        os.environ.get(f"OTEL_EXPORTER_OTLP_TRACES_{name}")
        or os.environ.get(f"OTEL_EXPORTER_OTLP_{name}")
        or default
    )


def _pairs(text: str) -> dict[str, str]:
    """``k1=v1,k2=v2`` (URL-encoded values), as in OTEL_*_HEADERS and _RESOURCE_ATTRIBUTES."""
    out = {}
    for item in text.split(","):
        key, sep, value = item.partition("=")
        if sep and key.strip():
            out[urllib.parse.unquote(key.strip())] = urllib.parse.unquote(value.strip())
    return out


def endpoint() -> str:
    """Where spans are posted, from the standard environment variables."""
    url = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if url:
        return url
    base = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", "http://localhost:4318")
    return base.rstrip("/") + "/v1/traces"


class Otel:
    """The tracing observer: queues finished calls; a worker thread exports them."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.url = endpoint()
        self.headers = _pairs(_env("HEADERS"))
        self.timeout_s = int(_env("TIMEOUT", "10000")) / 1000
        # The batch span processor's standard settings (and defaults): export every
        # OTEL_BSP_SCHEDULE_DELAY ms or as soon as a batch is full; spans beyond the
        # queue's size are dropped (and counted in the log).
        self.delay_s = int(os.environ.get("OTEL_BSP_SCHEDULE_DELAY", "5000")) / 1000
        self.batch = int(os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512"))
        self.max_queue = int(os.environ.get("OTEL_BSP_MAX_QUEUE_SIZE", "2048"))
        self._conn: http.client.HTTPConnection | None = None  # kept alive between batches
        protocol = _env("PROTOCOL", "http/json")
        if protocol not in ("http/json", "http/protobuf"):
            raise ConfigError(
                settings.path,
                "otel.enabled",
                f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: tokenomy sends OTLP over HTTP "
                "(http/json or http/protobuf)",
            )
        resource = {"service.name": "tokenomy"}
        resource.update(_pairs(os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")))
        if os.environ.get("OTEL_SERVICE_NAME"):
            resource["service.name"] = os.environ["OTEL_SERVICE_NAME"]
        self._resource = orjson.dumps(_attributes(resource)).decode()
        self._fixed_cache: dict[tuple[str, ...], tuple[str, str]] = {}
        self._encode: Callable[[list[dict[str, Any]]], bytes] | None = None
        if protocol == "http/protobuf":
            try:
                from tokenomy.observe._otlp_proto import encode
            except ImportError as exc:
                raise ConfigError(
                    settings.path,
                    "otel.enabled",
                    "OTLP over http/protobuf needs opentelemetry-proto: "
                    "pip install 'tokenomy[otel]'",
                ) from exc
            self._encode, self.content_type = encode, "application/x-protobuf"
        else:
            self.content_type = "application/json"
        self._queue: deque[_Item] = deque()  # appended by the loop, drained by the worker
        self._dropped = 0
        self._wake = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="tokenomy-otel", daemon=True)
        self._thread.start()

    # -- the call seam (tokenomy.observe) ----------------------------------------------
    def on_call(self, ev: UsageEvent, headers: Mapping[str, str] | None) -> None:
        if len(self._queue) >= self.max_queue:
            self._dropped += 1
            return
        u = ev.usage
        fixed = (
            ev.endpoint, ev.model, ev.upstream_model, ev.provider, ev.org, ev.team, ev.agent,
            ev.step, ev.location, ev.deployment, ev.data_class, ev.price_source,
        )  # fmt: skip
        usage = (
            u.input_tokens, u.output_tokens, u.cached_tokens, u.cache_write_tokens,
            u.reasoning_tokens,
        )  # fmt: skip
        error = ev.error_kind or (str(ev.status) if ev.status >= 400 else "")
        parent = _parent(headers) if headers is not None else None
        self._queue.append(
            (fixed, ev.id, time.time_ns(), ev.latency_ms, usage, ev.estimated, ev.cost_nanos,
             ev.task, error, parent)
        )  # fmt: skip
        if len(self._queue) >= self.batch:
            self._wake.set()

    # -- the worker thread ---------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop:
            self._wake.wait(self.delay_s)
            self._wake.clear()
            self._export()
        self._export()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _export(self) -> None:
        queue = self._queue
        while queue:
            batch = [queue.popleft() for _ in range(min(self.batch, len(queue)))]
            # Random ids for the whole batch at once: 48 hex digits a span (trace, span).
            ids = random.randbytes(24 * len(batch)).hex()
            body = self.batch_json(
                [self.span_json(item, ids[48 * i : 48 * i + 48]) for i, item in enumerate(batch)]
            )
            if self._encode is not None:  # http/protobuf: the same spans, re-encoded
                body = self._encode(orjson.loads(body)["resourceSpans"])
            try:
                status = self._post(body)
            except (OSError, http.client.HTTPException) as exc:
                self._conn = None
                log.warning("otel: %d spans not exported to %s (%s)", len(batch), self.url, exc)
            else:
                if status >= 300:
                    log.warning(
                        "otel: %s answered HTTP %d to %d spans", self.url, status, len(batch)
                    )
        if self._dropped:
            log.warning("otel: %d spans dropped (export queue full)", self._dropped)
            self._dropped = 0

    def _post(self, body: bytes) -> int:
        """POST one batch on the kept-alive connection (a new one if it was closed)."""
        for attempt in (1, 2):
            conn = self._conn
            if conn is None:
                url = urllib.parse.urlsplit(self.url)
                kind = (
                    http.client.HTTPSConnection
                    if url.scheme == "https"
                    else http.client.HTTPConnection
                )
                conn = self._conn = kind(url.netloc, timeout=self.timeout_s)
            try:
                conn.request(
                    "POST",
                    urllib.parse.urlsplit(self.url).path or "/",
                    body,
                    {**self.headers, "Content-Type": self.content_type},
                )
                resp = conn.getresponse()
                resp.read()
                return resp.status
            except (ConnectionError, http.client.RemoteDisconnected):
                conn.close()
                self._conn = None
                if attempt == 2:  # a kept-alive connection the receiver had closed: once
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        """Export what is queued, then stop the worker (blocking: run it in a thread)."""
        self._stop = True
        self._wake.set()
        self._thread.join(self.timeout_s + 5)

    # -- encoding (OTLP/JSON: ids in hex, 64-bit integers as strings) ------------------
    # Each span is one f-string: this runs for every call, and building it from parts
    # (bytes %-formats, joins, dicts for orjson) measured 2.5x the instructions.
    def batch_json(self, spans: list[str]) -> bytes:
        """One export request holding ``spans`` (each from ``span_json``)."""
        return (
            f'{{"resourceSpans":[{{"resource":{{"attributes":{self._resource}}},"scopeSpans":'
            f'[{{"scope":{{"name":"tokenomy"}},"spans":[{",".join(spans)}]}}]}}]}}'
        ).encode()

    def span_json(self, item: _Item, ids: str) -> str:
        """One CLIENT span as JSON; ``ids``: 48 random hex digits (trace id, span id)."""
        key, request_id, end_ns, latency_ms, u, estimated, cost_nanos, task, error, parent = item
        fixed, name = self._fixed(key)
        if parent is None:
            head = f'{{"traceId":"{ids[:32]}","spanId":"{ids[32:]}"'
        else:
            head = f'{{"traceId":"{parent[0]}","spanId":"{ids[32:]}","parentSpanId":"{parent[1]}"'
            if parent[2]:
                head += f',"traceState":{_json(parent[2])}'
        extra = status = ""
        if task:  # the client's header: escaped like every text
            task = _json(task)
            extra += f",{_str('gen_ai.conversation.id', task)},{_str('tokenomy.task', task)}"
        if cost_nanos is not None:
            cost = nanos_str(cost_nanos)
            extra += f',{{"key":"tokenomy.cost_usd","value":{{"stringValue":"{cost}"}}}}'
        if error:
            message = _json(error)
            extra += f",{_str('error.type', message)}"
            status = f',"status":{{"code":{STATUS_ERROR},"message":{message}}}'
        # The attributes every span has, written out (a helper call each costs more than
        # its formatting). Integers are strings in OTLP/JSON; the request id is the
        # gateway's own ("req_" and hex digits: nothing to escape).
        return (
            f'{head},"name":{name},"kind":{SPAN_KIND_CLIENT},'
            f'"startTimeUnixNano":"{end_ns - int(latency_ms * 1_000_000)}",'
            f'"endTimeUnixNano":"{end_ns}","attributes":[{fixed}'
            f'{{"key":"tokenomy.request_id","value":{{"stringValue":"{request_id}"}}}},'
            f'{{"key":"gen_ai.usage.input_tokens","value":{{"intValue":"{u[0]}"}}}},'
            f'{{"key":"gen_ai.usage.output_tokens","value":{{"intValue":"{u[1]}"}}}},'
            f'{{"key":"gen_ai.usage.cache_read.input_tokens",'
            f'"value":{{"intValue":"{u[2]}"}}}},'
            f'{{"key":"gen_ai.usage.cache_creation.input_tokens",'
            f'"value":{{"intValue":"{u[3]}"}}}},'
            f'{{"key":"gen_ai.usage.reasoning.output_tokens",'
            f'"value":{{"intValue":"{u[4]}"}}}},'
            f'{{"key":"tokenomy.estimated","value":{{"boolValue":{_BOOL[estimated]}}}}}'
            f"{extra}]{status}}}"
        )  # fmt: skip

    def _fixed(self, key: _Fixed) -> tuple[str, str]:
        """The attributes calls share (model, provider, team, agent...), each followed by a
        comma, and the span's name (JSON): encoded once per combination."""
        found = self._fixed_cache.get(key)
        if found is None:
            if len(self._fixed_cache) >= 10_000:
                self._fixed_cache.clear()
            endpoint, model, upstream_model, provider, org, team, agent, step = key[:8]
            location, deployment, data_class, price_source = key[8:]
            operation = OPERATIONS.get(endpoint, endpoint)
            attrs = {
                "gen_ai.operation.name": operation,
                "gen_ai.provider.name": self._provider(provider),
                "gen_ai.request.model": model,
                "gen_ai.response.model": upstream_model,
                "gen_ai.agent.name": agent,
                "tokenomy.org": org,
                "tokenomy.team": team,
                "tokenomy.agent": agent,
                "tokenomy.step": step,
                "tokenomy.location": location,
                "tokenomy.deployment": deployment,
                "tokenomy.data_class": data_class,
                "tokenomy.price_source": price_source,
            }
            fixed = "".join(_str(k, _json(v)) + "," for k, v in attrs.items() if v)
            name = _json(f"{operation} {model}" if model else operation)
            found = self._fixed_cache[key] = (fixed, name)
        return found

    def _provider(self, name: str) -> str:
        """``gen_ai.provider.name``: the catalog's provider id (e.g. ``openai``) when known."""
        provider = self.settings.providers.get(name)
        if provider is None:
            return name
        if provider.catalog_provider:
            return provider.catalog_provider
        return provider.kind if provider.location == "cloud" else name


_BOOL = ("false", "true")


def _json(value: str) -> str:
    """A JSON string literal (escaped: names and values may come from clients)."""
    return orjson.dumps(value).decode()


def _str(key: str, literal: str) -> str:
    return f'{{"key":"{key}","value":{{"stringValue":{literal}}}}}'


def _parent(headers: Mapping[str, str]) -> tuple[str, str, str] | None:
    """(trace id, parent span id, tracestate) of a valid W3C ``traceparent``, else None."""
    traceparent = headers.get("traceparent")
    if not traceparent:
        return None
    m = _TRACEPARENT.match(traceparent.strip().lower())
    if m is None or m.group(1) == "ff" or (m.group(1) == "00" and m.group(4) is not None):
        return None
    if m.group(2) == "0" * 32 or m.group(3) == "0" * 16:
        return None
    return m.group(2), m.group(3), headers.get("tracestate", "")[:512]


def _attributes(attrs: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for key, v in attrs.items():
        if isinstance(v, bool):
            value: dict[str, Any] = {"boolValue": v}
        elif isinstance(v, int):
            value = {"intValue": str(v)}
        else:
            value = {"stringValue": str(v)}
        out.append({"key": key, "value": value})
    return out
