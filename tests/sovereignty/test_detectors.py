"""Each detector on real data (valid checksums), on broken checksums, and on look-alikes."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tokenomy.sovereignty.detectors import BY_NAME, DETECTORS, Text


def found(text: str, regions: tuple[str, ...] = ("CN", "US")) -> set[str]:
    t = Text(text, regions)
    return {d.name for d in DETECTORS if d.found(t)}


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("mail me at alice.smith@acme-corp.com today", "email"),
        ("联系邮箱alice@corp.cn", "email"),
        ("Bob <bob+tag@mail.example.co.uk>", "email"),
        ("call me at (202) 456-1414", "phone"),
        ("+1 202-456-1414", "phone"),
        ("Tel:+1 (202) 456-1414", "phone"),
        ("1-202-456-1414", "phone"),
        ("202.456.1414", "phone"),
        ("+86 138 1234 5678", "phone"),
        ("+8613812345678", "phone"),
        ("手机13812345678", "phone"),
        ("电话号码：13812345678", "phone"),
        ("138-1234-5678", "phone"),
        ("010-62345678", "phone"),
        ("card 4111 1111 1111 1111", "card"),
        ("4111111111111111", "card"),
        ("5555-5555-5555-4444", "card"),
        ("amex 3782 822463 10005", "card"),
        ("IBAN GB82 WEST 1234 5698 7654 32", "iban"),
        ("DE89370400440532013000", "iban"),
        ("pay to NL91ABNA0417164300.", "iban"),
        ("身份证号11010519491231002X", "cn_ric"),
        ("id 11010519491231002x", "cn_ric"),
        ("SSN 123-45-6789", "us_ssn"),
        ("ssn 078 05 1121", "us_ssn"),
        ("(123-45-6789)", "us_ssn"),
        ("key sk-proj-AbC123dEf456GhI789jKl012MnO345", "api_key"),
        ("ANTHROPIC_API_KEY=sk-ant-api03-" + "Ab1" * 30, "api_key"),
        ("AKIAIOSFODNN7EXAMPLE", "api_key"),
        ("token ghp_" + "aB3" * 12, "api_key"),
        ("xoxb-123456789012-AbCdEf123456", "api_key"),
        ("AIzaSyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r", "api_key"),
        ("stripe sk_live_4eC39HqLyjWDarjtT1zdp7dc", "api_key"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow...", "private_key"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----", "private_key"),
        ("-----BEGIN PRIVATE KEY-----", "private_key"),
    ],
)
def test_detects_real_data(text: str, name: str) -> None:
    assert name in found(text)


@pytest.mark.parametrize(
    "text",
    [
        # Checksums that fail.
        "4111111111111112",  # Luhn
        "1234567812345678",  # Luhn, no card prefix
        "DE89370400440532013001",  # IBAN mod 97
        "GB82 WEST 1234 5698 7654 33",
        "11010519491231002Y",  # RIC check character
        "110105194912310021",  # RIC checksum
        "11010519491331002X",  # RIC birth date (month 13)
        # Reserved SSNs.
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",
        "123-00-4567",
        "123-45-0000",
        "078-05-1120",
        # Look-alikes that are not personal data.
        "C4",
        "S3",
        "use an S3 bucket and C4 instances",
        "Order #1234567890",
        "order number 13812345678",
        "invoice INV-2024-0001234",
        "version 1.2.3",
        "v10.15.7",
        "2024-01-15 10:30:00",
        "2026-03-05 20:26:13",
        "2024-01-15T10:30:00Z",
        "timestamp 1701388800",
        "1701388800123",
        "550e8400-e29b-41d4-a716-446655440000",
        "192.168.100.200",
        "pi is 3.14159265358979",
        "price $1 234 567.89",
        "ISBN 978-3-16-148410-0",
        "tel 12345",
        "phone ext 1234",
        "call 555-0100",
        "id 13812345678",
        "port 8080 and 443",
        "matrix 1 2 3 4 5 6 7 8 9",
        "0000 0000 0000 0000",
        "sha256:12345678901234567",
        "icon@2x.png",
        "@types/node",
        "lodash@4.17.21",
        "git@github.com:org/repo.git",
        "user@localhost",
        "see user@example.com and admin@mail.example.org",
        "qa@shop.test, x@y.invalid, dev@box.local",
        "sk-learn-tutorial-for-beginners-2024",
        "pip install scikit-learn  # sk-learn",
        "the disk-learning rate",
        "akiaiosfodnn7example",
        "the BEGIN PRIVATE KEY marker",
        "ghost_town high-throughput",
        "GB82 WEST",
    ],
)
def test_ignores_look_alikes(text: str) -> None:
    assert found(text) == set()


def test_phone_regions_come_from_the_policy() -> None:
    # A German national number is a phone number only where the policy names DE.
    assert "phone" not in found("phone: 030 12345678")
    assert "phone" in found("phone: 030 12345678", ("DE",))
    # "+" numbers are checked whatever the regions.
    assert "phone" in found("+49 30 12345678", ())


def test_detectors_answer_yes_or_no_and_have_unique_names() -> None:
    assert len(BY_NAME) == len(DETECTORS)
    assert {d.kind for d in DETECTORS} == {"identifier", "secret"}
    assert BY_NAME["api_key"].kind == "secret" and BY_NAME["email"].kind == "identifier"


# The meaning of a digit run, written the plain way: a regex over the text and checks of the
# characters around it. ``Text.runs`` finds the same runs in the text's byte classes (fast).
_PLAIN_RUN = re.compile(r"[0-9][0-9 ().\-]{5,}[0-9]")
_ALNUM = string.ascii_letters + string.digits + "_"
_PLAIN_GLUED_BEFORE = set(_ALNUM + "#/=._-@$€£¥&%")
_PLAIN_GLUED_AFTER = set(_ALNUM + "@") - {"X", "x"}


def plain_runs(text: str) -> list[tuple[int, str, bool]]:
    runs = []
    for m in _PLAIN_RUN.finditer(text):
        written = m.group()
        if sum(c in string.digits for c in written) < 7:
            continue
        s, e = m.span()
        if s and text[s - 1] == "(":
            s, written = s - 1, "(" + written
        if s and text[s - 1] == "+":
            s, written = s - 1, "+" + written
        after = text[e] if e < len(text) else ""
        if (s and text[s - 1] in _PLAIN_GLUED_BEFORE) or after in _PLAIN_GLUED_AFTER:
            continue
        runs.append((len(text[:s].encode("utf-8", "surrogatepass")), written, after in ("X", "x")))
    return runs


@given(
    st.lists(
        st.sampled_from(
            [
                *("0123456789" * 6),
                *(" ().-" * 2),
                *("+", "(+", *"aZXx_#/=@$&%\n,:", "€", "£", "¥", "电话", "é", "\ud800", "  "),
                *("13812345678", "4111 1111 1111 1111", "v1.2.3"),
            ]
        ),
        max_size=60,
    ).map("".join)
)
@settings(max_examples=3000, deadline=None)
def test_runs_are_the_plain_definitions_runs(text: str) -> None:
    runs = [(r.start, r.written, r.after in ("X", "x")) for r in Text(text).runs]
    assert runs == plain_runs(text)
