"""Adapter for Anthropic Messages API upstreams."""

from __future__ import annotations

from typing import Any

from tokenomy.config import Provider
from tokenomy.metering.usage import anthropic_usage
from tokenomy.providers.base import MESSAGES
from tokenomy.types import Usage

DEFAULT_VERSION = "2023-06-01"


class AnthropicAdapter:
    kind = "anthropic"
    endpoints = frozenset({MESSAGES})

    def url(self, provider: Provider, endpoint: str) -> str:
        # base_url excludes the version prefix, as in the Anthropic SDK ("https://api.anthropic.com").
        return provider.base_url + "/v1/messages"

    def __init__(self) -> None:
        self._headers: dict[str, dict[str, str]] = {}

    def headers(self, provider: Provider, client_headers: Any) -> dict[str, str]:
        base = self._headers.get(provider.name)
        if base is None:  # built once per provider, like the OpenAI adapter's
            base = {
                "Content-Type": "application/json",
                "anthropic-version": DEFAULT_VERSION,
                **provider.headers,
            }
            key = provider.api_key()
            if key:
                base["x-api-key"] = key
            self._headers[provider.name] = base
        headers = dict(base)
        if client_headers is not None:
            for name in ("anthropic-version", "anthropic-beta"):
                value = client_headers.get(name)
                if value:
                    headers[name] = value
        return headers

    def prepare(
        self, endpoint: str, body: dict[str, Any], upstream_model: str, stream: bool
    ) -> dict[str, Any]:
        body["model"] = upstream_model
        return body

    def usage(self, endpoint: str, body: dict[str, Any]) -> Usage | None:
        return anthropic_usage(body.get("usage"))
