"""OTLP's JSON shape (as built by ``otel.py``) → binary protobuf, for ``http/protobuf``.

Needs ``opentelemetry-proto`` (the ``tokenomy[otel]`` extra).
"""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status


def _value(v: dict[str, Any]) -> AnyValue:
    if "boolValue" in v:
        return AnyValue(bool_value=v["boolValue"])
    if "intValue" in v:
        return AnyValue(int_value=int(v["intValue"]))
    return AnyValue(string_value=v["stringValue"])


def _attrs(attrs: list[dict[str, Any]]) -> list[KeyValue]:
    return [KeyValue(key=a["key"], value=_value(a["value"])) for a in attrs]


def _span(s: dict[str, Any]) -> Span:
    span = Span(
        trace_id=bytes.fromhex(s["traceId"]),
        span_id=bytes.fromhex(s["spanId"]),
        parent_span_id=bytes.fromhex(s.get("parentSpanId", "")),
        trace_state=s.get("traceState", ""),
        name=s["name"],
        kind=s["kind"],
        start_time_unix_nano=int(s["startTimeUnixNano"]),
        end_time_unix_nano=int(s["endTimeUnixNano"]),
        attributes=_attrs(s["attributes"]),
    )
    if "status" in s:
        span.status.CopyFrom(Status(code=s["status"]["code"], message=s["status"]["message"]))
    return span


def encode(resource_spans: list[dict[str, Any]]) -> bytes:
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=_attrs(rs["resource"]["attributes"])),
                scope_spans=[
                    ScopeSpans(
                        scope=InstrumentationScope(name=ss["scope"]["name"]),
                        spans=[_span(s) for s in ss["spans"]],
                    )
                    for ss in rs["scopeSpans"]
                ],
            )
            for rs in resource_spans
        ]
    )
    data: bytes = request.SerializeToString()
    return data
