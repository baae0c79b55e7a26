"""Path → handler table, and nothing else (the work lives in ``proxy.py`` and ``app.py``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from aiohttp import web

from tokenomy.gateway.wire_errors import ANTHROPIC, OPENAI
from tokenomy.providers.base import CHAT, COMPLETIONS, EMBEDDINGS, MESSAGES, RESPONSES

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def table(
    proxy: Callable[..., Awaitable[web.StreamResponse]],
    models: Handler,
    health: Handler,
) -> list[web.RouteDef]:
    return [
        web.post("/v1/chat/completions", partial(proxy, fmt=OPENAI, endpoint=CHAT)),
        web.post("/v1/completions", partial(proxy, fmt=OPENAI, endpoint=COMPLETIONS)),
        web.post("/v1/embeddings", partial(proxy, fmt=OPENAI, endpoint=EMBEDDINGS)),
        web.post("/v1/responses", partial(proxy, fmt=OPENAI, endpoint=RESPONSES)),
        web.post("/v1/messages", partial(proxy, fmt=ANTHROPIC, endpoint=MESSAGES)),
        web.get("/v1/models", models),
        web.get("/health", health),
    ]
