"""A small OTLP/HTTP trace receiver: collects the spans POSTed to /v1/traces, as binary
protobuf or as JSON (an OTLP/HTTP server must accept both)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from tests.ports import unused_port


def _value(v: AnyValue) -> Any:
    kind = v.WhichOneof("value")
    return getattr(v, kind) if kind else None


def _json_value(v: dict[str, Any]) -> Any:
    """An OTLP/JSON AnyValue (64-bit integers may come as strings, per proto3 JSON)."""
    if "intValue" in v:
        return int(v["intValue"])
    if "boolValue" in v:
        return bool(v["boolValue"])
    if "doubleValue" in v:
        return float(v["doubleValue"])
    return v["stringValue"]


def _from_json(data: dict[str, Any]) -> list[Span]:
    out = []
    for rs in data["resourceSpans"]:
        resource = {a["key"]: _json_value(a["value"]) for a in rs["resource"]["attributes"]}
        for ss in rs["scopeSpans"]:
            for s in ss["spans"]:
                out.append(
                    Span(
                        s["name"],
                        int(s["kind"]),
                        s["traceId"],
                        s["spanId"],
                        s.get("parentSpanId", ""),
                        int(s["startTimeUnixNano"]),
                        int(s["endTimeUnixNano"]),
                        int(s.get("status", {}).get("code", 0)),
                        {a["key"]: _json_value(a["value"]) for a in s["attributes"]},
                        resource,
                    )
                )
    return out


@dataclass
class Span:
    name: str
    kind: int
    trace_id: str
    span_id: str
    parent_span_id: str
    start_ns: int
    end_ns: int
    status_code: int
    attributes: dict[str, Any]
    resource: dict[str, Any]


@dataclass
class Receiver:
    url: str  # the traces endpoint (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT)
    spans: list[Span] = field(default_factory=list)
    content_types: list[str] = field(default_factory=list)
    tenants: list[str] = field(default_factory=list)  # the x-tenant header of each export


@asynccontextmanager
async def otlp_receiver() -> AsyncIterator[Receiver]:
    port = unused_port()
    receiver = Receiver(f"http://127.0.0.1:{port}/v1/traces")

    async def traces(request: web.Request) -> web.Response:
        receiver.content_types.append(request.content_type)
        receiver.tenants.append(request.headers.get("x-tenant", ""))
        if request.content_type == "application/json":
            receiver.spans += _from_json(await request.json())
            return web.json_response({})
        req = ExportTraceServiceRequest()
        req.ParseFromString(await request.read())
        for rs in req.resource_spans:
            resource = {a.key: _value(a.value) for a in rs.resource.attributes}
            for ss in rs.scope_spans:
                for s in ss.spans:
                    receiver.spans.append(
                        Span(
                            s.name,
                            s.kind,
                            s.trace_id.hex(),
                            s.span_id.hex(),
                            s.parent_span_id.hex(),
                            s.start_time_unix_nano,
                            s.end_time_unix_nano,
                            s.status.code,
                            {a.key: _value(a.value) for a in s.attributes},
                            resource,
                        )
                    )
        body = ExportTraceServiceResponse().SerializeToString()
        return web.Response(body=body, content_type="application/x-protobuf")

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield receiver
    finally:
        await runner.cleanup()
