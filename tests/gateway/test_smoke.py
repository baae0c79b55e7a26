from __future__ import annotations

import openai

from tests.gateway.harness import Harness


async def test_chat_roundtrip(gw: Harness) -> None:
    client = openai.AsyncOpenAI(base_url=gw.openai_base, api_key=gw.key)
    raw = await client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}])
    resp = raw.parse()
    assert resp.choices[0].message.content
    rid = raw.headers["x-tokenomy-request-id"]
    ev = gw.event(rid)
    print(ev, raw.headers.get("x-tokenomy-cost-usd"))
    assert ev.usage.input_tokens == resp.usage.prompt_tokens
