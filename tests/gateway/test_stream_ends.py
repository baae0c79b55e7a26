"""Streams whose upstream omits the blank line after its last event still complete.

The SSE standard drops an event that lacks its closing blank line; some servers forget it
after ``data: [DONE]`` (or ``message_stop``). The gateway must relay the final usage and
finish the stream normally rather than report it cut short.
"""

from __future__ import annotations

import anthropic
import openai

from tests.gateway.harness import Harness

REQUEST_ID = "x-tokenomy-request-id"


async def test_openai_stream_without_final_blank_line_completes(gw: Harness) -> None:
    gw.openai.next_scenario.append("no-final-blank-line")
    async with openai.AsyncOpenAI(base_url=gw.openai_base, api_key=gw.key, max_retries=0) as c:
        raw = await c.chat.completions.with_raw_response.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "say something"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in raw.parse()]
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens > 0
    ev = gw.event(raw.headers[REQUEST_ID])
    assert ev.status == 200 and ev.error_kind == "" and not ev.estimated
    assert ev.usage.output_tokens == usage.completion_tokens
    assert ev.usage.input_tokens == usage.prompt_tokens


async def test_anthropic_stream_without_final_blank_line_completes(gw: Harness) -> None:
    gw.anthropic.next_scenario.append("no-final-blank-line")
    client = anthropic.AsyncAnthropic(base_url=gw.url, api_key=gw.key, max_retries=0)
    async with (
        client,
        client.messages.stream(
            model="claude-sonnet",
            max_tokens=64,
            messages=[{"role": "user", "content": "say something"}],
        ) as stream,
    ):
        final = await stream.get_final_message()
        rid = stream.response.headers[REQUEST_ID]
    ev = gw.event(rid)
    assert ev.status == 200 and ev.error_kind == "" and not ev.estimated
    assert ev.usage.output_tokens == final.usage.output_tokens > 0
