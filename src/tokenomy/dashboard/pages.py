"""The dashboard's HTML: a sign-in form and one layout for every page.

Plain HTML built here (no template engine, no build step); everything dynamic is drawn by
``static/dashboard.js`` from the JSON API. Every value put into the HTML is escaped.
"""

from __future__ import annotations

from html import escape

from tokenomy.admin import AdminPrincipal

PAGES: dict[str, str] = {
    "overview": "Overview",
    "budgets": "Budgets",
    "requests": "Requests",
    "live": "Live",
}
RANGES = (
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("90d", "90 days"),
)
GROUP_BY = ("team", "model", "agent", "location")

_HEAD = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="htmx-config" content='{{"includeIndicatorStyles": false, "allowEval": false}}'>
<title>{title} · tokenomy</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/dashboard/static/uPlot.min.css">
<link rel="stylesheet" href="/dashboard/static/dashboard.css">
</head>"""


def login_page(error: str = "") -> str:
    """The sign-in form (no session yet)."""
    message = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return (
        _HEAD.format(title="Sign in")
        + f"""<body class="login"><main>
<h1>tokenomy</h1>
<form method="post" action="/dashboard/login" autocomplete="off">
<label for="admin_key">Admin key</label>
<input id="admin_key" name="admin_key" type="password" placeholder="tka-..."
autocomplete="current-password" required>
<button type="submit">Sign in</button>
{message}
<p class="hint">Create one with <code>tokenomy admin create-key</code>;
a team admin key shows only its team.</p>
</form></main></body></html>"""
    )


def _options(pairs: tuple[tuple[str, str], ...], selected: str) -> str:
    return "".join(
        f'<option value="{escape(v)}"{" selected" if v == selected else ""}>'
        f"{escape(label)}</option>"
        for v, label in pairs
    )


def _controls(since: str, by: str) -> str:
    return f"""<form id="controls" class="controls">
<label>Range <select name="since" id="since">{_options(RANGES, since)}</select></label>
<label>Group by <select name="by" id="by">{_options(tuple((g, g) for g in GROUP_BY), by)}</select>
</label></form>"""


def _overview() -> str:
    return """<section class="cards" id="totals">
<div class="card"><h3>Spend (USD)</h3><p data-total="cost_usd">…</p></div>
<div class="card"><h3>Requests</h3><p data-total="requests">…</p></div>
<div class="card"><h3>Input tokens</h3><p data-total="input_tokens">…</p></div>
<div class="card"><h3>Output tokens</h3><p data-total="output_tokens">…</p></div>
<div class="card"><h3>Error rate</h3><p data-total="error_rate">…</p></div>
<div class="card"><h3>p50 / p99 latency</h3><p data-total="latency">…</p></div>
</section>
<section><h2>Spend over time</h2><div class="chart" id="chart-cost"></div></section>
<section><h2>Tokens over time</h2><div class="chart" id="chart-tokens"></div></section>
<div class="grid">
<section><h2>Top agents by cost</h2><table id="top-agents"></table></section>
<section><h2>Top tasks by cost</h2><table id="top-tasks"></table></section>
<section><h2 id="groups-title">By group</h2><table id="groups"></table></section>
<section><h2>Cloud vs local</h2><table id="mix"></table></section>
</div>
<section id="value-section" hidden><h2>Value per successful task, by agent</h2>
<table id="value"></table></section>
<section id="factory-section" hidden><h2>Token factories: cost split</h2>
<table id="factories"></table></section>"""


def _budgets() -> str:
    return """<section><h2>Budgets <small class="muted" id="budgets-as-of"></small></h2>
<table id="budgets"></table></section>
<section><h2>Burn-down</h2><div id="burn-downs"></div></section>"""


def _requests() -> str:
    return """<section><h2>Request log</h2>
<form id="log-filters" class="controls" hx-get="/dashboard/api/requests?format=html"
 hx-target="#log" hx-trigger="load, change, submit">
<label>Key <input name="key" size="14"></label>
<label>Model <input name="model" size="18"></label>
<label>Status <input name="status" size="4"></label>
<label>Task <input name="task" size="18"></label>
<label>Within <select name="since"><option value="1h">1 hour</option>
<option value="24h" selected>24 hours</option><option value="7d">7 days</option>
<option value="30d">30 days</option></select></label>
<button type="submit">Filter</button>
</form>
<div id="log"></div></section>"""


def _live() -> str:
    return """<section class="cards" id="live">
<div class="card"><h3>Requests/s</h3><p data-live="requests_per_s">…</p></div>
<div class="card"><h3>Error rate</h3><p data-live="error_rate">…</p></div>
<div class="card"><h3>p50 latency</h3><p data-live="p50_ms">…</p></div>
<div class="card"><h3>p99 latency</h3><p data-live="p99_ms">…</p></div>
</section>
<section><h2>Requests per second (last minute, this gateway process)</h2>
<div class="chart" id="chart-live"></div></section>"""


_BODIES = {"overview": _overview, "budgets": _budgets, "requests": _requests, "live": _live}


def page(name: str, who: AdminPrincipal, since: str, by: str) -> str:
    """A signed-in page: navigation, the viewer, and the page's containers."""
    nav = "".join(
        f'<a href="/dashboard/{"" if p == "overview" else p}"'
        f"{' aria-current=page' if p == name else ''}>{escape(label)}</a>"
        for p, label in PAGES.items()
    )
    viewer = (
        "global admin"
        if who.team is None
        else f"team admin of {escape(who.team)} ({escape(who.org or '')})"
    )
    controls = _controls(since, by) if name == "overview" else ""
    return (
        _HEAD.format(title=escape(PAGES[name]))
        + f"""<body data-page="{escape(name)}">
<header><strong>tokenomy</strong><nav>{nav}</nav>
<span class="who">{viewer}</span>
<form method="post" action="/dashboard/logout">
<button id="logout" type="submit">Sign out</button></form>
</header>
<main>{controls}{_BODIES[name]()}</main>
<script src="/dashboard/static/htmx.min.js"></script>
<script src="/dashboard/static/uPlot.iife.min.js"></script>
<script src="/dashboard/static/dashboard.js"></script>
</body></html>"""
    )


__all__ = ["GROUP_BY", "PAGES", "RANGES", "login_page", "page"]
