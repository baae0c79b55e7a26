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

    start: int  # offset in the text's UTF-8 bytes (:attr:`Text.data`)
    written: str  # as in the text, with what belongs before it ("+", "(")
    digits: str
    groups: tuple[str, ...]
    after: str  # the byte after it as a character, "" at the end (only "X"/"x" matter)


# The numeric detectors look at runs of digits and separators (" ().-") that stand on their
# own. A run touching one of these is part of something else: a word, an order number
# ("#1234567"), a path or URL, a version ("v1.2.3"), an amount, an address; after it an
# "X" may follow (the check character of "11010519491231002X").
#
# Agent output is full of glued digits (timestamps, ids, hashes), and a regex over the text
# would try a match at every digit (~400 instructions each). So the runs are found in a
# copy of the text's UTF-8 bytes where every byte is replaced by its class, one C
# translate: a run can only start at a digit right after a separator or a boundary ("s0",
# "b0"), two literal prefixes the engine jumps between. Every byte of a multi-byte
# character is "b"; the three glued ones among them are checked after (€ £ ¥).
_CLASSES: dict[str, bytes] = {
    "0": b"0123456789",
    "A": bytes(c for c in range(65, 91) if c != ord("X")),  # capitals: glued, for IBANs
    "X": b"X",  # glued before, not after; a capital
    "x": b"x",  # glued before, not after
    "g": bytes(c for c in range(97, 123) if c != ord("x")) + b"_@",  # glued both sides
    ".": b".-",  # a separator, glued before a run ("v1.2", "-5")
    "p": b"#/=$&%",  # glued before
    "s": b" ()",  # a separator, not glued
}
_CLASS_OF = bytearray(b"b" * 256)  # "b": a boundary, anything else
for _name, _members in _CLASSES.items():
    for _byte in _members:
        _CLASS_OF[_byte] = ord(_name)
_CLASS_TABLE = bytes(_CLASS_OF)
_GLUED_BEFORE = frozenset(b"0AXxg.p")
_DIGIT, _SEPARATOR, _RUN_INSIDE = ord("0"), ord("s"), b"s."
_GLUED_MULTIBYTE = (b"\xe2\x82\xac", b"\xc2\xa3", b"\xc2\xa5")  # € £ ¥ in UTF-8
# The atomic group keeps a run rejected by the lookahead from being retried shorter.
_RUN_AFTER = re.compile(rb"b0(?>[0s.]{5,}0)(?![Ag])")
_RUN_AFTER_SPACE = re.compile(rb"s0(?>[0s.]{5,}0)(?![Ag])")
_DIGITS = re.compile(r"[0-9]+")


class Text:
    """One text under scan: the text, the policy's phone regions and (once) its digit runs."""

    __slots__ = ("_classes", "_data", "_runs", "regions", "text")

    def __init__(self, text: str, regions: Sequence[str] = ("CN", "US")) -> None:
        self.text = text
        self.regions = regions
        self._data: bytes | None = None
        self._classes: bytes | None = None
        self._runs: list[Run] | None = None

    @property
    def data(self) -> bytes:
        """The text in UTF-8 (lone surrogates kept: a client may send them)."""
        if self._data is None:
            self._data = self.text.encode("utf-8", "surrogatepass")
        return self._data

    @property
    def classes(self) -> bytes:
        """``data`` with each byte replaced by its class, after a "b" for the text's start."""
        if self._classes is None:
            self._classes = (b"\n" + self.data).translate(_CLASS_TABLE)
        return self._classes

    @property
    def runs(self) -> list[Run]:
        """The digit runs that stand alone: candidates for numbers of their own."""
        if self._runs is None:
            self._runs = self._find()
        return self._runs

    def _find(self) -> list[Run]:
        data, classes = self.data, self.classes
        found: list[tuple[int, int]] = []
        for pattern in (_RUN_AFTER, _RUN_AFTER_SPACE):
            for m in pattern.finditer(classes):
                # classes[i] is data[i - 1]: the match's first byte is the one before the run
                found.append((m.start(), m.end() - 1))
        found.sort()
        runs = []
        for s, e in found:
            if classes.count(b"0", s + 1, e + 1) < 7:
                continue
            first = s
            if classes[s] == _SEPARATOR:  # the tail of a run rejected whole ("#5 1234567")?
                j = s
                while classes[j] in _RUN_INSIDE:
                    j -= 1
                if classes[j] == _DIGIT:
                    continue
            # A phone number's "+" and "(" come before the first digit; then what is before
            # them decides.
            if s and data[s - 1] == ord("("):
                s -= 1
            if s and data[s - 1] == ord("+"):
                s -= 1
            if s and (
                (s < first and classes[s] in _GLUED_BEFORE)
                or (data[s - 1] >= 0x80 and data[max(0, s - 3) : s].endswith(_GLUED_MULTIBYTE))
            ):
                continue
            written = data[s:e].decode("ascii")
            groups = tuple(_DIGITS.findall(written))
            after = chr(data[e]) if e < len(data) else ""
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


_DIGIT_CHARS = frozenset("0123456789")


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


def _said_phone(t: Text, start: int) -> bool:
    # The 32 characters before the run at byte ``start`` (at most 4 bytes per character).
    before = t.data[max(0, start - 128) : start].decode("utf-8", "ignore")[-32:]
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
        regions: Sequence[str | None] = (None,)
        if not international:
            regions = [r for r in t.regions if _plausible(r, run)]
            # An unbroken run is a phone number only when the text says so.
            if not regions or (len(run.groups) == 1 and not _said_phone(t, run.start)):
                continue
        for region in regions:
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
# Country code and check digits, then the account part, unbroken or in groups of four.
_IBAN = re.compile(r"[A-Z][A-Z][0-9][0-9](?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?")
# Every IBAN starts with two capitals and two digits: in :attr:`Text.classes` "AA00" (or
# with an "X", as in "XK05"), a few substring tests: ~4x cheaper than the regex alone,
# which tries a match at every capital. (One capital and two digits would not do: every
# ISO timestamp has "T12".)
_IBAN_STARTS = (b"AA00", b"XA00", b"AX00")


def _iban(t: Text) -> bool:
    from stdnum import iban

    text = t.text
    if not any(start in t.classes for start in _IBAN_STARTS):
        return False
    for m in _IBAN.finditer(text):
        s, e = m.span()
        if (s and text[s - 1].isascii() and text[s - 1].isalnum()) or (
            e < len(text) and text[e].isascii() and text[e].isalnum()
        ):
            continue
        if iban.is_valid(m.group()):
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
# (what must occur: a literal, or a literal-prefix regex where one stands for several
# literals; pattern of the key; the key's body is group 1 when checked for looking random)
_KEYS: tuple[tuple[str | re.Pattern[str], re.Pattern[str], bool], ...] = (
    ("sk-", re.compile(r"(?<![\w\-])sk-(?:ant-|proj-|svcacct-|admin-)?([\w\-]{20,})"), True),
    ("AKIA", re.compile(r"(?<![A-Za-z0-9])AKIA[0-9A-Z]{16}(?![A-Za-z0-9])"), False),
    ("ASIA", re.compile(r"(?<![A-Za-z0-9])ASIA[0-9A-Z]{16}(?![A-Za-z0-9])"), False),
    # GitHub's five prefixes in one search (five ``in`` tests cost 4x more)
    (re.compile(r"gh[pousr]_"), re.compile(r"(?<![A-Za-z0-9])gh[pousr]_([A-Za-z0-9]{36,})"), True),
    ("github_pat_", re.compile(r"github_pat_[A-Za-z0-9_]{60,}"), False),
    ("xox", re.compile(r"(?<![A-Za-z0-9])xox[abpres]-([A-Za-z0-9\-]{10,})"), True),
    ("_live_", re.compile(r"(?<![A-Za-z0-9])[sr]k_live_[A-Za-z0-9]{20,}"), False),
    ("_test_", re.compile(r"(?<![A-Za-z0-9])[sr]k_test_[A-Za-z0-9]{20,}"), False),
    ("AIza", re.compile(r"(?<![A-Za-z0-9])AIza([0-9A-Za-z_\-]{35})"), True),
    ("glpat-", re.compile(r"glpat-[A-Za-z0-9_\-]{20,}"), False),
    ("hf_", re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z]{34,}"), False),
)
_MIXED = (re.compile(r"[a-z]"), re.compile(r"[A-Z]"), re.compile(r"[0-9]"))


def _random_looking(token: str) -> bool:
    # Real keys mix lower case, upper case and digits; "sk-learn-tutorial-2024" does not.
    return all(p.search(token) for p in _MIXED)


def _api_key(t: Text) -> bool:
    text = t.text
    for needle, pattern, mixed in _KEYS:
        if isinstance(needle, str):
            if needle not in text:
                continue
        elif needle.search(text) is None:
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
