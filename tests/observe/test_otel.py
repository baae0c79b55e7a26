"""OpenTelemetry: one CLIENT span per call in the GenAI conventions, sent over OTLP/HTTP."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.gateway.harness import running_gateway
from tests.observe.conftest import chat
from tests.observe.otlp_receiver import otlp_receiver
from tokenomy.money import nanos_str

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
SPAN_KIND_CLIENT = 3  # opentelemetry.proto.trace.v1.Span.SpanKind
STATUS_ERROR = 2


@pytest.mark.parametrize("protocol", ["http/json", "http/protobuf"])
async def test_spans_reach_an_otlp_receiver(
    sqlite_url: str, upstream_keys: None, monkeypatch: pytest.MonkeyPatch, protocol: str
) -> None:
    async with otlp_receiver() as receiver:
        base = receiver.url.removesuffix("/v1/traces")
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", base)  # + /v1/traces, as specified
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-tenant=acme%20corp")
        monkeypatch.setenv("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test")
        monkeypatch.delenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", raising=False)
        monkeypatch.delenv("OTEL_SERVICE_NAME", raising=False)
        async with running_gateway(sqlite_url, sections={"otel": {"enabled": True}}) as h:
            headers = {
                "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01",
                "X-Tokenomy-Task": "task-9",
                "X-Tokenomy-Agent": "coder",
                "X-Tokenomy-Step": "act",
            }
            status, rid = await chat(h, headers=headers)
            assert status == 200
            status, _ = await chat(h, "claude-sonnet", stream=True)
            assert status == 200
            status, _ = await chat(h, "no-such-model")
            assert status == 404
            event = h.event(rid)
        # The gateway has stopped: its last spans were flushed to the receiver.
    wire = {"http/json": "application/json", "http/protobuf": "application/x-protobuf"}
    assert set(receiver.content_types) == {wire[protocol]}
    assert set(receiver.tenants) == {"acme corp"}
    by_name = {s.name: s for s in receiver.spans}
    assert set(by_name) == {"chat gpt-4o-mini", "chat claude-sonnet", "chat no-such-model"}
    span = by_name["chat gpt-4o-mini"]
    assert span.kind == SPAN_KIND_CLIENT
    assert span.trace_id == TRACE_ID and span.parent_span_id == PARENT_ID  # continued
    assert span.resource == {"service.name": "tokenomy", "deployment.environment": "test"}
    assert span.end_ns - span.start_ns == pytest.approx(event.latency_ms * 1e6, abs=1e6)
    a = span.attributes
    assert a["gen_ai.operation.name"] == "chat"
    assert a["gen_ai.provider.name"] == "openai"
    assert a["gen_ai.request.model"] == "gpt-4o-mini"
    assert a["gen_ai.response.model"] == "gpt-4o-mini"
    assert a["gen_ai.usage.input_tokens"] == event.usage.input_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == event.usage.output_tokens > 0
    assert a["gen_ai.usage.cache_read.input_tokens"] == event.usage.cached_tokens
    assert a["gen_ai.usage.reasoning.output_tokens"] == event.usage.reasoning_tokens
    assert a["gen_ai.conversation.id"] == "task-9"
    assert a["gen_ai.agent.name"] == "coder"
    assert a["tokenomy.team"] == "research" and a["tokenomy.agent"] == "coder"
    assert a["tokenomy.task"] == "task-9" and a["tokenomy.step"] == "act"
    assert a["tokenomy.location"] == "cloud"
    assert event.cost_nanos is not None
    assert a["tokenomy.cost_usd"] == nanos_str(event.cost_nanos)
    assert a["tokenomy.price_source"] == event.price_source
    assert a["tokenomy.estimated"] is False
    assert "error.type" not in a
    # No traceparent: a trace of its own. An error: error.type and an error status.
    streamed = by_name["chat claude-sonnet"]
    assert streamed.parent_span_id == "" and streamed.trace_id != TRACE_ID
    assert streamed.attributes["gen_ai.provider.name"] == "anthropic"
    failed = by_name["chat no-such-model"]
    assert failed.attributes["error.type"] == "model_not_found"
    assert failed.status_code == STATUS_ERROR


def test_off_costs_nothing(tmp_path: object) -> None:
    """Off (the default), OpenTelemetry is never imported and no middleware runs."""
    code = """
import sys
from tokenomy.config import parse_config
from tokenomy.gateway.app import build_app
app = build_app(parse_config({}), "sqlite:///:memory:")
assert not [m for m in sys.modules if m.startswith(("opentelemetry", "tokenomy.observe.otel"))]
assert len(app.middlewares) == 0, app.middlewares
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("headers", "parent"),
    [
        ({"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01"}, (TRACE_ID, PARENT_ID, "")),
        (  # upper case and spaces are read; tracestate travels with it (bounded)
            {"traceparent": f" 00-{TRACE_ID.upper()}-{PARENT_ID}-00 ", "tracestate": "a=1"},
            (TRACE_ID, PARENT_ID, "a=1"),
        ),
        ({"traceparent": f"00-{'0' * 32}-{PARENT_ID}-01"}, None),  # invalid: all-zero ids
        ({"traceparent": f"00-{TRACE_ID}-{'0' * 16}-01"}, None),
        # a later version may add fields; "ff" is invalid; version 00 has no more fields
        ({"traceparent": f"01-{TRACE_ID}-{PARENT_ID}-01-xyz"}, (TRACE_ID, PARENT_ID, "")),
        ({"traceparent": f"ff-{TRACE_ID}-{PARENT_ID}-01"}, None),
        ({"traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01-xyz"}, None),
        ({"traceparent": f"00-{TRACE_ID}-{PARENT_ID}"}, None),  # truncated
        ({"traceparent": "garbage"}, None),
        ({}, None),
    ],
)
def test_trace_context_is_continued_only_when_valid(
    headers: dict[str, str], parent: tuple[str, str, str] | None
) -> None:
    from tokenomy.observe.otel import _parent

    assert _parent(headers) == parent


def test_tracing_alone_keeps_aiohttp_access_logging_off() -> None:
    """Spans take the trace context from the call seam: aiohttp's per-request access
    logging (the response hook) is switched on only for the access log."""
    from tokenomy.config import parse_config
    from tokenomy.observe import prepare

    traced = prepare(parse_config({"otel": {"enabled": True}}))
    try:
        assert traced.otel is not None and traced.handler_args == {}
    finally:
        traced.otel.close()
    logged = prepare(parse_config({"otel": {"enabled": True}}), access_log="-")
    try:
        assert logged.handler_args["access_log_class"] is not None
    finally:
        assert logged.otel is not None
        logged.otel.close()
