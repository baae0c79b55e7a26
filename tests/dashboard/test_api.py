"""The dashboard's sign-in, sessions and JSON API against a real gateway and ledger."""

from __future__ import annotations

from decimal import Decimal

import aiohttp

from tests.dashboard.conftest import SINCE, UNTIL, Dash
from tokenomy.admin import AdminPrincipal
from tokenomy.ledger.reports import parse_time, usage_report


def _usage(dash: Dash, **filters: str) -> dict[str, object]:
    rows = usage_report(
        dash.store, since_ms=parse_time(SINCE), until_ms=parse_time(UNTIL), filters=filters
    )
    return rows[0]


async def test_without_a_session_pages_show_the_sign_in_form_and_the_api_refuses(
    dash: Dash,
) -> None:
    async with aiohttp.ClientSession() as s:
        for path in ("/dashboard", "/dashboard/budgets", "/dashboard/requests"):
            async with s.get(dash.url + path) as r:
                assert r.status == 200
                text = await r.text()
                assert 'action="/dashboard/login"' in text and "Sign out" not in text
        async with s.get(dash.url + "/dashboard/api/summary") as r:
            assert r.status == 401
        async with s.post(dash.url + "/dashboard/login", data={"admin_key": "tka-nope"}) as r:
            assert r.status == 401
            assert "Invalid admin key" in await r.text()
        # A gateway API key is not an admin key.
        async with s.post(dash.url + "/dashboard/login", data={"admin_key": dash.gw.key}) as r:
            assert r.status == 401


async def test_session_cookie_is_httponly_samesite_and_expires(dash: Dash) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            dash.url + "/dashboard/login",
            data={"admin_key": dash.global_key},
            allow_redirects=False,
        ) as r,
    ):
        assert r.status == 303 and r.headers["Location"] == "/dashboard"
        cookie = r.headers["Set-Cookie"]
    attrs = {a.strip().split("=")[0].lower() for a in cookie.split(";")}
    assert {"httponly", "samesite", "max-age", "path"} <= attrs
    assert "SameSite=Strict" in cookie
    assert "secure" not in attrs  # plain http on loopback; https (or X-Forwarded-Proto) sets it
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            dash.url + "/dashboard/login",
            data={"admin_key": dash.global_key},
            headers={"X-Forwarded-Proto": "https"},
            allow_redirects=False,
        ) as r,
    ):
        assert "Secure" in r.headers["Set-Cookie"]


async def test_totals_equal_tokenomy_usage_for_the_same_range(dash: Dash) -> None:
    s = await dash.signed_in(dash.global_key)
    async with (
        s,
        s.get(
            dash.url + "/dashboard/api/summary",
            params={"since": SINCE, "until": UNTIL, "by": "model"},
        ) as r,
    ):
        assert r.status == 200, await r.text()
        body = await r.json()
    usage = _usage(dash)
    t = body["totals"]
    assert Decimal(t["cost_usd"]) == usage["cost_usd"]
    for k in ("requests", "input_tokens", "cached_tokens", "output_tokens", "reasoning_tokens"):
        assert t[k] == usage[k], k
    assert t["unpriced_requests"] == usage["unpriced_requests"]
    # The stacked series add up to the totals too.
    assert sum(Decimal(v) for s_ in body["series"] for v in s_["cost_usd"]) == usage["cost_usd"]
    assert sum(sum(s_["tokens"]) for s_ in body["series"]) == (
        usage["input_tokens"] + usage["output_tokens"]  # type: ignore[operator]
    )
    by_model = {
        r["model"]: r
        for r in usage_report(
            dash.store, since_ms=parse_time(SINCE), until_ms=parse_time(UNTIL), by=["model"]
        )
    }
    for g in body["groups"]:
        assert Decimal(g["cost_usd"]) == by_model[g["name"]]["cost_usd"]
        assert g["requests"] == by_model[g["name"]]["requests"]


async def test_a_team_admin_sees_only_its_team(dash: Dash) -> None:
    s = await dash.signed_in(dash.research_key)
    async with s:
        async with s.get(
            dash.url + "/dashboard/api/summary",
            params={"since": SINCE, "until": UNTIL, "by": "team"},
        ) as r:
            body = await r.json()
        async with s.get(dash.url + "/dashboard/api/requests", params={"limit": "500"}) as r:
            log = (await r.json())["data"]
        async with s.get(dash.url + "/dashboard") as r:
            assert "team admin of research" in await r.text()
    usage = _usage(dash, org="acme", team="research")
    assert Decimal(body["totals"]["cost_usd"]) == usage["cost_usd"]
    assert body["totals"]["requests"] == usage["requests"]
    assert [g["name"] for g in body["groups"]] == ["research"]  # not globex's research
    assert log and {(r["team"]) for r in log} == {"research"}
    assert all(r["key_id"] == "k-research" for r in log)
    tasks = {t["task"] for t in body["top_tasks"]}
    assert "t-sales" not in tasks


async def test_logout_ends_the_session_everywhere(dash: Dash) -> None:
    s = await dash.signed_in(dash.global_key)
    cookie = next(iter(s.cookie_jar))
    async with s:
        async with s.get(dash.url + "/dashboard/api/budgets") as r:
            assert r.status == 200
        async with s.post(dash.url + "/dashboard/logout", allow_redirects=False) as r:
            assert r.status == 303
        async with s.get(dash.url + "/dashboard/api/budgets") as r:
            assert r.status == 401
    # Replaying the old cookie after logout does not work either (deleted server-side).
    async with (
        aiohttp.ClientSession(cookies={cookie.key: cookie.value}) as s2,
        s2.get(dash.url + "/dashboard/api/budgets") as r,
    ):
        assert r.status == 401


async def test_revoking_the_admin_key_ends_its_sessions(dash: Dash) -> None:
    from tokenomy.admin import revoke_admin_key
    from tokenomy.dashboard import sessions

    s = await dash.signed_in(dash.sales_key)
    async with s:
        who: AdminPrincipal = sessions.lookup(dash.store, next(iter(s.cookie_jar)).value).who  # type: ignore[union-attr]
        assert who.team == "sales"
        revoke_admin_key(dash.store, who.key_id)
        async with s.get(dash.url + "/dashboard/api/budgets") as r:
            assert r.status == 401


async def test_request_log_filters_by_key_model_status_and_task(dash: Dash) -> None:
    s = await dash.signed_in(dash.global_key)
    async with s:
        params = {"key": "k-sales", "model": "gpt-4o", "status": "200", "task": "t1"}
        async with s.get(
            dash.url + "/dashboard/api/requests", params={**params, "limit": "500"}
        ) as r:
            rows = (await r.json())["data"]
        async with s.get(
            dash.url + "/dashboard/api/requests", params={**params, "format": "html"}
        ) as r:
            html = await r.text()
        async with s.get(dash.url + "/dashboard/api/requests", params={"status": "x"}) as r:
            assert r.status == 400
    want = [
        e
        for e in dash.store.events()
        if (e.key_id, e.model, e.status, e.task) == ("k-sales", "gpt-4o", 200, "t1")
    ]
    assert rows and len(rows) == len(want)
    assert [r["ts_ms"] for r in rows] == sorted((e.ts_ms for e in want), reverse=True)
    assert html.count("<tr>") == len(rows) + 1  # the header row


async def test_budgets_show_projected_exhaustion_and_a_team_admin_only_its_own(dash: Dash) -> None:
    from tokenomy.budgets import storage
    from tokenomy.budgets.model import BUDGET

    for team in ("research", "sales"):
        storage.set_budget(
            dash.store,
            kind=BUDGET,
            scope=f"team:{team}",
            unit="usd",
            limit=100 * 10**9,
            period="month",
            hard=True,
        )
    s = await dash.signed_in(dash.sales_key)
    async with s, s.get(dash.url + "/dashboard/api/budgets") as r:
        rows = (await r.json())["data"]
    assert [b["scope"] for b in rows] == ["team:sales"]
    assert {"projected_exhaustion", "remaining", "burn_down", "limit"} <= set(rows[0])


async def test_pages_carry_a_strict_content_security_policy_and_vendored_assets(
    dash: Dash,
) -> None:
    s = await dash.signed_in(dash.global_key)
    async with s:
        async with s.get(dash.url + "/dashboard") as r:
            csp = r.headers["Content-Security-Policy"]
            html = await r.text()
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "http://" not in html and "https://" not in html  # no CDN
        for asset in ("htmx.min.js", "uPlot.iife.min.js", "uPlot.min.css", "dashboard.js"):
            async with s.get(dash.url + "/dashboard/static/" + asset) as r:
                assert r.status == 200 and len(await r.read()) > 1000
        async with s.get(dash.url + "/dashboard/static/../../config.py") as r:
            assert r.status == 404


async def test_day_buckets_of_a_long_range_start_at_midnight_and_hold_every_event(
    dash: Dash,
) -> None:
    s = await dash.signed_in(dash.global_key)
    async with (
        s,
        s.get(
            dash.url + "/dashboard/api/summary",
            params={"since": SINCE, "until": "2026-09-30", "by": "team"},
        ) as r,
    ):
        body = await r.json()
    assert body["step_ms"] == 86_400_000
    assert all(t % 86_400_000 == 0 for t in body["times"])
    total = sum(Decimal(v) for s_ in body["series"] for v in s_["cost_usd"])
    assert total == Decimal(body["totals"]["cost_usd"]) == _usage(dash)["cost_usd"]


async def test_value_and_cost_per_successful_task_by_agent(dash: Dash) -> None:
    from tokenomy.tasks.storage import Outcome, save_outcome

    for task, status, value in (("t1", "succeeded", 5 * 10**9), ("t2", "failed", None)):
        save_outcome(
            dash.store, Outcome("acme", task, "research", status, value, {}, "", "", "", 1)
        )
    s = await dash.signed_in(dash.global_key)
    async with (
        s,
        s.get(
            dash.url + "/dashboard/api/summary",
            params={"since": SINCE, "until": UNTIL, "by": "agent"},
        ) as r,
    ):
        body = await r.json()
    rows = {v["agent"]: v for v in body["value"]}
    # Per agent: (org, task) pairs with calls of that agent; t1 of acme succeeded.
    with dash.store.transaction() as cur:
        cur.execute(
            "SELECT agent, COUNT(DISTINCT org || '/' || task), SUM(cost_nanos) FROM usage_events"
            " WHERE task <> '' GROUP BY agent"
        )
        expected = {(a or "(none)"): (int(n), int(c or 0)) for a, n, c in cur.fetchall()}
    for agent, (tasks, cost_nanos) in expected.items():
        v = rows[agent]
        assert v["tasks"] == tasks and v["successful"] == 1
        assert Decimal(v["cost_usd"]) == Decimal(cost_nanos) / 10**9
        assert Decimal(v["value_usd"]) == 5
        assert Decimal(v["cost_per_success_usd"]) == Decimal(cost_nanos // 1) / 10**9


def test_factory_cost_split_adds_up_to_the_hourly_cost() -> None:
    from tokenomy.config import parse_config
    from tokenomy.dashboard.data import factories

    settings = parse_config(
        {
            "factories": {
                "closet": {
                    "gpu": "rtx-4090-ws",
                    "throughput": 45,
                    "utilization": 0.3,
                    "electricity": 0.21,
                }
            }
        }
    )
    (f,) = factories(settings, local_cost_nanos=10 * 10**9)
    split = {k: Decimal(v) for k, v in f["split_per_hour_usd"].items()}
    assert set(split) == {"chips", "electricity", "operations"}
    assert abs(sum(split.values()) - Decimal(f["cost_per_hour_usd"])) <= Decimal("0.0003")
    assert abs(sum(Decimal(v) for v in f["shares"].values()) - 1) <= Decimal("0.0003")
    local = sum(Decimal(v) for v in f["local_spend_split_usd"].values())
    assert abs(local - 10) <= Decimal("0.00001")


async def test_on_postgresql_too_the_totals_equal_tokenomy_usage(pg_url: str) -> None:
    from tests.dashboard.conftest import dashboard, events

    async with dashboard(pg_url, events(300, seed=11)) as d:
        s = await d.signed_in(d.research_key)
        async with (
            s,
            s.get(
                d.url + "/dashboard/api/summary",
                params={"since": SINCE, "until": "2026-09-30", "by": "model"},
            ) as r,
        ):
            body = await r.json()
        usage = usage_report(
            d.store,
            since_ms=parse_time(SINCE),
            until_ms=parse_time(UNTIL),
            filters={"org": "acme", "team": "research"},
        )[0]
    assert Decimal(body["totals"]["cost_usd"]) == usage["cost_usd"]
    assert body["totals"]["requests"] == usage["requests"]
    assert sum(Decimal(v) for s_ in body["series"] for v in s_["cost_usd"]) == usage["cost_usd"]


async def test_totals_equal_the_admin_api_usage_report(dash: Dash) -> None:
    range_ = {"since": SINCE, "until": UNTIL}
    headers = {"Authorization": f"Bearer {dash.research_key}"}
    async with aiohttp.ClientSession(headers=headers) as s:
        async with s.get(dash.url + "/admin/v1/usage", params=range_) as r:
            (admin,) = (await r.json())["data"]
        async with s.get(dash.url + "/dashboard/api/summary", params=range_) as r:
            totals = (await r.json())["totals"]
    assert Decimal(str(admin["cost_usd"])) == Decimal(totals["cost_usd"])
    for k in ("requests", "input_tokens", "output_tokens", "cached_tokens"):
        assert admin[k] == totals[k], k
