"""Data sovereignty: each request's data class, and where the policy lets it go.

* :func:`classify` — the request's :class:`Verdict` (``public | internal | confidential |
  restricted`` and why): the ``X-Tokenomy-Data-Class`` header, else detectors over every
  text the request carries (``tokenomy.wire.texts``); unscannable parts and detector
  failures give the strictest class.
* :class:`Policy` — built from ``[policy]`` (``Settings.policy``); ``refusal(verdict,
  provider, org, team)`` is None when the provider may receive the request, else why not.
* ``detectors`` — e-mail, phone (phonenumbers), payment card (Luhn), IBAN, Chinese resident
  identity number (python-stdnum), US SSN, API keys and private keys.

See docs/data-policy.md.
"""

from __future__ import annotations

from tokenomy.sovereignty.classes import CLASSES, STRICTEST
from tokenomy.sovereignty.detectors import DETECTORS, warm_up
from tokenomy.sovereignty.policy import Policy, Rule, build_policy
from tokenomy.sovereignty.scan import HEADER, Scanner, Verdict, classify, parse_header

__all__ = [
    "CLASSES",
    "DETECTORS",
    "HEADER",
    "STRICTEST",
    "Policy",
    "Rule",
    "Scanner",
    "Verdict",
    "build_policy",
    "classify",
    "parse_header",
    "warm_up",
]
