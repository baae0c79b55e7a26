"""The request path: auth → parse → classify → route → reserve → forward → meter → price → record.

One ``Gateway`` object holds what every request needs (settings, key cache, price book,
ledger writer, HTTP session, router). ``handle`` runs one request end to end; whatever
happens, exactly one usage event is recorded for it. ``_forward`` makes the attempts of
the request's routing plan (``tokenomy.routing``; docs/routing.md): each attempt on one
deployment, with its own bridge, a stream held until its first content event.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from aiohttp import web

from tokenomy import clock
from tokenomy.budgets.engine import BudgetEngine, Demand, Reservation
from tokenomy.budgets.model import Budget
from tokenomy.config import Deployment, Model, Settings
from tokenomy.credentials import api_key
from tokenomy.errors import (
    BudgetExceeded,
    DataPolicyRefused,
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
from tokenomy.gateway.task_headers import task_headers
from tokenomy.gateway.wire_errors import (
    error_response,
    http_status,
    upstream_error_message,
    upstream_stream_error,
)
from tokenomy.ledger.writer import LedgerWriter, ledger_unavailable
from tokenomy.local.metering import offline_counts
from tokenomy.metering.stream import SSEParser
from tokenomy.metering.tokenizer import complete_usage
from tokenomy.money import nanos_str
from tokenomy.observe import Observers
from tokenomy.pricing import PriceBook
from tokenomy.routing import retry
from tokenomy.routing.router import Plan, Router
from tokenomy.sovereignty import Verdict, classify, parse_header
from tokenomy.tasks.office import TaskOffice
from tokenomy.wire import WIRES, Bridge, Endpoint, Relay, served_paths
from tokenomy.wire import bridge as bridge_for
from tokenomy.wire.base import DEFAULT_OUTPUT_CAP, MAX_TEXT_CHARS

log = logging.getLogger("tokenomy.gateway")

REQUEST_ID_HEADER = "x-tokenomy-request-id"
COST_HEADER = "x-tokenomy-cost-usd"
DEPLOYMENT_HEADER = "x-tokenomy-deployment"
LOCATION_HEADER = "x-tokenomy-location"
ATTEMPTS_HEADER = "x-tokenomy-attempts"
FALLBACK_HEADER = "x-tokenomy-fallback-reason"
# Bodies larger than this are classified off the event loop.
_CLASSIFY_INLINE_BYTES = 32_768
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
    bridge: Bridge | None = None  # chosen with the deployment, again for each attempt
    reservation: Reservation | None = None
    recorded: bool = False
    # The reservation's worst case (input tokens, output tokens, cost): journaled as the
    # call starts, and charged if the process dies before the call ends.
    worst: tuple[int, int, int | None] | None = None
    model: Model | None = None  # the configured model serving (after aliases, fallbacks)
    plan: Plan | None = None
    allowed: Callable[[Deployment], bool] | None = None  # the data policy (None: none)
    verdict: Verdict | None = None  # the data policy's verdict
    refusals: dict[str, str | None] | None = None  # per provider: why not (None: allowed)
    begun: bool = False  # the start record is journaled once per request
    budgets: list[Budget] | None = None  # the budgets reserved on (for re-reservations)
    committed_at: float = 0.0  # a stream's first content event (perf_counter)
    # Seconds spent waiting on upstreams (observe.timing), and since when a stream's wait
    # has been open (perf_counter; 0: none open): the gateway's own time is the rest.
    upstream_s: float = 0.0
    upstream_since: float = 0.0
    response_id: str = ""  # the upstream's response id (Responses stickiness)
    # The client's request headers, for the observers (OpenTelemetry reads ``traceparent``).
    client_headers: Mapping[str, str] | None = None


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
        self.tasks: TaskOffice | None = None  # per-task caps and the shredder (build_app)
        self.observers = Observers()  # metrics, traces, access log: set by observe.install
        self.router = Router(settings, prices)
        self.policy = settings.policy  # [policy] (tokenomy.sovereignty)
        # Without a restrictive policy no verdict changes where a call may go: no scan.
        self.scans_data = self.policy.active
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
            connector=connector,
            auto_decompress=True,
            skip_auto_headers=("User-Agent",),
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
            client_headers=request.headers,
        )
        headers = {REQUEST_ID_HEADER: rid}
        try:
            await self._admit(request, call)
            if not self.writer.accepting:  # a call we could not record is not served
                raise ledger_unavailable()
            if self.budgets.active:
                await self._reserve(call)
            if self.tasks is not None and call.event.task:  # per-task caps, fingerprints
                await self.tasks.admit(call)
            assert call.bridge is not None  # set by _admit
            if not call.bridge.forwards:
                return await self._answer(call, headers)
            return await self._forward(request, call, headers)
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
        _route_headers(ev, headers)
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
        # Lowercase lookups: multidict finds a lowercase name faster than a mixed-case one.
        ev.agent = header_text(h, "X-Tokenomy-Agent") if "x-tokenomy-agent" in h else ""
        ev.task, ev.parent_task = task_headers(h)  # and its aliases (tokenomy.tasks)
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
        resolved = self.router.resolve(model)
        if resolved is None:
            raise ModelNotFound(
                f"The model {model!r} does not exist or is not configured on "
                "this gateway. GET /v1/models lists the available models.",
                param="model",
            )
        cfg, matched = resolved
        call.body = body
        call.model = cfg
        if self.scans_data:
            await self._classify_data(request, call)
        elif "x-tokenomy-data-class" in request.headers:  # no policy: the label is recorded
            ev.data_class = parse_header(request.headers["x-tokenomy-data-class"])
        prev = body.get("previous_response_id")
        deps = self.router.candidates(
            cfg,
            model,
            matched,
            endpoint,
            task=ev.task,
            previous_response_id=prev if isinstance(prev, str) else "",
            allowed=call.allowed,
        )
        if not deps:
            self._unroutable(call, cfg, model, matched)
        plan = call.plan = Plan(self.router, cfg, deps)
        dep = plan.first(time.monotonic())
        if dep is None:
            raise UpstreamUnavailable(
                f"Every deployment of model {model!r} is failing (circuit breakers open); "
                "retry later.",
                headers={"retry-after": "5"},
            )
        self._use(call, dep)

    def _use(self, call: Call, dep: Deployment) -> None:
        """Make ``dep`` the deployment of the next attempt (its bridge, the event's fields)."""
        call.deployment = dep
        call.bridge = bridge_for(call.endpoint, dep.provider.kind)
        ev, p = call.event, dep.provider
        ev.provider, ev.upstream_model, ev.location, ev.region, ev.deployment = (
            p.name,
            dep.model,
            p.location,
            p.region,
            dep.name,
        )

    async def _classify_data(self, request: web.Request, call: Call) -> None:
        """The request's data class, and the data policy's filter of deployments."""
        assert call.body is not None
        ev, policy = call.event, self.policy
        header = request.headers.get("x-tokenomy-data-class")
        args = (call.endpoint, call.body, header, policy)
        if call.body_bytes > _CLASSIFY_INLINE_BYTES:  # a long prompt: off the event loop
            verdict = await asyncio.to_thread(classify, *args)
        else:
            verdict = classify(*args)
        ev.data_class = verdict.data_class
        refusals: dict[str, str | None] = {}
        org, team = ev.org, ev.team

        def allowed(dep: Deployment) -> bool:
            name = dep.provider.name
            if name not in refusals:
                refusals[name] = policy.refusal(verdict, dep.provider, org, team)
            return refusals[name] is None

        call.verdict, call.refusals, call.allowed = verdict, refusals, allowed

    def _unroutable(self, call: Call, cfg: Model, model: str, matched: str) -> None:
        """Raise why no deployment of ``cfg`` can serve this request."""
        endpoint = call.endpoint
        verdict = call.verdict
        if verdict is not None and self.router.candidates(cfg, model, matched, endpoint):
            # Each refusal already names the class, the provider and the rule.
            why = "; ".join(r for r in (call.refusals or {}).values() if r)
            raise DataPolicyRefused(
                f"No deployment of model {model!r} may receive this request (data class "
                f"{verdict.data_class!r}: {verdict.reason}): {why or 'none is allowed'}. "
                "It was sent nowhere."
            )
        upstream = WIRES[cfg.deployments[0].provider.kind]
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
        call.budgets = budgets
        model = call.model
        assert model is not None
        down = model.downgrade
        if down is not None and self.budgets.spent_share(budgets) >= down.at_share:
            self._downgrade(call, f"downgrade:budget_at_{down.at_share:.0%}")
        try:
            call.reservation = await self._admit_demand(budgets, await self._demand(call))
        except BudgetExceeded:
            # Rather a cheaper model than a refusal, if the model names one and the data
            # policy lets it serve.
            if not self._downgrade(call, "downgrade:budget_exceeded"):
                raise
            call.reservation = await self._admit_demand(budgets, await self._demand(call))

    async def _admit_demand(self, budgets: list[Budget], demand: Demand) -> Reservation:
        reservation = self.budgets.try_admit(budgets, demand)
        if reservation is None:  # a lease must come from the database first
            reservation = await self.budgets.admit(budgets, demand)
        return reservation

    async def _demand(self, call: Call) -> Demand:
        """The worst case of the call on its current deployment (also kept in ``worst``)."""
        body, dep, endpoint, model = call.body, call.deployment, call.endpoint, call.model
        assert body is not None and dep is not None and model is not None
        if not endpoint.billed:  # counted as a request by rate limits; no cost, no tokens
            call.worst = (0, 0, 0)
            return Demand(0, 0)
        input_tokens = call.worst[0] if call.worst is not None else None
        if input_tokens is None:
            input_tokens = endpoint.worst_case_input(body, call.body_bytes)
        if input_tokens is None:  # a long prompt: count it off the event loop
            input_tokens = await asyncio.to_thread(
                endpoint.worst_case_input, body, call.body_bytes, True
            )
            assert input_tokens is not None
        output_tokens = endpoint.set_output_cap(body, model, dep.provider.base_url)
        cost = self.prices.max_cost_nanos(dep, input_tokens, output_tokens, call.event.ts_ms)
        call.worst = (input_tokens, output_tokens, cost)
        return Demand(cost, input_tokens + output_tokens)

    def _downgrade(self, call: Call, reason: str) -> bool:
        """Serve from the model's ``downgrade.to`` instead, if an allowed deployment can."""
        model, plan = call.model, call.plan
        assert model is not None and plan is not None
        if model.downgrade is None:
            return False
        target = self.settings.models[model.downgrade.to]
        deps = self.router.candidates(
            target, target.name, target.name, call.endpoint, allowed=call.allowed
        )
        if not deps:
            return False
        plan.replace(target, deps)
        dep = plan.first(time.monotonic())
        if dep is None:
            return False
        call.model = target
        self._use(call, dep)
        call.event.fallback_reason = _add_reason(call.event.fallback_reason, reason)
        return True

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
        assert call.model is not None
        return bridge.request(body, dep.model, call.model, call.event.stream)

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
            after = headers.get("retry-after")
            raise UpstreamError(
                f"Upstream {dep.provider.name} returned HTTP {resp.status}: {message}",
                upstream_status=resp.status,
                upstream_body=raw,
                headers={"retry-after": after} if after and len(after) <= 64 else None,
            )
        return resp

    async def _send_first(
        self, call: Call, body: dict[str, Any], request: web.Request
    ) -> aiohttp.ClientResponse:
        """``_send`` cut at the deployment's ``ttft_timeout_s`` (a silent upstream)."""
        dep = call.deployment
        assert dep is not None
        if dep.ttft_timeout_s is None:
            return await self._send(call, body, request)
        try:
            async with asyncio.timeout(dep.ttft_timeout_s):
                return await self._send(call, body, request)
        except TimeoutError as exc:
            raise retry.FirstTokenTimeout(dep.provider.name, dep.ttft_timeout_s) from exc

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
        waiting = time.perf_counter()  # the upstream wait: sent until its body is read
        try:
            if call.deployment is not None and call.deployment.ttft_timeout_s is not None:
                resp = await self._send_first(call, upstream_body, request)
            else:
                resp = await self._send(call, upstream_body, request)
            try:
                raw = await resp.read()
            except TimeoutError as exc:
                raise UpstreamTimeout("Upstream timed out while sending the response.") from exc
            except aiohttp.ClientError as exc:
                raise UpstreamUnavailable(
                    f"Upstream connection failed mid-response: {exc}"
                ) from exc
            finally:
                resp.release()
        finally:
            call.upstream_s += time.perf_counter() - waiting
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
        response_id = data.get("id")
        if isinstance(response_id, str):
            call.response_id = response_id
        _route_headers(call.event, headers)
        out = dict(headers)
        if call.event.cost_nanos is not None:
            out[COST_HEADER] = nanos_str(call.event.cost_nanos)
        return web.Response(body=raw, status=200, content_type="application/json", headers=out)

    async def _stream(
        self, request: web.Request, call: Call, headers: dict[str, str]
    ) -> web.StreamResponse:
        bridge, dep = call.bridge, call.deployment
        assert bridge is not None and dep is not None
        upstream_body = self._upstream_body(call)
        relay = bridge.relay(call.body or {}, call.event.model)
        self._begin(call)
        parser = SSEParser()
        # Translated events not yet sent. Until the first content event nothing reaches the
        # client (neither the status line nor the start-up events): a failure before it can
        # still go to another deployment, or be answered as a proper HTTP error.
        out: list[bytes] = []
        rest: list[tuple[str, bytes]] = []  # events after the first content, same chunk
        done = False
        upstream: aiohttp.ClientResponse | None = None
        if not call.upstream_since:  # a stream's wait lasts until it is recorded
            call.upstream_since = time.perf_counter()
        try:
            async with asyncio.timeout(dep.ttft_timeout_s) as first_token:
                upstream = await self._send(call, upstream_body, request)
                if "json" in upstream.content_type:
                    raw = await upstream.read()
                    raise retry.StreamFailed(
                        f"Upstream {dep.provider.name} answered a stream request with a "
                        f"non-stream body: {upstream_error_message(raw)[0][:200]}"
                    )
                started = False
                while not (done or started):
                    chunk = await upstream.content.readany()
                    events = parser.feed(chunk) if chunk else parser.flush()
                    for i, (name, data) in enumerate(events):
                        piece, done = relay.event(name, data)
                        if piece:
                            out.append(piece)
                        if relay.meter.error is not None and not relay.meter.output_text():
                            raise _cut_short(relay, before_content=True)
                        if done:
                            break
                        if relay.content_started:
                            started, rest = True, events[i + 1 :]
                            break
                    if not (chunk or done or started):
                        raise _cut_short(relay, before_content=True)
        except BaseException as exc:
            if upstream is not None:
                upstream.close()
            if isinstance(exc, TimeoutError) and first_token.expired():
                assert dep.ttft_timeout_s is not None
                raise retry.FirstTokenTimeout(dep.provider.name, dep.ttft_timeout_s) from exc
            if isinstance(exc, Exception) and not isinstance(exc, RequestError):
                err = _stream_error(exc, call.event.id)
                if isinstance(err, UpstreamError) and not isinstance(err, UpstreamTimeout):
                    err = retry.StreamFailed(err.message)
                raise err from exc
            raise
        # Committed: from here on a failure is an error inside the stream.
        call.committed_at = now = time.perf_counter()
        call.event.ttft_ms = (now - call.started) * 1000
        _route_headers(call.event, headers)
        response = web.StreamResponse(
            status=200,
            headers={
                **headers,
                "Content-Type": "text/event-stream; charset=utf-8",
                "Cache-Control": "no-cache",
            },
        )
        status = 200
        try:
            await response.prepare(request)
            for name, data in rest:
                piece, done = relay.event(name, data)
                if piece:
                    out.append(piece)
                if done:
                    break
            if out:
                pending = b"".join(out)
                out.clear()
                await response.write(pending)
            if not done:
                async for chunk in upstream.content.iter_any():
                    for name, data in parser.feed(chunk):
                        piece, terminal = relay.event(name, data)
                        if piece:
                            out.append(piece)
                        if terminal:
                            done = True
                            break
                    if out:
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
        if relay.meter.id:
            call.response_id = relay.meter.id
        return response

    async def _forward(
        self, request: web.Request, call: Call, headers: dict[str, str]
    ) -> web.StreamResponse:
        """Attempts until one is served or none is left (docs/routing.md, "Failover")."""
        router, plan, ev = self.router, call.plan, call.event
        assert plan is not None
        while True:
            dep = call.deployment
            assert dep is not None
            breaker = router.breaker(dep)
            # Stats only where a strategy reads them (``fastest``, ``least-busy``).
            stats = router.stats(dep) if dep.name in router.measured else None
            ev.attempts += 1
            plan.made += 1
            started = time.perf_counter()
            if stats is not None:
                stats.in_flight += 1
            failure: RequestError | None = None
            try:
                if ev.stream:
                    response = await self._stream(request, call, headers)
                else:
                    response = await self._unary(request, call, headers)
            except RequestError as err:
                failure = err
            finally:
                if stats is not None:
                    stats.in_flight -= 1
            if failure is not None:
                now = time.monotonic()
                breaker.record(not retry.is_retryable(failure, plan.model.retry), now)
                pause = retry.retry_after_s(failure)
                if pause:  # other requests leave it alone meanwhile (if they have a choice)
                    breaker.cool(now + min(pause, retry.MAX_RETRY_AFTER_S))
                if not ev.usage.is_empty():  # the upstream served (and billed) this one
                    raise failure
                await self._next_deployment(call, dep, failure, now)
                continue
            # Served (a stream cut after its first content is an error on the ledger).
            ok = not ev.error_kind.startswith("upstream")
            breaker.record(ok, time.monotonic())
            if ok and ev.status == 200:
                if stats is not None:
                    end = time.perf_counter()
                    if ev.stream and call.committed_at:
                        stats.observe(
                            call.committed_at - started,
                            ev.usage.output_tokens,
                            end - call.committed_at,
                        )
                    else:
                        stats.observe(end - started, 0, 0.0)
                model = call.model
                if model is not None and len(model.deployments) > 1:
                    router.remember(model, dep, ev.task, call.response_id)
            return response

    async def _next_deployment(
        self, call: Call, failed: Deployment, err: RequestError, now: float
    ) -> None:
        """Move the call to its next attempt's deployment (after the backoff), or raise
        ``err`` when there is none. A deployment whose worst case the budgets refuse is
        skipped."""
        nxt = self._next_attempt(call, failed, err, now)
        unaffordable: set[str] = set()
        while nxt is not None and nxt[0].name not in unaffordable:
            dep, delay, reason = nxt
            if delay > 0:
                await asyncio.sleep(delay)
            self._use(call, dep)
            try:
                if call.reservation is not None:
                    await self._rereserve(call)
            except BudgetExceeded:
                unaffordable.add(dep.name)
                plan = call.plan
                assert plan is not None
                step = plan.next(time.monotonic())
                nxt = (step[0], step[1], reason) if step is not None else None
                continue
            call.event.fallback_reason = _add_reason(call.event.fallback_reason, reason)
            return
        self._use(call, failed)  # the event names the deployment whose failure is answered
        raise err

    def _next_attempt(
        self, call: Call, dep: Deployment, err: RequestError, now: float
    ) -> tuple[Deployment, float, str] | None:
        """The deployment of the next attempt, the wait before it and why; None: answer ``err``."""
        plan = call.plan
        assert plan is not None
        model = plan.model
        if retry.is_context_window(err):
            target_name = model.context_window_fallback
            if target_name is None or target_name == model.name:
                return None
            target = self.settings.models[target_name]
            deps = self.router.candidates(
                target, target.name, target.name, call.endpoint, allowed=call.allowed
            )
            plan.replace(target, deps)
            first = plan.first(now)
            if first is None:
                return None
            call.model = target
            return first, 0.0, "context_window"
        if not retry.is_retryable(err, model.retry):
            return None  # other 4xx (a content policy refusal among them): one attempt
        plan.failed(dep, err, now)
        nxt = plan.next(now)
        if nxt is None:
            return None
        return nxt[0], nxt[1], retry.reason(err)

    async def _rereserve(self, call: Call) -> None:
        """The reservation follows the deployment: re-priced, the old one released."""
        old, budgets = call.reservation, call.budgets
        assert old is not None and budgets is not None
        before = call.worst
        demand = await self._demand(call)
        if call.worst == before:
            return
        call.reservation = await self._admit_demand(budgets, demand)
        self.budgets.settle(old, 0, 0, requests=0)  # nothing was spent on the failed attempt

    def _begin(self, call: Call) -> None:
        """Journal the call as started (with its worst case) just before it goes upstream."""
        if call.begun:  # journaled at the first attempt (see docs/routing.md)
            return
        call.begun = True
        worst = call.worst
        if worst is None and not call.endpoint.billed:
            worst = (0, 0, 0)
        if worst is None:  # no budget reserved for it: a bound that costs nothing to compute
            body, dep = call.body or {}, call.deployment
            assert dep is not None  # set by _admit
            out = call.endpoint.output_cap(body)
            if out is None:
                assert call.model is not None
                out = call.model.max_output_tokens or DEFAULT_OUTPUT_CAP
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
        # A local deployment's own tokenizer where it names one (tokenomy.local.metering).
        counts = offline_counts(call.deployment)
        # Tokenising a long prompt takes milliseconds: keep it off the event loop.
        usage, estimated = await asyncio.to_thread(
            complete_usage,
            reported,
            complete=complete,
            estimate_input_tokens=counts.input_tokens(endpoint, body),
            output_text=output_text,
            count_output=counts.output_tokens,
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
        now = time.perf_counter()
        ev.latency_ms = round((now - call.started) * 1000, 3)
        self.writer.submit(ev)
        if self.tasks is not None and ev.task:
            self.tasks.finish(ev)  # settles the task's cap hold; the shredder sees the call
        if self.observers:  # observe: metrics, traces, access log, live stats
            waited = call.upstream_s
            if call.upstream_since:
                waited += now - call.upstream_since
            self.observers.on_event(ev, waited, call.client_headers)


def _cut_short(relay: Relay, *, before_content: bool = False) -> UpstreamError:
    """Why a stream ended before its terminal event (before its first content: retryable)."""
    error = getattr(relay.meter, "error", None)
    if error:
        message = upstream_stream_error(error)  # scrubbed of secrets
        if before_content:
            return retry.StreamFailed(f"Upstream reported an error in the stream: {message}")
        return UpstreamError(f"Upstream reported an error in the stream: {message}")
    if before_content:
        return retry.StreamFailed("Upstream closed the stream before its first content event.")
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


def _add_reason(current: str, reason: str) -> str:
    """The event's ``fallback_reason``: every distinct reason, in order."""
    if not current:
        return reason
    if reason in current.split(","):
        return current
    return f"{current},{reason}"[:200]


def _route_headers(ev: UsageEvent, headers: dict[str, str]) -> None:
    """Where the request went: ``x-tokenomy-deployment``, ``-location``, ``-attempts``, and
    ``-fallback-reason`` when another deployment or model served."""
    if ev.deployment:
        headers[DEPLOYMENT_HEADER] = ev.deployment
        headers[LOCATION_HEADER] = ev.location
    if ev.attempts:
        headers[ATTEMPTS_HEADER] = str(ev.attempts)
    if ev.fallback_reason:
        headers[FALLBACK_HEADER] = ev.fallback_reason
