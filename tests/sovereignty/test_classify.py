"""A request's verdict: header first, else detectors over its texts; fail closed; cached."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tokenomy.config import PolicySection, parse_config
from tokenomy.errors import InvalidRequest
from tokenomy.sovereignty import Verdict, build_policy, classify
from tokenomy.sovereignty.detectors import Detector, Text
from tokenomy.wire import ENDPOINTS

CHAT = ENDPOINTS["chat.completions"]
LONG = "Here is the build log you asked for, line by line. " * 10  # cached (>= 128 chars)


def chat(*contents: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": c} for c in contents]}


def policy(**section: Any) -> Any:
    return build_policy(PolicySection.model_validate(section))


def test_no_detection_gives_the_default_class() -> None:
    assert classify(CHAT, chat("hello"), None, policy()) == Verdict("internal", "no detection")
    assert classify(CHAT, chat("hello"), None, policy(default_class="public")).data_class == (
        "public"
    )


def test_identifiers_are_confidential_and_secrets_restricted_by_default() -> None:
    p = policy()
    v = classify(CHAT, chat("hi", "write to bob@acme-corp.com"), None, p)
    assert v == Verdict("confidential", "email address in messages[1].content")
    v = classify(CHAT, chat("bob@acme-corp.com", "key AKIAIOSFODNN7EXAMPLE"), None, p)
    assert v == Verdict("restricted", "API key in messages[1].content")


def test_what_a_detection_means_is_configured() -> None:
    p = policy(identifiers="internal", secrets="confidential", detectors={"email": "off"})
    assert classify(CHAT, chat("bob@acme-corp.com"), None, p).data_class == "internal"
    assert classify(CHAT, chat("SSN 123-45-6789"), None, p).data_class == "internal"
    assert classify(CHAT, chat("AKIAIOSFODNN7EXAMPLE"), None, p).data_class == "confidential"
    p = policy(detectors={"us_ssn": "restricted"})
    assert classify(CHAT, chat("SSN 123-45-6789"), None, p) == Verdict(
        "restricted", "US social security number in messages[0].content"
    )
    # A detection never lowers the default class.
    p = policy(default_class="confidential", identifiers="internal")
    assert classify(CHAT, chat("bob@acme-corp.com"), None, p).data_class == "confidential"


def test_the_header_wins_and_an_invalid_one_is_refused() -> None:
    p = policy()
    assert classify(CHAT, chat("bob@acme-corp.com"), "Public", p) == Verdict("public", "header")
    assert classify(CHAT, chat("hi"), " restricted ", p) == Verdict("restricted", "header")
    for bad in ("secret", "", "confidential;x"):
        with pytest.raises(InvalidRequest, match="X-Tokenomy-Data-Class") as err:
            classify(CHAT, chat("hi"), bad, p)
        assert err.value.param == "X-Tokenomy-Data-Class" and err.value.status == 400


def test_an_unscannable_part_gives_the_strictest_class() -> None:
    image = [{"type": "image_url", "image_url": {"url": "https://x.test/scan.png"}}]
    v = classify(CHAT, chat("look", image), None, policy())
    assert v == Verdict("restricted", "image in messages[1].content[0] cannot be scanned")
    v = classify(ENDPOINTS["embeddings"], {"model": "e", "input": [[1, 2, 3]]}, None, policy())
    assert v == Verdict("restricted", "token ids in input[0] cannot be scanned")


def _broken(t: Text) -> bool:
    raise RuntimeError("boom")


def test_a_detector_error_fails_closed(caplog: pytest.LogCaptureFixture) -> None:
    p = policy()
    detectors = ((p.detectors[0][0], Detector("x", "x", "identifier", _broken)),)
    p.scanner.detectors = detectors
    with caplog.at_level(logging.ERROR, "tokenomy.sovereignty"):
        v = classify(CHAT, chat("hello"), None, p)
    assert v == Verdict("restricted", "detector error (RuntimeError), failed closed")
    assert "treated as restricted" in caplog.text


def test_an_endpoint_without_a_walk_fails_closed() -> None:
    class Bare(type(CHAT)):  # type: ignore[misc]
        def texts(self, body: dict[str, Any]) -> Any:
            raise NotImplementedError

    v = classify(Bare(), chat("hello"), None, policy())
    assert v.data_class == "restricted" and "NotImplementedError" in v.reason


def test_verdicts_are_cached_per_text() -> None:
    p = policy()
    context = [LONG + str(i) for i in range(5)]
    classify(CHAT, chat(*context), None, p)
    assert (p.scanner.hits, p.scanner.misses) == (0, 5)
    # The next step re-sends the context and adds one message: only that one is scanned.
    v = classify(CHAT, chat(*context, LONG + " mail bob@acme-corp.com"), None, p)
    assert (p.scanner.hits, p.scanner.misses) == (5, 6)
    assert v.data_class == "confidential"
    # A cached detection keeps its place in this request's reason.
    v = classify(CHAT, chat("hi", LONG + " mail bob@acme-corp.com"), None, p)
    assert v.reason == "email address in messages[1].content" and p.scanner.hits == 6


def test_the_cache_is_bounded() -> None:
    p = policy(scan_cache_entries=3)
    for i in range(10):
        classify(CHAT, chat(LONG + str(i)), None, p)
    assert len(p.scanner._cache) == 3
    classify(CHAT, chat(LONG + "9"), None, p)
    classify(CHAT, chat(LONG + "0"), None, p)
    assert p.scanner.hits == 1 and p.scanner.misses == 11


def test_the_settings_carry_a_permissive_policy_when_none_is_configured() -> None:
    s = parse_config({})
    assert not s.policy.restrictive and not s.policy.active
    assert classify(CHAT, chat("bob@acme-corp.com"), None, s.policy).data_class == "confidential"


def test_a_policy_can_forbid_labels_below_the_detectors() -> None:
    p = policy(label_may_lower=False)
    mail = chat("write to bob@acme-corp.com")
    assert classify(CHAT, mail, "public", p) == Verdict(
        "confidential", "email address in messages[0].content"
    )
    assert classify(CHAT, mail, "restricted", p) == Verdict("restricted", "header")
    assert classify(CHAT, chat("hello"), "public", p) == Verdict("public", "header")
    with pytest.raises(InvalidRequest):
        classify(CHAT, mail, "top", p)
