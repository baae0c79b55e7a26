"""Credentials in request headers: one parser for the gateway, ``/health`` and the admin API."""

from __future__ import annotations

from collections.abc import Mapping


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of ``Authorization: Bearer TOKEN``, or None."""
    scheme, _, token = headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def api_key(headers: Mapping[str, str]) -> str | None:
    """A gateway API key: ``Authorization: Bearer KEY`` (OpenAI) or ``x-api-key`` (Anthropic)."""
    return bearer_token(headers) or headers.get("x-api-key") or None
