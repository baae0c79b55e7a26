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
W3C ``traceparent`` when it sent a valid one (read from the request when its response is
done: the response hook of ``tokenomy.observe``); otherwise it starts a trace of its own.
"""

from __future__ import annotations

import http.client
import logging
import os
import random
import re
import threading
import urllib.parse
from collections import deque
from collections.abc import Callable
from typing import Any

import orjson
from aiohttp import web

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

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")

_Item = tuple[UsageEvent, tuple[str, str, str] | None, int]


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
        self._resource = orjson.dumps(_attributes(resource))
        self._fixed_cache: dict[tuple[str, ...], tuple[bytes, bytes]] = {}
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

    # -- the response hook (tokenomy.observe) ------------------------------------------
    def on_response(
        self, request: web.BaseRequest, status: int, duration_s: float, recorded: Any
    ) -> None:
        if recorded is None:  # not a call (an unknown path, /metrics, the admin API)
            return
        if len(self._queue) >= self.max_queue:
            self._dropped += 1
            return
        parent = None
        traceparent = request.headers.get("traceparent")
        if traceparent:
            m = _TRACEPARENT.match(traceparent.strip().lower())
            if m and m.group(1) != "0" * 32 and m.group(2) != "0" * 16:
                parent = (m.group(1), m.group(2), request.headers.get("tracestate", "")[:512])
        ev, _, end_ns = recorded
        self._queue.append((ev, parent, end_ns))
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
            body = self.batch_json([self.span_json(*item) for item in batch])
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
    def batch_json(self, spans: list[bytes]) -> bytes:
        """One export request holding ``spans`` (each from ``span_json``)."""
        head = b'{"resourceSpans":[{"resource":{"attributes":%s},"scopeSpans":[' % self._resource
        return head + b'{"scope":{"name":"tokenomy"},"spans":[%s]}]}]}' % b",".join(spans)

    def span_json(self, ev: UsageEvent, parent: tuple[str, str, str] | None, end_ns: int) -> bytes:
        """One CLIENT span, its JSON written directly (this runs for every call)."""
        fixed, name = self._fixed(ev)
        u = ev.usage
        error = ev.error_kind or (str(ev.status) if ev.status >= 400 else "")
        texts = [
            (b"tokenomy.request_id", ev.id),
            (b"gen_ai.conversation.id", ev.task),
            (b"tokenomy.task", ev.task),
            (b"error.type", error),
            (b"tokenomy.cost_usd", nanos_str(ev.cost_nanos) if ev.cost_nanos is not None else ""),
        ]
        attrs = [fixed] if fixed else []
        attrs += [_INT % (k, v) for k, v in ((_INPUT, u.input_tokens), (_OUTPUT, u.output_tokens),
                  (_CACHE_READ, u.cached_tokens), (_CACHE_WRITE, u.cache_write_tokens),
                  (_REASONING, u.reasoning_tokens))]  # fmt: skip
        attrs += [_STR % (k, orjson.dumps(v)) for k, v in texts if v]
        attrs.append(_BOOL % (b"tokenomy.estimated", b"true" if ev.estimated else b"false"))
        if parent is not None:
            trace_id, ids = parent[0].encode(), b',"parentSpanId":"%s"' % parent[1].encode()
            if parent[2]:
                ids += b',"traceState":' + orjson.dumps(parent[2])
        else:
            trace_id, ids = b"%032x" % random.getrandbits(128), b""
        status = b""
        if error:
            status = b',"status":{"code":%d,"message":%s}' % (STATUS_ERROR, orjson.dumps(error))
        start = end_ns - int(ev.latency_ms * 1_000_000)
        return (
            b'{"traceId":"%s","spanId":"%016x"%s,"name":%s,"kind":%d,'
            b'"startTimeUnixNano":"%d","endTimeUnixNano":"%d","attributes":[%s]%s}'
            % (trace_id, random.getrandbits(64), ids, name, SPAN_KIND_CLIENT, start, end_ns,
               b",".join(attrs), status)
        )  # fmt: skip

    def _fixed(self, ev: UsageEvent) -> tuple[bytes, bytes]:
        """The attributes calls share (model, provider, team, agent...) and the span's
        name, encoded once per combination."""
        key = (
            ev.endpoint, ev.model, ev.upstream_model, ev.provider, ev.org, ev.team, ev.agent,
            ev.step, ev.location, ev.deployment, ev.data_class, ev.price_source,
        )  # fmt: skip
        found = self._fixed_cache.get(key)
        if found is None:
            if len(self._fixed_cache) >= 10_000:
                self._fixed_cache.clear()
            operation = OPERATIONS.get(ev.endpoint, ev.endpoint)
            attrs = {
                "gen_ai.operation.name": operation,
                "gen_ai.provider.name": self._provider(ev.provider),
                "gen_ai.request.model": ev.model,
                "gen_ai.response.model": ev.upstream_model,
                "gen_ai.agent.name": ev.agent,
                "tokenomy.org": ev.org,
                "tokenomy.team": ev.team,
                "tokenomy.agent": ev.agent,
                "tokenomy.step": ev.step,
                "tokenomy.location": ev.location,
                "tokenomy.deployment": ev.deployment,
                "tokenomy.data_class": ev.data_class,
                "tokenomy.price_source": ev.price_source,
            }
            fixed = b",".join(_STR % (k.encode(), orjson.dumps(v)) for k, v in attrs.items() if v)
            name = orjson.dumps(f"{operation} {ev.model}" if ev.model else operation)
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


_STR = b'{"key":"%s","value":{"stringValue":%s}}'
_INT = b'{"key":"%s","value":{"intValue":"%d"}}'
_BOOL = b'{"key":"%s","value":{"boolValue":%s}}'
_INPUT = b"gen_ai.usage.input_tokens"
_OUTPUT = b"gen_ai.usage.output_tokens"
_CACHE_READ = b"gen_ai.usage.cache_read.input_tokens"
_CACHE_WRITE = b"gen_ai.usage.cache_creation.input_tokens"
_REASONING = b"gen_ai.usage.reasoning.output_tokens"


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
