"""The OpenAI wire format through the gateway, driven by the official ``openai`` SDK.

Every test is a promise of the README / issue 2: what the client gets back is what the
upstream sent (minus what the client did not ask for), and the ledger event carries the
exact usage, the attribution, and the price genai-prices itself computes.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import genai_prices
import openai
import pytest

from tests.fakes import FakeUsage
from tests.gateway.harness import Harness
from tokenomy.events import Usage, UsageEvent
from tokenomy.money import usd_to_nanos
from tokenomy.pricing.catalog import ms_to_datetime

MESSAGES: list[Any] = [
    {"role": "system", "content": "You are terse."},
    {"role": "user", "content": "What is the capital of France?"},
]
PROMPT_WORDS = 9  # the fakes count one word as one token
REPLY = "This is a fake reply to: You are terse. What is the capital of France?"
REPLY_WORDS = 15
REQUEST_ID = "x-tokenomy-request-id"
COST = "x-tokenomy-cost-usd"


@pytest.fixture
async def client(gw: Harness) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=gw.openai_base, api_key=gw.key, max_retries=0) as c:
        yield c


def catalog_price(usage: Usage, model: str, ts_ms: int) -> genai_prices.types.PriceCalculation:
    """genai-prices' own price of ``usage`` (tokenomy convention) for an OpenAI model."""
    return genai_prices.calc_price(
        genai_prices.Usage(
            input_tokens=usage.input_tokens,
            cache_read_tokens=usage.cached_tokens,
            cache_write_tokens=usage.cache_write_tokens,
            output_tokens=usage.output_tokens,
            output_reasoning_tokens=usage.reasoning_tokens,
        ),
        model,
        provider_id="openai",
        genai_request_timestamp=ms_to_datetime(ts_ms),
    )


def assert_catalog_priced(ev: UsageEvent, expected: Usage, model: str) -> None:
    """The event's cost and price source are genai-prices' for ``expected`` usage."""
    calc = catalog_price(expected, model, ev.ts_ms)
    assert ev.cost_nanos == usd_to_nanos(calc.total_price)
    assert ev.cost_nanos is not None and ev.cost_nanos > 0
    assert ev.price_source == (
        f"genai-prices {genai_prices.__version__}:{calc.provider.id}/{calc.model.id}"
    )


def assert_cost_header(header: str, ev: UsageEvent) -> None:
    """The header is an exact decimal equal to the recorded nano-USD (and not a float)."""
    assert "e" not in header.lower()
    assert ev.cost_nanos is not None
    assert Decimal(header) * 1_000_000_000 == ev.cost_nanos


def chat_usage(resp_usage: Any) -> Usage:
    """The usage an OpenAI chat/completions response reports, in tokenomy's convention."""
    details = resp_usage.prompt_tokens_details
    out_details = resp_usage.completion_tokens_details
    return Usage(
        input_tokens=resp_usage.prompt_tokens,
        cached_tokens=details.cached_tokens if details else 0,
        output_tokens=resp_usage.completion_tokens,
        reasoning_tokens=out_details.reasoning_tokens if out_details else 0,
    )


# ==================================================================== chat, non-stream


async def test_chat_non_stream_records_usage_attribution_headers_and_cost(
    gw: Harness, client: openai.AsyncOpenAI
) -> None:
    gw.openai.usage = FakeUsage(cached_tokens=3)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        user="end-user-7",
        metadata={"ticket": "T-1", "tenant": "blue"},
        extra_headers={
            "X-Tokenomy-Agent": "planner",
            "X-Tokenomy-Task": "task-42",
            "X-Tokenomy-Step": "plan",
        },
    )
    resp = raw.parse()
    assert resp.choices[0].message.content == REPLY
    assert resp.usage is not None
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (
        PROMPT_WORDS + 3,
        REPLY_WORDS,
    )

    rid = raw.headers[REQUEST_ID]
    ev = gw.event(rid)
    assert ev.id == rid
    assert ev.usage == chat_usage(resp.usage)
    assert not ev.estimated
    (key,) = gw.store.list_keys()
    assert (ev.org, ev.team, ev.user, ev.key_id) == ("acme", "research", "alice", key.key_id)
    assert (ev.agent, ev.task, ev.step) == ("planner", "task-42", "plan")
    assert ev.end_user == "end-user-7"
    assert ev.metadata == {"ticket": "T-1", "tenant": "blue"}
    assert (ev.api_format, ev.endpoint, ev.model, ev.stream) == (
        "openai",
        "chat.completions",
        "gpt-4o-mini",
        False,
    )
    assert (ev.provider, ev.upstream_model, ev.location) == ("oai", "gpt-4o-mini", "cloud")
    assert (ev.status, ev.error_kind) == (200, "")
    assert ev.upstream_request_id and ev.upstream_request_id.startswith("req_")

    calc = catalog_price(chat_usage(resp.usage), "gpt-4o-mini", ev.ts_ms)
    assert_catalog_priced(ev, chat_usage(resp.usage), "gpt-4o-mini")
    assert_cost_header(raw.headers[COST], ev)
    # genai-prices' own number, to the digit: the header is not rounded or re-formatted.
    assert Decimal(raw.headers[COST]) == calc.total_price

    # The upstream saw the gateway's upstream key, never the client's tokenomy key.
    up = gw.openai.last
    assert up.headers["authorization"] == "Bearer sk-upstream-openai"
    assert gw.key not in up.body.decode()
    assert up.json["messages"] == MESSAGES and up.json["user"] == "end-user-7"


async def test_step_header_is_case_insensitive_and_optional_headers_default_empty(
    gw: Harness, client: openai.AsyncOpenAI
) -> None:
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, extra_headers={"X-Tokenomy-Step": "Reflect"}
    )
    ev = gw.event(raw.headers[REQUEST_ID])
    assert (ev.agent, ev.task, ev.step) == ("", "", "reflect")
    assert (ev.end_user, ev.metadata) == ("", None)


async def test_invalid_step_header_is_a_400_in_openai_format_and_recorded(
    gw: Harness, client: openai.AsyncOpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(
            model="gpt-4o-mini", messages=MESSAGES, extra_headers={"X-Tokenomy-Step": "dream"}
        )
    err = info.value
    assert err.status_code == 400
    assert "X-Tokenomy-Step" in err.message and "dream" in err.message
    assert isinstance(err.body, dict) and err.body.get("param") == "X-Tokenomy-Step"
    assert gw.openai.requests == []  # refused before anything went upstream
    ev = gw.event(err.response.headers[REQUEST_ID])
    assert (ev.status, ev.error_kind) == (400, "invalid_request_error")
    assert (ev.org, ev.key_id) == ("acme", gw.store.list_keys()[0].key_id)
    # Refused before any token was used: it cost nothing (known zero, not unknown).
    assert ev.usage == Usage() and ev.cost_nanos == 0


@pytest.mark.parametrize("stream", [False, True])
async def test_cached_and_reasoning_tokens_are_exact_and_counted_once(
    gw: Harness, client: openai.AsyncOpenAI, stream: bool
) -> None:
    """OpenAI's prompt_tokens already include cached ones, completion_tokens reasoning ones."""
    gw.openai.usage = FakeUsage(cached_tokens=1_000, reasoning_tokens=250)
    expected = Usage(
        input_tokens=PROMPT_WORDS + 1_000,
        cached_tokens=1_000,
        output_tokens=REPLY_WORDS + 250,
        reasoning_tokens=250,
    )
    if stream:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o",
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [c async for c in raw.parse()]
        reported = chunks[-1].usage
    else:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=MESSAGES
        )
        reported = (raw.parse()).usage
    assert reported is not None and chat_usage(reported) == expected
    ev = gw.event(raw.headers[REQUEST_ID])
    assert ev.usage == expected
    assert ev.usage.uncached_input_tokens == PROMPT_WORDS
    assert not ev.estimated and ev.stream is stream
    assert_catalog_priced(ev, expected, "gpt-4o")
    if not stream:
        assert_cost_header(raw.headers[COST], ev)


# ==================================================================== chat, stream


async def test_chat_stream_without_client_usage_request_meters_exactly_and_hides_usage(
    gw: Harness, client: openai.AsyncOpenAI
) -> None:
    gw.openai.usage = FakeUsage(cached_tokens=5, reasoning_tokens=4)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True
    )
    chunks = [c async for c in raw.parse()]
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == REPLY
    assert all(c.usage is None for c in chunks)
    assert all(c.choices for c in chunks)  # the upstream's choices-less usage chunk is gone
    assert chunks[-1].choices[0].finish_reason == "stop"

    # The gateway asked for usage on the client's behalf, keeping the rest of the body.
    up = gw.openai.last.json
    assert up["stream"] is True and up["stream_options"] == {"include_usage": True}
    assert up["messages"] == MESSAGES

    ev = gw.event(raw.headers[REQUEST_ID])
    expected = Usage(
        input_tokens=PROMPT_WORDS + 5,
        cached_tokens=5,
        output_tokens=REPLY_WORDS + 4,
        reasoning_tokens=4,
    )
    assert ev.usage == expected
    assert not ev.estimated
    assert (ev.stream, ev.status, ev.error_kind) == (True, 200, "")
    assert ev.ttft_ms is not None and ev.ttft_ms >= 0
    assert_catalog_priced(ev, expected, "gpt-4o-mini")
    assert COST not in raw.headers  # streams cannot know the cost when headers go out


async def test_chat_stream_with_client_usage_request_gets_the_usage_chunk(
    gw: Harness, client: openai.AsyncOpenAI
) -> None:
    gw.openai.usage = FakeUsage(cached_tokens=2)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in raw.parse()]
    with_usage = [c for c in chunks if c.usage is not None]
    assert len(with_usage) == 1 and with_usage[0] is chunks[-1] and chunks[-1].choices == []
    client_usage = chat_usage(chunks[-1].usage)
    assert client_usage == Usage(
        input_tokens=PROMPT_WORDS + 2, cached_tokens=2, output_tokens=REPLY_WORDS
    )
    assert gw.openai.last.json["stream_options"] == {"include_usage": True}
    ev = gw.event(raw.headers[REQUEST_ID])
    assert ev.usage == client_usage and not ev.estimated
    assert_catalog_priced(ev, client_usage, "gpt-4o-mini")


@pytest.mark.parametrize("client_asks", [False, True])
async def test_usage_in_the_finish_reason_chunk_is_not_lost(
    gw: Harness, client: openai.AsyncOpenAI, client_asks: bool
) -> None:
    """llama.cpp style: usage rides on the finish_reason chunk, no choices-less chunk."""
    gw.openai.usage = FakeUsage(cached_tokens=7, reasoning_tokens=3)
    gw.openai.next_scenario.append("usage-with-choices")
    options: Any = {"include_usage": True} if client_asks else openai.omit
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=MESSAGES, stream=True, stream_options=options
    )
    chunks = [c async for c in raw.parse()]
    assert gw.openai.last.scenario.has("usage-with-choices")
    last = chunks[-1]
    # The finish chunk reaches the client either way; its usage only if asked for.
    assert last.choices and last.choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == REPLY
    expected = Usage(
        input_tokens=PROMPT_WORDS + 7,
        cached_tokens=7,
        output_tokens=REPLY_WORDS + 3,
        reasoning_tokens=3,
    )
    if client_asks:
        assert last.usage is not None and chat_usage(last.usage) == expected
    else:
        assert all(c.usage is None for c in chunks)
    ev = gw.event(raw.headers[REQUEST_ID])
    assert ev.usage == expected and not ev.estimated
    assert_catalog_priced(ev, expected, "gpt-4o-mini")


# ==================================================================== completions


async def test_completions_non_stream(gw: Harness, client: openai.AsyncOpenAI) -> None:
    raw = await client.completions.with_raw_response.create(
        model="gpt-4o-mini", prompt="Say hello to the world", max_tokens=50
    )
    resp = raw.parse()
    assert resp.choices[0].text == "This is a fake reply to: Say hello to the world"
    assert resp.usage is not None
    ev = gw.event(raw.headers[REQUEST_ID])
    expected = Usage(input_tokens=5, output_tokens=11)
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (5, 11)
    assert ev.usage == expected and not ev.estimated
    assert (ev.endpoint, ev.stream, ev.status) == ("completions", False, 200)
    assert gw.openai.last.path == "/v1/completions"
    assert gw.openai.last.json["prompt"] == "Say hello to the world"
    assert_catalog_priced(ev, expected, "gpt-4o-mini")
    assert_cost_header(raw.headers[COST], ev)


async def test_completions_stream_without_client_usage_request(
    gw: Harness, client: openai.AsyncOpenAI
) -> None:
    raw = await client.completions.with_raw_response.create(
        model="gpt-4o-mini", prompt="Say hello to the world", max_tokens=50, stream=True
    )
    chunks = [c async for c in raw.parse()]
    assert "".join(c.choices[0].text for c in chunks) == (
        "This is a fake reply to: Say hello to the world"
    )
    assert all(c.usage is None and c.choices for c in chunks)
    assert gw.openai.last.json["stream_options"] == {"include_usage": True}
    ev = gw.event(raw.headers[REQUEST_ID])
    expected = Usage(input_tokens=5, output_tokens=11)
    assert ev.usage == expected and not ev.estimated
    assert (ev.endpoint, ev.stream, ev.status) == ("completions", True, 200)
    assert_catalog_priced(ev, expected, "gpt-4o-mini")


async def test_completions_stream_with_client_usage_request(
    gw: Harness, client: openai.AsyncOpenAI
) -> None:
    raw = await client.completions.with_raw_response.create(
        model="gpt-4o-mini",
        prompt="Say hello to the world",
        max_tokens=50,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in raw.parse()]
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (5, 11)
    ev = gw.event(raw.headers[REQUEST_ID])
    assert ev.usage == Usage(input_tokens=5, output_tokens=11) and not ev.estimated


# ==================================================================== embeddings


async def test_embeddings(gw: Harness, client: openai.AsyncOpenAI) -> None:
    raw = await client.embeddings.with_raw_response.create(
        model="text-embedding-3-small",
        input=["the quick brown fox", "jumps over"],
        dimensions=8,
        encoding_format="float",
    )
    resp = raw.parse()
    assert [d.index for d in resp.data] == [0, 1]
    assert all(len(d.embedding) == 8 for d in resp.data)
    assert resp.usage.prompt_tokens == 6
    ev = gw.event(raw.headers[REQUEST_ID])
    expected = Usage(input_tokens=6)
    assert ev.usage == expected and not ev.estimated
    assert (ev.endpoint, ev.model, ev.status) == ("embeddings", "text-embedding-3-small", 200)
    assert gw.openai.last.json["input"] == ["the quick brown fox", "jumps over"]
    assert_catalog_priced(ev, expected, "text-embedding-3-small")
    assert_cost_header(raw.headers[COST], ev)


# ==================================================================== responses


def responses_usage(u: Any) -> Usage:
    return Usage(
        input_tokens=u.input_tokens,
        cached_tokens=u.input_tokens_details.cached_tokens,
        output_tokens=u.output_tokens,
        reasoning_tokens=u.output_tokens_details.reasoning_tokens,
    )


async def test_responses_non_stream(gw: Harness, client: openai.AsyncOpenAI) -> None:
    gw.openai.usage = FakeUsage(cached_tokens=20, reasoning_tokens=9)
    raw = await client.responses.with_raw_response.create(
        model="gpt-4o-mini",
        instructions="You are terse.",
        input="What is the capital of France?",
        metadata={"run": "r1"},
        user="end-user-9",
        extra_headers={"X-Tokenomy-Agent": "researcher", "X-Tokenomy-Step": "act"},
    )
    resp = raw.parse()
    assert resp.output_text == REPLY
    assert resp.usage is not None
    expected = Usage(
        input_tokens=PROMPT_WORDS + 20,
        cached_tokens=20,
        output_tokens=REPLY_WORDS + 9,
        reasoning_tokens=9,
    )
    assert responses_usage(resp.usage) == expected
    ev = gw.event(raw.headers[REQUEST_ID])
    assert ev.usage == expected and not ev.estimated
    assert (ev.endpoint, ev.stream, ev.status) == ("responses", False, 200)
    assert (ev.agent, ev.step, ev.end_user, ev.metadata) == (
        "researcher",
        "act",
        "end-user-9",
        {"run": "r1"},
    )
    assert gw.openai.last.path == "/v1/responses"
    assert_catalog_priced(ev, expected, "gpt-4o-mini")
    assert_cost_header(raw.headers[COST], ev)


async def test_responses_stream(gw: Harness, client: openai.AsyncOpenAI) -> None:
    gw.openai.usage = FakeUsage(cached_tokens=20, reasoning_tokens=9)
    raw = await client.responses.with_raw_response.create(
        model="gpt-4o-mini",
        instructions="You are terse.",
        input="What is the capital of France?",
        stream=True,
    )
    events = [e async for e in raw.parse()]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text == REPLY
    assert events[-1].type == "response.completed"
    final = events[-1].response.usage
    assert final is not None
    expected = Usage(
        input_tokens=PROMPT_WORDS + 20,
        cached_tokens=20,
        output_tokens=REPLY_WORDS + 9,
        reasoning_tokens=9,
    )
    assert responses_usage(final) == expected
    ev = gw.event(raw.headers[REQUEST_ID])
    assert ev.usage == expected and not ev.estimated
    assert (ev.endpoint, ev.stream, ev.status) == ("responses", True, 200)
    assert_catalog_priced(ev, expected, "gpt-4o-mini")


# ==================================================================== models


async def test_models_list_in_openai_shape(gw: Harness, client: openai.AsyncOpenAI) -> None:
    page = await client.models.list()
    ids = [m.id async for m in page]
    assert ids == list(gw.settings.models)
    assert {"gpt-4o-mini", "claude-sonnet", "local-llama", "mystery"} <= set(ids)
    assert all(m.object == "model" for m in page.data)
    assert gw.openai.requests == []  # answered by the gateway, not proxied


async def test_models_list_needs_a_valid_key(gw: Harness) -> None:
    async with openai.AsyncOpenAI(base_url=gw.openai_base, api_key="tk-nope", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as info:
            await bad.models.list()
    assert info.value.status_code == 401
