"""Detectors of personal identifiers and secrets in text.

Each detector is small: a cheap test that rules most texts out (a character that must
occur, a literal prefix), candidates, and a check of each candidate that look-alikes fail
(a checksum, a reserved range, a phone number's real grouping). The numeric detectors
share one pass over the text's digit runs (:attr:`Text.runs`). A detector answers only
*whether* its kind of data occurs; it never returns or logs the data itself.

===============  ==========  ================================================================
name             kind        what counts
===============  ==========  ================================================================
``email``        identifier  ``local@domain.tld`` (alphabetic TLD, not a file extension)
``phone``        identifier  ``phonenumbers``-valid for the policy's regions, or any valid
                             ``+``-prefixed number; grouped the way its country groups it,
                             or an unbroken run right after a word like "phone" / "电话"
``card``         identifier  13-19 digits, a card network's prefix, Luhn (python-stdnum)
``iban``         identifier  country format and mod-97 checksum (python-stdnum)
``cn_ric``       identifier  Chinese resident identity number: 18 characters, birth date,
                             ISO 7064 checksum (python-stdnum)
``us_ssn``       identifier  ``AAA-GG-SSSS`` or ``AAA GG SSSS`` outside the reserved ranges
                             (there is no checksum: area 000/666/9xx, group 00, serial 0000)
``api_key``      secret      OpenAI/Anthropic ``sk-``, AWS ``AKIA``/``ASIA``, GitHub ``ghp_``…,
                             Slack ``xox?-``, Stripe, Google ``AIza``, GitLab, Hugging Face
``private_key``  secret      a PEM ``-----BEGIN … PRIVATE KEY-----`` line
===============  ==========  ================================================================
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Literal, NamedTuple

Kind = Literal["identifier", "secret"]


class Run(NamedTuple):
    """A run of at least 7 digits with single separators, standing on its own."""

    start: int
    written: str  # as in the text, with what belongs before it ("+", "(")
    digits: str
    groups: tuple[str, ...]
    after: str  # the character after it ("" at the end)


# Digits with separators; boundaries are checked in Python (a leading class or lookbehind
# would make the regex engine try every position).
_RUN = re.compile(r"[0-9][0-9 ().\-]{5,}[0-9]")
_DIGITS = re.compile(r"[0-9]+")
_NOT_DIGITS = str.maketrans("", "", " ().-")
# A run touching one of these is part of something else: a word, an order number
# ("#1234567"), a path or URL, a version ("v1.2.3"), an amount, an address.
_ASCII_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
_GLUED_BEFORE = frozenset(_ASCII_ALNUM + "#/=._-@$€£¥&%")
# "11010519491231002X": the check character of a resident identity number may follow.
_GLUED_AFTER = frozenset(_ASCII_ALNUM + "@") - {"X", "x"}


class Text:
    """One text under scan: the text, the policy's phone regions and (once) its digit runs."""

    __slots__ = ("_runs", "_spans", "regions", "text")

    def __init__(self, text: str, regions: Sequence[str] = ("CN", "US")) -> None:
        self.text = text
        self.regions = regions
        self._runs: list[Run] | None = None
        self._spans: list[tuple[int, int]] = []

    @property
    def runs(self) -> list[Run]:
        """The digit runs that stand alone: candidates for numbers of their own."""
        if self._runs is None:
            self._runs = self._find()
        return self._runs

    @property
    def spans(self) -> list[tuple[int, int]]:
        """Where every run of 10+ digits is, glued to something or not (IBANs are)."""
        if self._runs is None:
            self._runs = self._find()
        return self._spans

    def _find(self) -> list[Run]:
        text, runs, spans = self.text, [], self._spans
        n = len(text)
        for m in _RUN.finditer(text):
            written = m.group()
            ndigits = len(written.translate(_NOT_DIGITS))
            if ndigits < 7:
                continue
            s, e = m.span()
            if ndigits >= _IBAN_MIN_DIGITS:
                spans.append((s, e))
            # A phone number's "+" and "(" come before the first digit.
            if s and text[s - 1] == "(":
                s -= 1
                written = "(" + written
            if s and text[s - 1] == "+":
                s -= 1
                written = "+" + written
            after = text[e] if e < n else ""
            if (s and text[s - 1] in _GLUED_BEFORE) or after in _GLUED_AFTER:
                continue
            groups = tuple(_DIGITS.findall(written))
            runs.append(Run(s, written, "".join(groups), groups, after))
        return runs


@dataclass(frozen=True, slots=True)
class Detector:
    """One kind of data: its config name, what people call it, its kind, and its test."""

    name: str
    label: str
    kind: Kind
    found: Callable[[Text], bool]


# -- e-mail ------------------------------------------------------------------------------
_EMAIL = re.compile(
    r"(?<![\w.%+\-])([\w.%+\-]{1,64})@((?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+"
    r"([A-Za-z]{2,24}))(?![\w\-]|\.[A-Za-z0-9])"
)
# "icon@2x.png", "logo@3x.webp": asset names, not addresses; "git@github.com": SSH remotes.
_FILE_TLDS = frozenset(
    re.findall(
        r"\w+",
        "png jpg jpeg gif svg webp ico bmp tif tiff css scss js mjs cjs ts tsx jsx json yaml "
        "yml toml lock txt html htm xml pdf zip gz tgz py md rs rb java kt swift vue go sh",
    )
)
_SERVICE_USERS = frozenset({"git", "hg", "svn"})
# Domains reserved for documentation and tests (RFC 2606, RFC 6761): nobody's address, and
# all over the code and fixtures that coding agents send.
_RESERVED_DOMAINS = frozenset({"example.com", "example.net", "example.org"})
_RESERVED_TLDS = frozenset({"example", "test", "invalid", "localhost", "local"})
_RESERVED_SUFFIXES = tuple("." + d for d in _RESERVED_DOMAINS)


def _email(t: Text) -> bool:
    if "@" not in t.text:
        return False
    for m in _EMAIL.finditer(t.text):
        local, domain, tld = m.group(1), m.group(2).lower(), m.group(3).lower()
        if tld in _FILE_TLDS or tld in _RESERVED_TLDS or local.lower() in _SERVICE_USERS:
            continue
        if domain in _RESERVED_DOMAINS or domain.endswith(_RESERVED_SUFFIXES):
            continue
        if local.startswith(".") or local.endswith(".") or ".." in local:
            continue
        return True
    return False


# -- payment cards -----------------------------------------------------------------------
def _card_prefix(d: str) -> bool:
    n2, n3, n4 = int(d[:2]), int(d[:3]), int(d[:4])
    return (
        d[0] == "4"  # Visa
        or 51 <= n2 <= 55
        or 2221 <= n4 <= 2720  # Mastercard
        or n2 in (34, 37)  # American Express
        or n2 in (36, 38, 39)
        or 300 <= n3 <= 305  # Diners Club
        or n4 == 6011
        or n2 == 65
        or 644 <= n3 <= 649  # Discover
        or 3528 <= n4 <= 3589  # JCB
        or n2 == 62  # UnionPay
        or n2 in (50, 56, 57, 58, 67)  # Maestro
    )


def _card_groups(run: Run) -> bool:
    if len(run.groups) == 1:
        return True
    seps = set(run.written) - _DIGIT_CHARS
    if len(seps) != 1 or not seps <= {" ", "-"}:
        return False
    sizes = [len(g) for g in run.groups]
    if sizes in ([4, 6, 5], [4, 6, 4]):  # American Express, Diners Club
        return True
    return all(s == 4 for s in sizes[:-1]) and 1 <= sizes[-1] <= 4


_DIGIT_CHARS = frozenset("0123456789")


def _card(t: Text) -> bool:
    from stdnum import luhn

    for run in t.runs:
        d = run.digits
        if (
            13 <= len(d) <= 19
            and run.written[0] not in "+("
            and _card_groups(run)
            and _card_prefix(d)
            and len(set(d)) > 1
            and luhn.is_valid(d)
        ):
            return True
    return False


# -- phone numbers -----------------------------------------------------------------------
_PHONE_WORDS = re.compile(
    r"(?:phone|tel|mobile|cell|call|fax|whatsapp|wechat|sms|contact|reach"
    r"|电话|手机|联系|微信|致电|座机)\S{0,4}(?:\W{1,3}\S{1,12}){0,2}\W{0,3}$",
    re.IGNORECASE,
)
_PHONE_HINTS = (
    *("phone", "tel", "mobile", "cell", "call", "fax", "whatsapp", "wechat", "sms"),
    *("contact", "reach", "电话", "手机", "联系", "微信", "致电", "座机"),
)
_NANP = frozenset({"US", "CA"})


def _said_phone(text: str, start: int) -> bool:
    before = text[max(0, start - 32) : start]
    low = before.lower()
    return any(w in low for w in _PHONE_HINTS) and _PHONE_WORDS.search(before) is not None


def _sizes_coarsen(sizes: Sequence[int], pattern: Sequence[int]) -> bool:
    # Whether groups of these sizes can be the pattern's groups, some of them joined.
    i = 0
    for s in sizes:
        acc = 0
        while i < len(pattern) and acc < s:
            acc += pattern[i]
            i += 1
        if acc != s:
            return False
    return i == len(pattern)


def _plausible(region: str, run: Run) -> bool:
    """A cheap look at a national number before ``phonenumbers`` parses it (≈50 µs)."""
    d, sizes = run.digits, [len(g) for g in run.groups]
    if region in _NANP:
        if len(d) == 11 and d[0] == "1":
            d, sizes = d[1:], sizes[1:] if sizes[0] == 1 else [sizes[0] - 1, *sizes[1:]]
        return (
            len(d) == 10
            and d[0] in "23456789"
            and d[3] in "23456789"
            and _sizes_coarsen(sizes, (3, 3, 4))
        )
    if region == "CN":
        if d[0] == "1":  # mobile
            return len(d) == 11 and d[1] in "3456789" and _sizes_coarsen(sizes, (3, 4, 4))
        return d[0] == "0" and 10 <= len(d) <= 12 and (len(sizes) == 1 or sizes[0] in (3, 4))
    return True


def _coarsens(cand: Sequence[str], fmt: Sequence[str]) -> bool:
    # True when each candidate group is a run of whole formatted groups, in order.
    i = 0
    for g in cand:
        acc = ""
        while i < len(fmt) and len(acc) < len(g):
            acc += fmt[i]
            i += 1
        if acc != g:
            return False
    return i == len(fmt)


def _phone(t: Text) -> bool:
    import phonenumbers as pn

    for run in t.runs:
        if len(run.digits) > 15 or run.after in ("X", "x"):
            continue
        international = run.written.startswith(("+", "(+"))
        # An unbroken run is a phone number only when the text says so.
        if len(run.groups) == 1 and not international and not _said_phone(t.text, run.start):
            continue
        for region in (None,) if international else t.regions:
            if region is not None and not _plausible(region, run):
                continue
            try:
                num = pn.parse(run.written, region)
            except pn.NumberParseException:
                continue
            if not pn.is_valid_number(num):
                continue
            if international or len(run.groups) == 1:
                return True
            for fmt in (pn.PhoneNumberFormat.NATIONAL, pn.PhoneNumberFormat.INTERNATIONAL):
                if _coarsens(run.groups, _DIGITS.findall(pn.format_number(num, fmt))):
                    return True
    return False


# -- IBAN --------------------------------------------------------------------------------
_IBAN_SPAN = 44
_IBAN_MIN_DIGITS = 10
_IBAN = re.compile(r"[A-Z]{2}[0-9]{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?")


def _iban(t: Text) -> bool:
    from stdnum import iban

    text = t.text
    # Every IBAN's account part holds a run of 10+ digits (in groups of four or not): look
    # only around those (an IBAN is at most 34 characters, 42 in groups of four).
    windows: list[list[int]] = []
    for start, end in t.spans:
        lo, hi = max(0, start - _IBAN_SPAN), end + _IBAN_SPAN
        if windows and lo <= windows[-1][1]:
            windows[-1][1] = hi
        else:
            windows.append([lo, hi])
    return any(_iban_near(text, lo, hi, iban.is_valid) for lo, hi in windows)


def _iban_near(text: str, lo: int, hi: int, is_valid: Callable[[str], bool]) -> bool:
    for m in _IBAN.finditer(text, lo, hi):
        s, e = m.span()
        if (s and text[s - 1].isascii() and text[s - 1].isalnum()) or (
            e < len(text) and text[e].isascii() and text[e].isalnum()
        ):
            continue
        if is_valid(m.group()):
            return True
    return False


# -- Chinese resident identity number ----------------------------------------------------
def _cn_ric(t: Text) -> bool:
    from stdnum.cn import ric

    for run in t.runs:
        if len(run.groups) != 1:
            continue
        d = run.digits
        if len(d) == 17 and run.after in ("X", "x"):
            d += "X"
        if len(d) == 18 and ric.is_valid(d):
            return True
    return False


# -- US social security number -----------------------------------------------------------
# Numbers published in advertising and never valid.
_SSN_VOID = frozenset({"078051120", "219099999"})


def _us_ssn(t: Text) -> bool:
    for run in t.runs:
        w = run.written.lstrip("(")
        if len(w) != 11 or w[3] != w[6] or w[3] not in " -" or run.after in ("X", "x"):
            continue
        area, group, serial = run.groups if len(run.groups) == 3 else ("", "", "")
        if len(area) != 3 or len(group) != 2 or len(serial) != 4:
            continue
        if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
            continue
        if run.digits not in _SSN_VOID:
            return True
    return False


# -- secrets -----------------------------------------------------------------------------
# (literal that must occur, pattern of the key; the key's body is group 1 when checked
# for looking random)
_KEYS: tuple[tuple[str, re.Pattern[str], bool], ...] = (
    ("sk-", re.compile(r"(?<![\w\-])sk-(?:ant-|proj-|svcacct-|admin-)?([\w\-]{20,})"), True),
    ("AKIA", re.compile(r"(?<![A-Za-z0-9])AKIA[0-9A-Z]{16}(?![A-Za-z0-9])"), False),
    ("ASIA", re.compile(r"(?<![A-Za-z0-9])ASIA[0-9A-Z]{16}(?![A-Za-z0-9])"), False),
    ("_", re.compile(r"(?<![A-Za-z0-9])gh[pousr]_([A-Za-z0-9]{36,})"), True),
    ("github_pat_", re.compile(r"github_pat_[A-Za-z0-9_]{60,}"), False),
    ("xox", re.compile(r"(?<![A-Za-z0-9])xox[abpres]-([A-Za-z0-9\-]{10,})"), True),
    ("_live_", re.compile(r"(?<![A-Za-z0-9])[sr]k_live_[A-Za-z0-9]{20,}"), False),
    ("_test_", re.compile(r"(?<![A-Za-z0-9])[sr]k_test_[A-Za-z0-9]{20,}"), False),
    ("AIza", re.compile(r"(?<![A-Za-z0-9])AIza([0-9A-Za-z_\-]{35})"), True),
    ("glpat-", re.compile(r"glpat-[A-Za-z0-9_\-]{20,}"), False),
    ("hf_", re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z]{34,}"), False),
)
_GH = ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")
_MIXED = (re.compile(r"[a-z]"), re.compile(r"[A-Z]"), re.compile(r"[0-9]"))


def _random_looking(token: str) -> bool:
    # Real keys mix lower case, upper case and digits; "sk-learn-tutorial-2024" does not.
    return all(p.search(token) for p in _MIXED)


def _api_key(t: Text) -> bool:
    text = t.text
    for literal, pattern, mixed in _KEYS:
        if literal == "_":
            if not any(g in text for g in _GH):
                continue
        elif literal not in text:
            continue
        for m in pattern.finditer(text):
            if not mixed or _random_looking(m.group(1)):
                return True
    return False


_PEM = re.compile(r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----")


def _private_key(t: Text) -> bool:
    return "PRIVATE KEY" in t.text and _PEM.search(t.text) is not None


DETECTORS: tuple[Detector, ...] = (
    Detector("api_key", "API key", "secret", _api_key),
    Detector("private_key", "private key", "secret", _private_key),
    Detector("email", "email address", "identifier", _email),
    Detector("card", "payment card number", "identifier", _card),
    Detector("iban", "IBAN", "identifier", _iban),
    Detector("cn_ric", "Chinese resident identity number", "identifier", _cn_ric),
    Detector("us_ssn", "US social security number", "identifier", _us_ssn),
    Detector("phone", "phone number", "identifier", _phone),
)
BY_NAME = {d.name: d for d in DETECTORS}


@cache
def warm_up() -> None:
    """Import the checksum libraries and load phone metadata (≈0.1 s, once per process)."""
    import phonenumbers
    from stdnum import iban, luhn
    from stdnum.cn import ric

    phonenumbers.is_valid_number(phonenumbers.parse("+8613800138000"))
    phonenumbers.is_valid_number(phonenumbers.parse("+12025550100"))
    ric.is_valid("11010519491231002X")
    iban.is_valid("GB82WEST12345698765432")
    luhn.is_valid("4111111111111111")
