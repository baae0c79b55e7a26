"""The gateway app's wiring: the admin API mounted as its own sub-application beside the
catch-all 404, and services started and stopped through one async context."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from tokenomy.admin import create_admin_key
from tokenomy.config import parse_config
from tokenomy.gateway.app import STORE_KEY, build_app

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def gateway(sqlite_url: str) -> AsyncIterator[tuple[str, web.Application]]:
    app = build_app(parse_config({}), sqlite_url)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}", app
    await runner.cleanup()


async def _call(
    url: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.request(method, url, headers=headers or {}) as resp,
    ):
        assert resp.content_type == "application/json"
        return resp.status, dict(resp.headers), orjson.loads(await resp.read())


async def test_admin_paths_are_answered_by_the_admin_api_and_the_rest_by_the_gateway(
    gateway: tuple[str, web.Application],
) -> None:
    base, app = gateway
    _, secret = create_admin_key(app[STORE_KEY], name="root")
    admin = {"Authorization": f"Bearer {secret}"}

    status, _, body = await _call(base + "/admin/v1/keys", headers=admin)
    assert status == 200 and body == {"data": []}
    status, _, body = await _call(base + "/admin/v1/openapi.json")
    assert status == 200 and body["openapi"] == "3.1.0"

    # Unknown paths under the prefix: the admin API's own JSON 404 (not the gateway's).
    for path in ("/admin/v1/nope", "/admin/v1/", "/admin/v1", "/admin/v1/keys/a/b"):
        status, _, body = await _call(base + path, headers=admin)
        assert status == 404, path
        assert "openapi.json" in body["error"]["message"], path
    # A known path with another method: 405 with Allow, from the admin API.
    status, headers, body = await _call(base + "/admin/v1/keys", "PATCH", admin)
    assert status == 405 and headers["Allow"] == "GET, HEAD, POST"
    assert body["error"]["type"] == "invalid_request_error"

    # Everything else is the gateway's catch-all, in the client's own wire format.
    for path in ("/admin/v1x", "/admin", "/nope", "/v1/nope"):
        status, _, body = await _call(base + path)
        assert (status, body["error"]["code"]) == (404, "not_found"), path
        assert "README" in body["error"]["message"], path
    status, _, body = await _call(base + "/nope", headers={"anthropic-version": "2023-06-01"})
    assert status == 404 and body["type"] == "error"


async def test_services_start_and_stop_through_cleanup_ctx(sqlite_url: str) -> None:
    app = build_app(parse_config({}), sqlite_url)
    assert len(app.cleanup_ctx) >= 1
    # No hand-kept start and stop lists beside it.
    for handler in (*app.on_startup, *app.on_cleanup):
        assert not handler.__qualname__.startswith("build_app"), handler
    runner = web.AppRunner(app)
    await runner.setup()
    store = app[STORE_KEY]
    assert store.count_events() == 0  # open while the app runs
    await runner.cleanup()
    with pytest.raises(Exception, match="closed"):
        store.count_events()  # the databases are closed last, on cleanup
