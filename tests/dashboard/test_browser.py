"""The dashboard in a real headless Chromium (Debian's ``chromium``, driven by Playwright).

``scripts/test`` installs both (apt ``chromium`` and the ``test`` extra's ``playwright``);
no browser is downloaded. Without Chromium these tests skip on a developer machine and
fail under ``scripts/test`` or in CI (``TOKENOMY_REQUIRE_BROWSER`` or ``CI`` set), so CI
always runs them. Screenshots go to ``test-artifacts/dashboard/`` (git-ignored);
``TOKENOMY_UPDATE_SCREENSHOT=1`` also copies the overview to ``docs/img/dashboard.png``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.dashboard.conftest import HOUR_MS, Dash, dashboard, events
from tokenomy.ledger.reports import usage_report

REQUIRED = bool(os.environ.get("TOKENOMY_REQUIRE_BROWSER") or os.environ.get("CI"))
if REQUIRED:
    import playwright.async_api as playwright_api
else:
    playwright_api = pytest.importorskip("playwright.async_api")

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
README_SHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "dashboard.png"


def _chromium() -> str | None:
    for candidate in (
        os.environ.get("TOKENOMY_CHROMIUM"),
        "/usr/lib/chromium/chromium",  # Debian's binary (/usr/bin/chromium is a wrapper)
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    return None


CHROMIUM = _chromium()
if CHROMIUM is None:
    if REQUIRED:
        raise RuntimeError("CI must run the browser tests: apt-get install chromium")
    pytest.skip("no chromium installed (scripts/test installs it)", allow_module_level=True)


@pytest.fixture
async def live_dash(sqlite_url: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Dash]:
    """A gateway whose ledger holds 48 hours of events ending now (the default range)."""
    monkeypatch.setenv("FAKE_OPENAI_KEY", "sk-upstream-openai")  # what the fake expects
    now = int(time.time() * 1000)
    start = now - now % HOUR_MS - 47 * HOUR_MS
    async with dashboard(sqlite_url, events(600, start_ms=start)) as d:
        yield d


class Browser:
    """One Chromium page that records console errors and uncaught exceptions."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.errors: list[str] = []
        page.on(
            "console",
            lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None,
        )
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))

    async def sign_in(self, url: str, secret: str) -> None:
        await self.page.goto(url + "/dashboard")
        await self.page.fill("#admin_key", secret)
        async with self.page.expect_response(lambda r: "/api/summary" in r.url) as info:
            await self.page.click("button[type=submit]")
        self.summary = await (await info.value).json()
        await self.page.wait_for_selector("body[data-loaded=overview]")

    async def shot(self, name: str) -> Path:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with playwright_api.async_playwright() as p:
        chromium = await p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
        )
        context = await chromium.new_context(viewport={"width": 1360, "height": 900})
        page = await context.new_page()
        try:
            yield Browser(page)
        finally:
            await chromium.close()


async def _canvas_drawn(page: Any, selector: str) -> bool:
    """True once the chart's canvas exists, has a size, and holds non-blank pixels (uPlot
    draws on the next animation frame: waited for, up to 10 s)."""
    try:
        await page.wait_for_function(
            """(sel) => {
              const c = document.querySelector(sel + " canvas");
              if (!c || !c.width || !c.height) return false;
              const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
              for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) return true;
              return false;
            }""",
            arg=selector,
            timeout=10_000,
        )
    except playwright_api.TimeoutError:
        return False
    return True


async def test_sign_in_overview_totals_charts_and_no_console_errors(
    live_dash: Dash, browser: Browser
) -> None:
    page = browser.page
    await page.goto(live_dash.url + "/dashboard")
    assert await page.is_visible("#admin_key")  # login required
    await browser.sign_in(live_dash.url, live_dash.global_key)
    api = browser.summary
    # The page shows the API's totals, and the API's equal `tokenomy usage` for its range.
    shown = await page.text_content('[data-total="cost_usd"]')
    assert shown == api["totals"]["cost_usd"]
    requests = await page.text_content('[data-total="requests"]')
    assert requests is not None and int(requests.replace(",", "")) == api["totals"]["requests"]
    usage = usage_report(live_dash.store, since_ms=api["since_ms"], until_ms=api["until_ms"])[0]
    assert Decimal(api["totals"]["cost_usd"]) == usage["cost_usd"]
    assert api["totals"]["requests"] == usage["requests"] == 600
    assert await _canvas_drawn(page, "#chart-cost")
    assert await _canvas_drawn(page, "#chart-tokens")
    assert await page.locator("#top-agents tbody tr").count() >= 2
    # Interactive group-by: one new request, the groups table follows.
    async with page.expect_response(lambda r: "by=model" in r.url):
        await page.select_option("#by", "model")
    # A locator expectation, not wait_for_function("..."): Playwright turns an expression
    # string into a function with eval, which the dashboard's CSP (no unsafe-eval) refuses
    # whenever the first check is too early.
    await playwright_api.expect(page.locator("#groups-title")).to_have_text("By model")
    names = await page.locator("#groups tbody tr td:first-child").all_text_contents()
    assert set(names) <= {"gpt-4o", "gpt-4o-mini", "claude-sonnet", "local-llama"}
    path = await browser.shot("overview")
    if os.environ.get("TOKENOMY_UPDATE_SCREENSHOT"):
        README_SHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, README_SHOT)
    assert browser.errors == []


async def test_every_page_loads_without_console_errors(live_dash: Dash, browser: Browser) -> None:
    page = browser.page
    from tokenomy.budgets import storage
    from tokenomy.budgets.model import BUDGET

    storage.set_budget(
        live_dash.store,
        kind=BUDGET,
        scope="team:research",
        unit="usd",
        limit=2 * 10**9,
        period="month",
        hard=True,
    )
    await browser.sign_in(live_dash.url, live_dash.global_key)
    await page.click("nav >> text=Budgets")
    await page.wait_for_selector("body[data-loaded=budgets]")
    assert await page.locator("#budgets tbody tr").count() == 1
    assert await _canvas_drawn(page, "#burn-downs .chart")
    await browser.shot("budgets")
    await page.click("nav >> text=Requests")
    await page.wait_for_selector("body[data-loaded=requests]")
    assert await page.locator("#log tbody tr").count() == 50
    await page.fill("input[name=status]", "429")
    async with page.expect_response(lambda r: "status=429" in r.url):
        await page.press("input[name=status]", "Enter")
    statuses = await page.locator("#log tbody tr td:nth-child(7)").all_text_contents()
    assert statuses and set(statuses) == {"429"}
    await browser.shot("requests")
    # Live: traffic through the gateway shows up; one request per refresh.
    async with aiohttp.ClientSession() as s:
        for _ in range(5):
            async with s.post(
                live_dash.gw.openai_base + "/chat/completions",
                json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
                headers={"Authorization": f"Bearer {live_dash.gw.key}"},
            ) as r:
                assert r.status == 200
    live_calls: list[str] = []
    page.on("request", lambda r: live_calls.append(r.url) if "/dashboard/api/" in r.url else None)
    await page.click("nav >> text=Live")
    await page.wait_for_selector("body[data-loaded=live]")
    await page.wait_for_timeout(2500)  # one more refresh
    rate = await page.text_content('[data-live="requests_per_s"]')
    assert rate is not None and float(rate) > 0
    assert await _canvas_drawn(page, "#chart-live")
    assert live_calls and all("/dashboard/api/live" in u for u in live_calls)
    await browser.shot("live")
    assert browser.errors == []


async def test_a_team_admin_cannot_see_another_team(live_dash: Dash, browser: Browser) -> None:
    page = browser.page
    await browser.sign_in(live_dash.url, live_dash.research_key)
    assert "team admin of research" in (await page.text_content("header .who") or "")
    teams = await page.locator("#groups tbody tr td:first-child").all_text_contents()
    assert teams == ["research"]
    usage = usage_report(
        live_dash.store,
        since_ms=browser.summary["since_ms"],
        until_ms=browser.summary["until_ms"],
        filters={"org": "acme", "team": "research"},
    )[0]
    shown = await page.text_content('[data-total="cost_usd"]')
    assert shown is not None and Decimal(shown) == usage["cost_usd"]
    # Asking the API for another team's requests yields nothing of theirs.
    reply = await page.request.get(live_dash.url + "/dashboard/api/requests?key=k-sales")
    assert (await reply.json())["data"] == []
    await page.goto(live_dash.url + "/dashboard/requests")
    await page.wait_for_selector("body[data-loaded=requests]")
    teams_seen = await page.locator("#log tbody tr td:nth-child(3)").all_text_contents()
    assert teams_seen and set(teams_seen) == {"research"}
    await browser.shot("team-admin")
    assert browser.errors == []


async def test_logout_works_and_the_pages_ask_to_sign_in_again(
    live_dash: Dash, browser: Browser
) -> None:
    page = browser.page
    await browser.sign_in(live_dash.url, live_dash.global_key)
    cookies = await page.context.cookies()
    session = [c for c in cookies if c["name"] == "tokenomy_session"]
    assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
    assert session[0]["expires"] > time.time()
    await page.click("#logout")
    await page.wait_for_selector("#admin_key")
    await page.goto(live_dash.url + "/dashboard/budgets")
    assert await page.is_visible("#admin_key")
    reply = await page.request.get(live_dash.url + "/dashboard/api/summary")
    assert reply.status == 401
    assert browser.errors == []
