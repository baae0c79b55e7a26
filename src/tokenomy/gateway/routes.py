"""Path → handler table, and nothing else (the work lives in ``proxy.py`` and ``app.py``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial

from aiohttp import web

from tokenomy.wire import ENDPOINTS

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def table(
    proxy: Callable[..., Awaitable[web.StreamResponse]],
    models: Handler,
    health: Handler,
) -> list[web.RouteDef]:
    return [
        *(web.post(e.path, partial(proxy, endpoint=e)) for e in ENDPOINTS.values()),
        web.get("/v1/models", models),
        web.get("/health", health),
    ]
