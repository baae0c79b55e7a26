"""Every text each endpoint's body carries reaches the detectors (the wire seam's walk)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenomy.wire import ENDPOINTS
from tokenomy.wire.texts import Unscannable

SECRET = "alice@acme-corp.com"


def texts(endpoint: str, body: dict[str, Any]) -> dict[str, str | Unscannable]:
    return dict(ENDPOINTS[endpoint].texts(body))


def where(endpoint: str, body: dict[str, Any], text: str = SECRET) -> list[str]:
    return [w for w, p in ENDPOINTS[endpoint].texts(body) if isinstance(p, str) and text in p]


def test_chat_messages_parts_tool_calls_and_tool_results() -> None:
    body = {
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "content": "sys " + SECRET},
            {"role": "user", "content": [{"type": "text", "text": "part " + SECRET}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "send", "arguments": '{"to": "' + SECRET + '"}'},
                    }
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "result " + SECRET},
            {"role": "user", "content": "hi", "name": SECRET},
        ],
        "tools": [{"type": "function", "function": {"name": "send", "description": SECRET}}],
        "user": SECRET,
        "metadata": {"owner": SECRET},
    }
    assert where("chat.completions", body) == [
        "messages[0].content",
        "messages[1].content[0].text",
        "messages[2].tool_calls[0].function.arguments",
        "messages[3].content",
        "messages[4].name",
        "tools[0].function.description",
        "user",
        "metadata.owner",
    ]
    walked = texts("chat.completions", body)
    # Ids, roles, types and the model are machine values, not scanned.
    assert "model" not in walked and "messages[3].tool_call_id" not in walked
    assert "messages[0].role" not in walked


def test_chat_image_and_audio_parts_are_unscannable() -> None:
    body = {
        "model": "m",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this?"},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                    {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}},
                    {"type": "file", "file": {"file_id": "file-1"}},
                ],
            }
        ],
    }
    walked = texts("chat.completions", body)
    assert walked["messages[0].content[1]"] == Unscannable("image")
    assert walked["messages[0].content[2]"] == Unscannable("audio")
    assert walked["messages[0].content[3]"] == Unscannable("file")


def test_binary_data_in_any_field_is_unscannable() -> None:
    blob = "iVBORw0KGgo" * 40
    body = {
        "model": "m",
        "messages": [
            {"role": "user", "content": [{"type": "video_frame", "data": blob}]},
            {"role": "user", "content": "data:image/png;base64," + blob},
        ],
    }
    walked = texts("chat.completions", body)
    assert walked["messages[0].content[0].data"] == Unscannable("binary data")
    assert walked["messages[1].content"] == Unscannable("binary data")
    # Long prose is text, however long; so are hashes, one per line or run together.
    for text in ("word " * 400, "3b1f8a2c4e5d6f70" * 40, "\n".join(["a1b2c3d4" * 5] * 20)):
        body = {"messages": [{"role": "user", "content": text}]}
        assert texts("chat.completions", body) == {"messages[0].content": text}


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        ("hi " + SECRET, {"prompt": "hi " + SECRET}),
        (["a", SECRET], {"prompt[0]": "a", "prompt[1]": SECRET}),
        ([1, 2, 3], {"prompt": Unscannable("token ids")}),
        (
            [[1, 2], [3]],
            {"prompt[0]": Unscannable("token ids"), "prompt[1]": Unscannable("token ids")},
        ),
    ],
)
def test_completions_prompt_strings_and_token_arrays(prompt: Any, expected: dict[str, Any]) -> None:
    assert texts("completions", {"model": "m", "prompt": prompt}) == expected


def test_embeddings_input_strings_and_token_arrays() -> None:
    assert where("embeddings", {"model": "m", "input": [SECRET, "b"]}) == ["input[0]"]
    assert texts("embeddings", {"model": "m", "input": [5, 6]}) == {
        "input": Unscannable("token ids")
    }
    assert texts("embeddings", {"model": "m", "input": ["a", [5, 6]]}) == {
        "input[0]": "a",
        "input[1]": Unscannable("token ids"),
    }


def test_responses_input_instructions_and_function_call_output() -> None:
    body = {
        "model": "gpt-5",
        "instructions": "be brief " + SECRET,
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": SECRET}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": SECRET},
            {"type": "function_call_output", "call_id": "c1", "output": "out " + SECRET},
            {"type": "reasoning", "id": "rs_1", "encrypted_content": "gAAAA" + SECRET},
        ],
    }
    assert where("responses", body) == [
        "instructions",
        "input[0].content[0].text",
        "input[1].arguments",
        "input[2].output",
    ]
    assert where("responses", {"model": "m", "input": SECRET}) == ["input"]
    image = {"role": "user", "content": [{"type": "input_image", "image_url": "https://x"}]}
    assert texts("responses", {"model": "m", "input": [image]}) == {
        "input[0].content[0]": Unscannable("image")
    }


def test_anthropic_system_blocks_tool_use_and_tool_result() -> None:
    body = {
        "model": "claude",
        "max_tokens": 10,
        "system": [{"type": "text", "text": "sys " + SECRET, "cache_control": {"type": "x"}}],
        "messages": [
            {"role": "user", "content": SECRET},
            {
                "role": "assistant",
                "content": [
                    {"type": "thinking", "thinking": "hmm " + SECRET, "signature": "Eq" + SECRET},
                    {"type": "redacted_thinking", "data": SECRET},
                    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"q": SECRET}},
                ],
            },
            {
                "role": "user",
                "content": [
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_1",
                        "content": [{"type": "text", "text": "res " + SECRET}],
                    }
                ],
            },
        ],
        "metadata": {"user_id": SECRET},
    }
    assert where("messages", body) == [
        "system[0].text",
        "messages[0].content",
        "messages[1].content[0].thinking",
        "messages[1].content[2].input.q",
        "messages[2].content[0].content[0].text",
        "metadata.user_id",
    ]
    assert where("messages.count_tokens", body) == where("messages", body)


def test_anthropic_images_and_documents() -> None:
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "A"}}
    pdf = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf"}}
    text_doc = {"type": "document", "source": {"type": "text", "data": SECRET}}
    result = {"type": "tool_result", "tool_use_id": "t", "content": [image]}
    body = {"messages": [{"role": "user", "content": [image, pdf, text_doc, result]}]}
    walked = texts("messages", body)
    assert walked["messages[0].content[0]"] == Unscannable("image")
    assert walked["messages[0].content[1]"] == Unscannable("document")
    assert walked["messages[0].content[2].source.data"] == SECRET
    assert walked["messages[0].content[3].content[0]"] == Unscannable("image")


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.sampled_from(["type", "text", "content", "x", "id", "data"]), inner)
    ),
    max_leaves=25,
)


@settings(max_examples=150, deadline=None)
@given(body=st.dictionaries(st.sampled_from(["messages", "input", "prompt", "system", "k"]), _json))
def test_every_walk_takes_any_json_and_finds_a_planted_text(body: dict[str, Any]) -> None:
    planted = {**body, "extra": {"deep": [{"type": "text", "text": SECRET}]}}
    for name, endpoint in ENDPOINTS.items():
        pieces = list(endpoint.texts(planted))  # never raises: a crash would fail closed
        assert ("extra.deep[0].text", SECRET) in pieces, name
