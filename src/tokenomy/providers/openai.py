"""Adapter for OpenAI-compatible upstreams (OpenAI, DeepSeek, Qwen, vLLM, llama.cpp, Ollama...)."""

from __future__ import annotations

from typing import Any

from tokenomy.config import Provider
from tokenomy.metering.usage import openai_usage
from tokenomy.providers.base import CHAT, COMPLETIONS, EMBEDDINGS, RESPONSES
from tokenomy.types import Usage

_PATHS = {
    CHAT: "/chat/completions",
    COMPLETIONS: "/completions",
    EMBEDDINGS: "/embeddings",
    RESPONSES: "/responses",
}


class OpenAIAdapter:
    kind = "openai"
    endpoints = frozenset(_PATHS)

    def url(self, provider: Provider, endpoint: str) -> str:
        # base_url includes the version prefix, as in the OpenAI SDK ("https://api.openai.com/v1").
        return provider.base_url + _PATHS[endpoint]

    def __init__(self) -> None:
        self._headers: dict[str, dict[str, str]] = {}

    def headers(self, provider: Provider, client_headers: Any) -> dict[str, str]:
        # Built once per provider: the upstream key is read from its env var at first use.
        headers = self._headers.get(provider.name)
        if headers is None:
            headers = {"Content-Type": "application/json", **provider.headers}
            key = provider.api_key()
            if key:
                headers["Authorization"] = f"Bearer {key}"
            self._headers[provider.name] = headers
        return headers

    def prepare(
        self, endpoint: str, body: dict[str, Any], upstream_model: str, stream: bool
    ) -> dict[str, Any]:
        """The upstream body: the deployment's model id, and stream usage always requested."""
        body["model"] = upstream_model
        if stream and endpoint in (CHAT, COMPLETIONS):
            options = body.get("stream_options")
            body["stream_options"] = {
                **(options if isinstance(options, dict) else {}),
                "include_usage": True,
            }
        return body

    def usage(self, endpoint: str, body: dict[str, Any]) -> Usage | None:
        return openai_usage(body.get("usage"))
