"""The real llama.cpp server: its wire format, and the GGUF tokenizer and chat template that
agree with it token for token."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import aiohttp
import openai
import pytest

from tests.local.server import ALIAS, LocalServer, require_local
from tokenomy.errors import LocalModelError
from tokenomy.local.gguf import GGUFError, read_metadata
from tokenomy.local.metering import LocalCounter, OfflineCounts, counter_for
from tokenomy.local.model import DEFAULT_MODEL, resolve_model
from tokenomy.local.template import NotRenderable, render_chat
from tokenomy.metering.tokenizer import count_text
from tokenomy.wire.openai import Chat

SAMPLES = [
    "Hello world",
    " leading space",
    "trailing  ",
    "tabs\tand\nnewlines\n\n\n  indented",
    "ünïcödé 日本語のテキスト 🎉🚀",
    "def f(x):\n    return x**2  # comment",
    "12345678901234567890 3.14159",
    "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n",
    "<unused5> <b>bold</b> <table><tr>",
    "    \n\t \u00a0 \u2003 ſ ß ﬁ Ⅻ",
    "Ελληνικά русский עברית العربية हिन्दी",
    "<eos><bos>text<pad>" + "\n" * 40 + " " * 33,
]


async def _post(url: str, body: dict[str, Any]) -> Any:
    async with aiohttp.ClientSession() as s, s.post(url, json=body) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def test_gguf_tokenizer_matches_the_server(llama: LocalServer) -> None:
    tok = counter_for(DEFAULT_MODEL).tokenizer
    rnd = random.Random(7)
    alphabet = "abcXYZ 0189 .,;:!?'\"()[]{}<>/\\-_=+*&^%$#@~`\n\t é漢字🎉"
    samples = SAMPLES + ["".join(rnd.choice(alphabet) for _ in range(80)) for _ in range(30)]
    for text in samples:
        for add_special in (True, False):
            data = await _post(
                llama.url + "/tokenize",
                {"content": text, "add_special": add_special, "parse_special": True},
            )
            want = [t if isinstance(t, int) else t["id"] for t in data["tokens"]]
            assert tok.encode(text, add_special=add_special) == want, text


async def test_chat_template_matches_the_server(llama: LocalServer) -> None:
    conversations: list[list[dict[str, Any]]] = [
        [{"role": "user", "content": "Hi"}],
        [
            {"role": "system", "content": "Be brief."},
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            },
            {"role": "assistant", "content": "c"},
            {"role": "user", "content": "  spaced\n\n"},
        ],
    ]
    for messages in conversations:
        data = await _post(llama.url + "/apply-template", {"messages": messages})
        assert render_chat(messages) == data["prompt"]


def test_template_refuses_what_it_cannot_render() -> None:
    image = {"type": "image_url", "image_url": {"url": "data:,"}}
    for messages in ([{"role": "user", "content": [image]}], [{"content": "no role"}], "x"):
        with pytest.raises(NotRenderable):
            render_chat(messages)


def test_gguf_header_reader_rejects_other_files(tmp_path: Any) -> None:
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"NOPE" + b"\0" * 20)
    with pytest.raises(GGUFError, match="not a GGUF"):
        read_metadata(bad)
    bad.write_bytes(b"GGUF\x03\0\0\0" + b"\0" * 8 + b"\x05" + b"\0" * 7)  # 5 keys, none there
    with pytest.raises(GGUFError, match="truncated"):
        read_metadata(bad)


def test_model_resolution_errors(tmp_path: Any) -> None:
    with pytest.raises(LocalModelError, match="no such GGUF file"):
        resolve_model(str(tmp_path / "missing.gguf"))
    with pytest.raises(LocalModelError, match="not installed"):
        resolve_model("no-such-model-package-xyz")
    with pytest.raises(LocalModelError, match="no such GGUF file"):
        counter_for(str(tmp_path / "missing.gguf"))
    (tmp_path / "bad.gguf").write_bytes(b"not a model")
    with pytest.raises(LocalModelError, match=r"tokenizer .*not a GGUF file"):
        counter_for(str(tmp_path / "bad.gguf"))


def test_completions_prompt_counts() -> None:
    require_local()  # fails in CI rather than skipping
    counter = counter_for(DEFAULT_MODEL)
    assert isinstance(counter, LocalCounter)
    # Tools or images: not ours to count; the gateway falls back to its own estimate.
    assert counter.input_tokens("chat.completions", {"messages": [], "tools": [{}]}) is None
    assert counter.input_tokens("embeddings", {"input": "x"}) is None
    # A token-id prompt is counted as given, plus the BOS the server prepends.
    assert counter.input_tokens("completions", {"prompt": [5, 6, 7]}) == 4
    assert counter.input_tokens("completions", {"prompt": "Hello world"}) == 3


async def test_the_server_speaks_openai_with_parallel_streams(llama: LocalServer) -> None:
    """Completions and chat, streamed with usage, two at once on two slots: never empty."""
    async with openai.AsyncOpenAI(base_url=llama.v1, api_key="unused") as client:

        async def completion_stream() -> tuple[str, Any]:
            stream = await client.completions.create(
                model=ALIAS,
                prompt="Once upon a time",
                max_tokens=6,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
                extra_body={"ignore_eos": True},
            )
            text, usage = "", None
            async for chunk in stream:
                text += "".join(c.text for c in chunk.choices)
                usage = chunk.usage or usage
            return text, usage

        async def chat_stream() -> tuple[str, Any]:
            stream = await client.chat.completions.create(
                model=ALIAS,
                messages=[{"role": "user", "content": "Hello"}],
                max_tokens=6,
                temperature=0,
                stream=True,
                stream_options={"include_usage": True},
                extra_body={"ignore_eos": True},
            )
            text, usage = "", None
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    text += chunk.choices[0].delta.content
                usage = chunk.usage or usage
            return text, usage

        results = await asyncio.gather(completion_stream(), chat_stream())
        models = await client.models.list()
    for text, usage in results:
        assert text and usage is not None and usage.completion_tokens == 6
    assert ALIAS in [m.id for m in models.data]


def test_offline_counts_fall_back_when_the_tokenizer_is_missing(tmp_path: Any) -> None:
    body = {"messages": [{"role": "user", "content": "Hello there"}]}
    counts = OfflineCounts(str(tmp_path / "gone.gguf"))
    chat = Chat()
    assert counts.input_tokens(chat, body)() == chat.estimate_input(body)
    assert counts.output_tokens("Hello there") == count_text("Hello there")
