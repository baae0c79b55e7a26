"""The request path: auth → parse → resolve model → forward → meter → price → record.

One ``Gateway`` object holds what every request needs (settings, key cache, price book,
ledger writer, HTTP session). ``handle`` runs one request end to end; whatever happens,
exactly one usage event is recorded for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from tokenomy import clock
from tokenomy.budgets.engine import BudgetEngine, Demand, Reservation
from tokenomy.config import Deployment, Settings
from tokenomy.credentials import api_key
from tokenomy.errors import (
    InternalError,
    InvalidRequest,
    ModelNotFound,
    RequestError,
    UpstreamError,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from tokenomy.events import Step, Usage, UsageEvent
from tokenomy.gateway.auth import KeyCache
from tokenomy.gateway.bodies import read_body
from tokenomy.gateway.requests import FORWARDED_HEADERS, check_body_depth, header_text
from tokenomy.gateway.wire_errors import (
    error_response,
    http_status,
    upstream_error_message,
    upstream_stream_error,
)
from tokenomy.ledger.writer import LedgerWriter, ledger_unavailable
from tokenomy.metering.stream import SSEParser
from tokenomy.metering.tokenizer import complete_usage
from tokenomy.money import nanos_str
from tokenomy.pricing import PriceBook
from tokenomy.wire import WIRES, Bridge, Endpoint, Relay, served_paths
from tokenomy.wire import bridge as bridge_for
from tokenomy.wire.base import DEFAULT_OUTPUT_CAP, MAX_TEXT_CHARS

log = logging.getLogger("tokenomy.gateway")

REQUEST_ID_HEADER = "x-tokenomy-request-id"
COST_HEADER = "x-tokenomy-cost-usd"
_STEPS = frozenset(s.value for s in Step)
CLIENT_CLOSED = 499  # nginx's convention for "client closed the connection"


@dataclass(slots=True)
class Call:
    """Per-request state shared by the steps of the path."""

    event: UsageEvent
    started: float
    endpoint: Endpoint
    body: dict[str, Any] | None = None
    body_bytes: int = 0
    deployment: Deployment | None = None
    bridge: Bridge | None = None  # chosen once, with the deployment
    reservation: Reservation | None = None
    recorded: bool = False
    # The reservation's worst case (input tokens, output tokens, cost): journaled as the
    # call starts, and charged if the process dies before the call ends.
    worst: tuple[int, int, int | None] | None = None


def _request_id(now_ms: int) -> str:
    # Time-ordered (millisecond prefix): ledger inserts append to the primary-key index
    # instead of landing at random places in it.
    return f"req_{now_ms:012x}{random.getrandbits(64):016x}"


class Gateway:
    def __init__(
        self,
        settings: Settings,
        keys: KeyCache,
        prices: PriceBook,
        writer: LedgerWriter,
        budgets: BudgetEngine,
    ) -> None:
        self.settings = settings
        self.keys = keys
        self.prices = prices
        self.writer = writer
        self.budgets = budgets
        self.max_body = settings.gateway.max_body_bytes
        self.session: aiohttp.ClientSession | None = None
        g = settings.gateway
        self._unary_timeout = aiohttp.ClientTimeout(
            total=g.request_timeout_s, sock_connect=g.connect_timeout_s
        )
        self._stream_timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=g.connect_timeout_s, sock_read=g.request_timeout_s
        )

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, enable_cleanup_closed=True)
        self.session = aiohttp.ClientSession(
            connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",)
        )

    async def close(self) -> None:
        if self.session is not None:
            await self.session.close()

    # -- entry point ---------------------------------------------------------------------
    async def handle(self, request: web.Request, endpoint: Endpoint) -> web.StreamResponse:
        now_ms = clock.now_ms()
        rid = _request_id(now_ms)
        call = Call(
            UsageEvent(
                id=rid,
                ts_ms=now_ms,
                api_format=endpoint.wire.name,
                endpoint=endpoint.name,
                model="",
                status=0,
            ),
            time.perf_counter(),
            endpoint,
        )
        headers = {REQUEST_ID_HEADER: rid}
        try:
            await self._admit(request, call)
            if not self.writer.accepting:  # a call we could not record is not served
                raise ledger_unavailable()
            if self.budgets.active:
                await self._reserve(call)
            assert call.bridge is not None  # set by _admit
            if not call.bridge.forwards:
                return await self._answer(call, headers)
            if call.event.stream:
                return await self._stream(request, call, headers)
            return await self._unary(request, call, headers)
        except RequestError as err:
            return self._fail(call, err, headers)
        except Exception as exc:  # a bug: answer and record it, never lose the event
            log.exception("internal error in request %s", rid)
            return self._fail(
                call, InternalError(f"internal gateway error ({type(exc).__name__})"), headers
            )
        except asyncio.CancelledError:
            # Shutdown gave up waiting for this request. The upstream may still bill it, so
            # the reservation settles at its worst case (cost unknown), and it is recorded.
            if not call.recorded:
                call.event.error_kind = "cancelled"
                self._record(call, CLIENT_CLOSED)
            raise

    def _fail(self, call: Call, err: RequestError, headers: dict[str, str]) -> web.Response:
        ev = call.event
        ev.error_kind = err.error_kind
        ev.error_message = err.message[:1000]
        if ev.cost_nanos is None:
            # A request that failed without using a token cost nothing (and must not keep
            # its budget reservation as if it had cost the worst case).
            if ev.usage.is_empty():
                ev.cost_nanos = 0
            else:
                self._price(call)
        self._record(call, http_status(err))
        return error_response(call.endpoint.wire, err, headers)

    # -- steps ---------------------------------------------------------------------------
    async def _admit(self, request: web.Request, call: Call) -> None:
        ev = call.event
        principal = await self.keys.authenticate(api_key(request.headers))
        ev.key_id, ev.org, ev.team, ev.user = (
            principal.key_id,
            principal.org,
            principal.team,
            principal.user,
        )
        h = request.headers
        # Everything the event records is checked before the upstream is called: once it
        # has answered, nothing may keep the call from the ledger (see requests.py).
        ev.agent = header_text(h, "X-Tokenomy-Agent")
        ev.task = header_text(h, "X-Tokenomy-Task")
        for name in FORWARDED_HEADERS:
            header_text(h, name, None)
        step = h.get("x-tokenomy-step", "").lower()
        if step and step not in _STEPS:
            raise InvalidRequest(
                f"X-Tokenomy-Step must be one of {', '.join(sorted(_STEPS))}; got {step!r}",
                param="X-Tokenomy-Step",
            )
        ev.step = step
        body, call.body_bytes = await self._read_json(request)
        if isinstance(body.get("model"), str):
            # Recorded even if the body is invalid otherwise (storable: NUL dropped, capped).
            ev.model = body["model"][:MAX_TEXT_CHARS].replace("\x00", "")
        endpoint = call.endpoint
        model = endpoint.validate(body)
        ev.model = model
        ev.stream = body.get("stream") is True
        endpoint.wire.record_caller(body, ev)
        cfg = self.settings.models.get(model)
        if cfg is None:
            raise ModelNotFound(
                f"The model {model!r} does not exist or is not configured on "
                "this gateway. GET /v1/models lists the available models.",
                param="model",
            )
        dep = cfg.deployments[0]
        call.deployment = dep
        ev.provider, ev.upstream_model, ev.location = (
            dep.provider.name,
            dep.model,
            dep.provider.location,
        )
        call.body = body
        call.bridge = bridge_for(endpoint, dep.provider.kind)
        if call.bridge is None:
            upstream = WIRES[dep.provider.kind]
            raise InvalidRequest(
                f"The {endpoint.name} endpoint cannot be served by the {upstream.title} "
                f"deployment of model {model!r}; it serves {', '.join(served_paths(upstream))}."
            )

    async def _reserve(self, call: Call) -> None:
        """Reserve the request's worst case on every budget and rate limit that applies."""
        ev = call.event
        budgets = self.budgets.budgets_for(ev.org, ev.team, ev.user, ev.key_id, ev.agent)
        if not budgets:
            return
        body, dep, endpoint = call.body, call.deployment, call.endpoint
        assert body is not None and dep is not None
        if not endpoint.billed:  # counted as a request by rate limits; no cost, no tokens
            demand = Demand(0, 0)
            call.worst = (0, 0, 0)
        else:
            input_tokens = endpoint.worst_case_input(body, call.body_bytes)
            if input_tokens is None:  # a long prompt: count it off the event loop
                input_tokens = await asyncio.to_thread(
                    endpoint.worst_case_input, body, call.body_bytes, True
                )
                assert input_tokens is not None
            output_tokens = endpoint.set_output_cap(
                body, self.settings.models[ev.model], dep.provider.base_url
            )
            cost = self.prices.max_cost_nanos(dep, input_tokens, output_tokens, ev.ts_ms)
            demand = Demand(cost, input_tokens + output_tokens)
            call.worst = (input_tokens, output_tokens, cost)
        reservation = self.budgets.try_admit(budgets, demand)
        if reservation is None:  # a lease must come from the database first
            reservation = await self.budgets.admit(budgets, demand)
        call.reservation = reservation

    async def _read_json(self, request: web.Request) -> tuple[dict[str, Any], int]:
        raw = await read_body(request, self.max_body)  # the limit holds after inflating
        if not raw:
            raise InvalidRequest("Request body is empty; expected a JSON object.")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidRequest(f"Request body is not valid JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise InvalidRequest("Request body must be a JSON object.")
        check_body_depth(raw, body)  # the body is re-serialized for the upstream
        return body, len(raw)

    def _upstream_body(self, call: Call) -> dict[str, Any]:
        """The upstream's body, translated by the request's bridge when formats differ."""
        dep, body, bridge = call.deployment, call.body, call.bridge
        assert dep is not None and body is not None and bridge is not None  # set by _admit
        return bridge.request(
            body, dep.model, self.settings.models[call.event.model], call.event.stream
        )

    async def _send(
        self, call: Call, body: dict[str, Any], request: web.Request
    ) -> aiohttp.ClientResponse:
        dep, bridge = call.deployment, call.bridge
        assert dep is not None and bridge is not None and self.session is not None
        wire = bridge.upstream.wire
        try:
            resp = await self.session.post(
                wire.url(dep.provider, bridge.upstream),
                data=orjson.dumps(body),
                headers=wire.headers(dep.provider, request.headers),
                timeout=self._stream_timeout if call.event.stream else self._unary_timeout,
            )
        except TimeoutError as exc:
            raise UpstreamTimeout(f"Upstream {dep.provider.name} did not answer in time.") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"Cannot reach upstream {dep.provider.name}: {exc}") from exc
        headers = resp.headers
        call.event.upstream_request_id = (
            headers.get("x-request-id") or headers.get("request-id") or ""
        )
        if resp.status >= 400:
            try:
                raw = await resp.read()
            except (aiohttp.ClientError, TimeoutError):
                raw = b""
            finally:
                resp.release()
            message, _, _ = upstream_error_message(raw)
            raise UpstreamError(
                f"Upstream {dep.provider.name} returned HTTP {resp.status}: {message}",
                upstream_status=resp.status,
                upstream_body=raw,
            )
        return resp

    async def _answer(self, call: Call, headers: dict[str, str]) -> web.Response:
        """A call the gateway answers itself (a local token count): recorded, not billed."""
        bridge, body = call.bridge, call.body
        assert bridge is not None and body is not None  # set by _admit
        # Tokenising a long prompt takes milliseconds: keep it off the event loop.
        data, extra = await asyncio.to_thread(bridge.answer, body)
        call.event.cost_nanos = 0
        self._record(call, 200)
        out = {**headers, **extra, COST_HEADER: nanos_str(0)}
        return web.Response(
            body=orjson.dumps(data), status=200, content_type="application/json", headers=out
        )

    async def _unary(
        self, request: web.Request, call: Call, headers: dict[str, str]
    ) -> web.Response:
        bridge = call.bridge
        assert bridge is not None
        upstream_body = self._upstream_body(call)
        self._begin(call)
        resp = await self._send(call, upstream_body, request)
        try:
            raw = await resp.read()
        except TimeoutError as exc:
            raise UpstreamTimeout("Upstream timed out while sending the response.") from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable(f"Upstream connection failed mid-response: {exc}") from exc
        finally:
            resp.release()
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise UpstreamError(f"Upstream returned invalid JSON: {raw[:200]!r}") from exc
        if not isinstance(data, dict):
            raise UpstreamError("Upstream returned JSON that is not an object.")
        usage = bridge.upstream.usage(data)
        if usage is None:
            text = bridge.upstream.response_text(data)
            usage = await self._complete_usage(call, None, False, text)
        # The usage is on the event before the translation runs: should translating the
        # upstream's answer ever fail, the call is still recorded and charged for it.
        call.event.usage = usage
        translated = bridge.response(data, call.event.model, call.body or {})
        if translated is not None:
            raw = translated
        self._price(call)
        self._record(call, 200)
        out = dict(headers)
        if call.event.cost_nanos is not None:
            out[COST_HEADER] = nanos_str(call.event.cost_nanos)
        return web.Response(body=raw, status=200, content_type="application/json", headers=out)

    async def _stream(
        self, request: web.Request, call: Call, headers: dict[str, str]
    ) -> web.StreamResponse:
        bridge = call.bridge
        assert bridge is not None
        upstream_body = self._upstream_body(call)
        relay = bridge.relay(call.body or {}, call.event.model)
        self._begin(call)
        upstream = await self._send(call, upstream_body, request)
        response = web.StreamResponse(
            status=200,
            headers={
                **headers,
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            },
        )
        status = 200
        # Translated events of the current chunk not yet sent: an error later in the same
        # chunk must not swallow them (a Responses client needs its response.created).
        out: list[bytes] = []
        try:
            await response.prepare(request)
            parser = SSEParser()
            done = False
            async for chunk in upstream.content.iter_any():
                for name, data in parser.feed(chunk):
                    piece, terminal = relay.event(name, data)
                    if piece:
                        out.append(piece)
                    if terminal:
                        done = True
                        break
                if out:
                    if call.event.ttft_ms is None:
                        call.event.ttft_ms = (time.perf_counter() - call.started) * 1000
                    pending = b"".join(out)
                    out.clear()
                    await response.write(pending)
                if done:
                    break
            if not done:
                # Some servers omit the blank line after their last event (``data: [DONE]``).
                for name, data in parser.flush():
                    piece, done = relay.event(name, data)
                    if piece:
                        await response.write(piece)
                    if done:
                        break
            if not done:
                raise _cut_short(relay)
            await self._finish_stream(call, relay, complete=True, status=200)
            await response.write(relay.tail())
            await response.write_eof()
        except ConnectionResetError:
            # The client went away: stop reading upstream, bill what was produced so far
            # (exactly, when the upstream had already reported its final usage).
            status = CLIENT_CLOSED
            call.event.error_kind = "client_disconnected"
            await self._finish_stream(call, relay, complete=True, status=status)
        except asyncio.CancelledError:
            status = CLIENT_CLOSED
            call.event.error_kind = "cancelled"
            await self._finish_stream(call, relay, complete=True, status=status)
            raise
        except Exception as exc:
            # Headers are sent: the error goes into the stream, in the client's format.
            err = _stream_error(exc, call.event.id)
            call.event.error_kind = err.error_kind
            call.event.error_message = err.message[:1000]
            await self._finish_stream(call, relay, complete=False, status=200)
            with contextlib.suppress(ConnectionResetError):
                await response.write(b"".join(out) + relay.error(err.message))
                await response.write_eof()
        finally:
            if relay.terminal_seen:
                upstream.release()
            else:
                upstream.close()  # unread rest: the connection cannot be reused
        return response

    def _begin(self, call: Call) -> None:
        """Journal the call as started (with its worst case) just before it goes upstream."""
        worst = call.worst
        if worst is None and not call.endpoint.billed:
            worst = (0, 0, 0)
        if worst is None:  # no budget reserved for it: a bound that costs nothing to compute
            body, dep = call.body or {}, call.deployment
            assert dep is not None  # set by _admit
            out = call.endpoint.output_cap(body)
            if out is None:
                out = self.settings.models[call.event.model].max_output_tokens
                out = out or DEFAULT_OUTPUT_CAP
            cost = self.prices.max_cost_nanos(dep, call.body_bytes, out, call.event.ts_ms)
            worst = (call.body_bytes, out, cost)
        holds = (
            [(t.budget.id, t.period_start, amount) for t, amount in call.reservation.holds]
            if call.reservation is not None
            else ()
        )
        self.writer.begin(call.event, *worst, holds=holds)

    async def _finish_stream(
        self, call: Call, relay: Relay, *, complete: bool, status: int
    ) -> None:
        if call.recorded:
            return
        call.event.usage = await self._complete_usage(
            call, relay.usage(), complete and relay.usage_complete, relay.output_text()
        )
        self._price(call)
        self._record(call, status)

    async def _complete_usage(
        self, call: Call, reported: Usage | None, complete: bool, output_text: str
    ) -> Usage:
        """The provider's usage; where it is missing or cut short, counted offline and flagged."""
        if reported is not None and complete:
            return reported
        body = call.body or {}
        endpoint = call.endpoint
        # Tokenising a long prompt takes milliseconds: keep it off the event loop.
        usage, estimated = await asyncio.to_thread(
            complete_usage,
            reported,
            complete=complete,
            estimate_input_tokens=lambda: endpoint.estimate_input(body),
            output_text=output_text,
        )
        call.event.estimated = estimated
        cap = endpoint.output_cap(body)
        if estimated and cap is not None and usage.output_tokens > cap:
            # The upstream stops at the cap in its own tokenizer; ours may count more.
            usage.output_tokens = cap
            usage.reasoning_tokens = min(usage.reasoning_tokens, cap)
        return usage

    def _price(self, call: Call) -> None:
        dep = call.deployment
        if dep is None:
            return
        priced = self.prices.price(dep, call.event.usage, call.event.ts_ms)
        call.event.cost_nanos = priced.cost_nanos
        call.event.price_source = priced.source

    def _record(self, call: Call, status: int) -> None:
        if call.recorded:
            return
        call.recorded = True
        ev = call.event
        if call.reservation is not None:  # every exit path passes here exactly once
            self.budgets.settle(call.reservation, ev.cost_nanos, ev.usage.total_tokens)
        ev.status = status
        ev.latency_ms = round((time.perf_counter() - call.started) * 1000, 3)
        self.writer.submit(ev)


def _cut_short(relay: Relay) -> UpstreamError:
    """Why a stream ended before its terminal event."""
    error = getattr(relay.meter, "error", None)
    if error:
        message = upstream_stream_error(error)  # scrubbed of secrets
        return UpstreamError(f"Upstream reported an error in the stream: {message}")
    return UpstreamUnavailable("Upstream closed the stream before it was complete.")


def _stream_error(exc: Exception, request_id: str) -> RequestError:
    if isinstance(exc, RequestError):
        return exc
    if isinstance(exc, TimeoutError):
        return UpstreamTimeout("Upstream stream timed out.")
    if isinstance(exc, aiohttp.ClientError):
        return UpstreamUnavailable(f"Upstream stream failed: {exc}")
    if isinstance(exc, orjson.JSONDecodeError):
        return UpstreamError(f"Upstream sent an invalid stream event: {exc}")
    log.exception("internal error in stream %s", request_id, exc_info=exc)
    return InternalError(f"internal gateway error ({type(exc).__name__})")
