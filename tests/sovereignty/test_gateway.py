"""End to end: a confidential prompt never reaches a cloud fake, whatever path it takes.

Each fake logs what it receives; the checks read those logs. The policy keeps
confidential and restricted data local; model ``m`` prefers the cloud (priority order),
so a request that reaches the local box did so because of its data class.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from tests.gateway.harness import Fleet, running_fleet

POLICY = {"policy": {"confidential": ["local"], "restricted": ["local"]}}
FAST = {"max_attempts": 3, "backoff_initial_ms": 5, "backoff_max_ms": 10}
MODELS: list[dict[str, Any]] = [
    {
        "name": "m",
        "deployments": [
            {"provider": "cloud", "model": "gpt-4o"},
            {"provider": "box", "model": "gemma-3", "price": "box"},
        ],
    },
    {"name": "cloud-only", "deployments": [{"provider": "cloud", "model": "gpt-4o"}]},
    {
        "name": "emb",
        "deployments": [
            {"provider": "cloud", "model": "text-embedding-3-small"},
            {"provider": "box", "model": "nomic-embed", "price": "box"},
        ],
    },
    {
        # The local box fails: a plain prompt falls back to the cloud, a confidential one
        # must not.
        "name": "box-fails",
        "deployments": [
            {"provider": "box", "model": "fake-error-500", "price": "box"},
            {"provider": "cloud", "model": "gpt-4o"},
        ],
        "retry": FAST,
    },
    {
        # Too small a context on the box: the fallback model is in the cloud.
        "name": "short",
        "deployments": [{"provider": "box", "model": "fake-context-length", "price": "box"}],
        "context_window_fallback": "cloud-only",
    },
    {
        "name": "claude",
        "deployments": [
            {"provider": "ant", "model": "claude-sonnet-4-20250514"},
            {"provider": "box", "model": "gemma-3", "price": "box"},
        ],
    },
]
EMAIL = "jane.doe@acme-corp.com"
PHONE = "+86 138 1234 5678"
KEY = "sk-proj-AbC123dEf456GhI789jKl012MnO345"


def cloud_bodies(f: Fleet) -> list[bytes]:
    return [r.body for name in ("cloud", "ant") for r in f.fakes[name].requests]


def never_in_cloud(f: Fleet, *secrets: str) -> None:
    for body in cloud_bodies(f):
        for s in secrets:
            assert s.encode() not in body


def oai(f: Fleet) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f.openai_base, api_key=f.key, max_retries=0)


async def post(f: Fleet, path: str, body: dict[str, Any], **headers: str) -> tuple[int, Any]:
    h = {"Authorization": f"Bearer {f.key}", **headers}
    async with aiohttp.ClientSession() as s, s.post(f.url + path, json=body, headers=h) as r:
        return r.status, await r.json(content_type=None)


async def test_plain_prompts_go_to_the_cloud_and_identifiers_stay_local(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, MODELS, sections=POLICY) as f, oai(f) as c:
        await c.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        assert f.served()["cloud"] == 1 and f.served()["box"] == 0
        # An identifier in a tool result, and one in a tool call's arguments.
        messages: list[Any] = [
            {"role": "user", "content": "look up the customer"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "crm", "arguments": '{"q": "' + EMAIL + '"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "phone: " + PHONE},
        ]
        r = await c.chat.completions.with_raw_response.create(model="m", messages=messages)
        assert r.headers["x-tokenomy-location"] == "local"
        messages[1]["tool_calls"][0]["function"]["arguments"] = "{}"
        await c.chat.completions.create(model="m", messages=messages)  # the phone alone
        assert f.served() == {"cloud": 1, "cloud2": 0, "box": 2, "ant": 0}
        never_in_cloud(f, EMAIL, PHONE)
        classes = [e.data_class for e in f.events()]
        assert classes == ["internal", "confidential", "confidential"]


async def test_responses_input_and_the_label_header_stay_local(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, MODELS, sections=POLICY) as f, oai(f) as c:
        await c.responses.create(
            model="m",
            input=[
                {"role": "user", "content": "summarise"},
                {"type": "function_call", "call_id": "c1", "name": "read", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "SSN 123-45-6789"},
            ],
        )
        await c.responses.create(model="m", input="hi", instructions="Key: " + KEY)
        # A plain prompt the client labels confidential.
        await c.chat.completions.create(
            model="m",
            messages=[{"role": "user", "content": "the merger plan"}],
            extra_headers={"X-Tokenomy-Data-Class": "confidential"},
        )
        assert f.served()["cloud"] == 0 and f.served()["box"] == 3
        never_in_cloud(f, "123-45-6789", KEY, "merger")
        assert [e.data_class for e in f.events()] == ["confidential", "restricted", "confidential"]


async def test_streams_and_embeddings_follow_the_policy(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, MODELS, sections=POLICY) as f, oai(f) as c:
        stream = await c.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "mail " + EMAIL}], stream=True
        )
        assert [chunk async for chunk in stream]
        await c.embeddings.create(model="emb", input=["plain words"])
        await c.embeddings.create(model="emb", input=[[1820, 25, 1234]])  # token ids
        await c.embeddings.create(model="emb", input=["card 4111 1111 1111 1111"])
        assert f.served() == {"cloud": 1, "cloud2": 0, "box": 3, "ant": 0}
        never_in_cloud(f, EMAIL, "4111", "1820")
        assert [e.data_class for e in f.events()] == [
            "confidential",
            "internal",
            "restricted",
            "confidential",
        ]


async def test_anthropic_tool_results_stay_local(sqlite_url: str) -> None:
    async with (
        running_fleet(sqlite_url, MODELS, sections=POLICY) as f,
        anthropic.AsyncAnthropic(base_url=f.url, api_key=f.key, max_retries=0) as c,
    ):
        await c.messages.create(
            model="claude", max_tokens=20, messages=[{"role": "user", "content": "hi"}]
        )
        await c.messages.create(
            model="claude",
            max_tokens=20,
            system=[{"type": "text", "text": "You help support agents."}],
            messages=[
                {"role": "user", "content": "who wrote in?"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "inbox", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [
                        {"type": "tool_result", "tool_use_id": "t1", "content": "From " + EMAIL}
                    ],
                },
            ],
        )
        assert f.served()["ant"] == 1 and f.served()["box"] == 1
        never_in_cloud(f, EMAIL)


async def test_no_allowed_deployment_is_a_403_and_nothing_is_sent(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, MODELS, sections=POLICY) as f:
        body = {"model": "cloud-only", "messages": [{"role": "user", "content": "mail " + EMAIL}]}
        status, data = await post(f, "/v1/chat/completions", body)
        assert status == 403
        assert data["error"]["type"] == "data_policy"
        assert "confidential" in data["error"]["message"]
        assert "email address in messages[0].content" in data["error"]["message"]
        async with anthropic.AsyncAnthropic(base_url=f.url, api_key=f.key, max_retries=0) as c:
            with pytest.raises(anthropic.PermissionDeniedError) as err:
                await c.messages.create(
                    model="cloud-only", max_tokens=5, messages=[{"role": "user", "content": KEY}]
                )
        assert err.value.body["error"]["type"] == "data_policy"  # type: ignore[index]
        status, data = await post(
            f, "/v1/chat/completions", {**body, "model": "m"}, **{"X-Tokenomy-Data-Class": "top"}
        )
        assert status == 400 and data["error"]["param"] == "X-Tokenomy-Data-Class"
        assert f.served()["cloud"] == 0 and f.served()["box"] == 0
        refused = f.events()[:2]
        assert [(e.status, e.data_class) for e in refused] == [
            (403, "confidential"),
            (403, "restricted"),
        ]


async def test_a_failing_box_never_falls_back_to_the_cloud(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, MODELS, sections=POLICY) as f, oai(f) as c:
        # Failover works: a plain prompt ends up in the cloud.
        await c.chat.completions.create(
            model="box-fails", messages=[{"role": "user", "content": "hi"}]
        )
        assert f.served()["cloud"] == 1
        with pytest.raises(openai.APIStatusError):
            await c.chat.completions.create(
                model="box-fails", messages=[{"role": "user", "content": "call " + PHONE}]
            )
        assert f.served()["cloud"] == 1 and f.served()["box"] >= 2
        never_in_cloud(f, PHONE)


async def test_a_context_window_fallback_stays_inside_the_policy(sqlite_url: str) -> None:
    async with running_fleet(sqlite_url, MODELS, sections=POLICY) as f, oai(f) as c:
        await c.chat.completions.create(model="short", messages=[{"role": "user", "content": "hi"}])
        assert f.served()["cloud"] == 1  # the fallback works for a plain prompt
        with pytest.raises(openai.APIStatusError):
            await c.chat.completions.create(
                model="short", messages=[{"role": "user", "content": "mail " + EMAIL}]
            )
        assert f.served()["cloud"] == 1
        never_in_cloud(f, EMAIL)
