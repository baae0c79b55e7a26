// tokenomy dashboard: draws the pages from the JSON API. No build step, no CDN.
// Amounts arrive as exact decimal strings; they are shown as sent, and turned into
// numbers only to draw a chart.
(function () {
  "use strict";
  const page = document.body.dataset.page;
  const COLORS = ["#3559e0", "#12b76a", "#f79009", "#7a5af8", "#ee46bc", "#06aed4",
    "#c4320a", "#667085", "#a3a3a3"];

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return node;
  }
  function fmtInt(n) { return Number(n).toLocaleString("en-US"); }
  function fmtMs(v) { return v === null || v === undefined ? "–" : Number(v).toFixed(1) + " ms"; }
  function fmtPct(v) { return (Number(v) * 100).toFixed(2) + " %"; }
  async function getJSON(url) {
    const r = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (r.status === 401) { window.location.assign("/dashboard"); throw new Error("signed out"); }
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
    return body;
  }
  function table(id, columns, rows) {
    const t = document.getElementById(id);
    if (!t) return;
    t.replaceChildren();
    const head = el("tr");
    for (const [key, label, num] of columns) head.append(el("th", num ? { class: "num" } : {}, label || key));
    t.append(el("thead", {}, head));
    const body = el("tbody");
    for (const row of rows) {
      const tr = el("tr");
      for (const [key, , num, fmt] of columns) {
        const v = row[key];
        tr.append(el("td", num ? { class: "num" } : {}, v === null || v === undefined ? "–" : (fmt ? fmt(v) : v)));
      }
      body.append(tr);
    }
    if (!rows.length) body.append(el("tr", {}, el("td", { colspan: String(columns.length), class: "muted" }, "Nothing in this range.")));
    t.append(body);
  }

  // A stacked area chart: cumulative series, drawn from the top one down so each band
  // shows its own group; the legend shows each group's own value.
  const charts = {};
  function stacked(id, times, series, label) {
    const box = document.getElementById(id);
    if (!box) return;
    const xs = times.map((t) => t / 1000);
    const raw = series.map((s) => s.values.map(Number));
    const cum = [];
    let acc = xs.map(() => 0);
    for (const r of raw) { acc = acc.map((a, i) => a + r[i]); cum.push(acc); }
    const order = cum.map((_, i) => i).reverse();
    const opts = {
      width: Math.max(300, box.clientWidth - 16), height: 280,
      scales: { x: { time: true } },
      axes: [{}, { label: label, size: 70 }],
      series: [{}].concat(order.map((i) => ({
        label: series[i].name,
        stroke: COLORS[i % COLORS.length],
        fill: COLORS[i % COLORS.length] + "55",
        value: (u, v, si, di) => (di === null || di === undefined ? "–" : String(raw[i][di])),
      }))),
    };
    const payload = [xs].concat(order.map((i) => cum[i]));
    if (charts[id]) charts[id].destroy();
    box.replaceChildren();
    charts[id] = new uPlot(opts, payload, box);
  }

  // ---- overview ------------------------------------------------------------------
  async function overview() {
    const since = document.getElementById("since").value;
    const by = document.getElementById("by").value;
    const q = new URLSearchParams({ since: since, by: by });
    history.replaceState(null, "", "?" + q.toString());
    const d = await getJSON("/dashboard/api/summary?" + q.toString());
    const t = d.totals;
    const put = (k, v) => { const n = document.querySelector(`[data-total="${k}"]`); if (n) n.textContent = v; };
    put("cost_usd", t.cost_usd);
    put("requests", fmtInt(t.requests));
    put("input_tokens", fmtInt(t.input_tokens));
    put("output_tokens", fmtInt(t.output_tokens));
    put("error_rate", fmtPct(t.error_rate));
    put("latency", fmtMs(t.p50_ms) + " / " + fmtMs(t.p99_ms));
    stacked("chart-cost", d.times, d.series.map((s) => ({ name: s.name, values: s.cost_usd })), "USD");
    stacked("chart-tokens", d.times, d.series.map((s) => ({ name: s.name, values: s.tokens })), "tokens");
    table("top-agents", [["agent"], ["cost_usd", "cost (USD)", true], ["requests", "requests", true, fmtInt], ["tokens", "tokens", true, fmtInt]], d.top_agents);
    table("top-tasks", [["task"], ["agent"], ["cost_usd", "cost (USD)", true], ["requests", "requests", true, fmtInt], ["errors", "errors", true, fmtInt]], d.top_tasks);
    document.getElementById("groups-title").textContent = "By " + d.by;
    table("groups", [["name", d.by], ["cost_usd", "cost (USD)", true], ["tokens", "tokens", true, fmtInt], ["requests", "requests", true, fmtInt]], d.groups);
    const mix = d.mix;
    table("mix", [["where"], ["cost_usd", "cost (USD)", true], ["tokens", "tokens", true, fmtInt], ["requests", "requests", true, fmtInt]], [
      Object.assign({ where: "cloud" }, mix.cloud), Object.assign({ where: "local" }, mix.local),
      { where: "local saved (est., at the blended cloud price)", cost_usd: mix.local_savings_usd, tokens: null, requests: null },
    ]);
    if (d.value) {
      document.getElementById("value-section").hidden = false;
      table("value", [["agent"], ["tasks", "tasks", true], ["successful", "successful", true], ["cost_usd", "cost (USD)", true], ["value_usd", "value (USD)", true], ["cost_per_success_usd", "cost / success", true], ["value_per_success_usd", "value / success", true]], d.value);
    }
    if (d.factories && d.factories.length) {
      document.getElementById("factory-section").hidden = false;
      table("factories", [["name", "factory"], ["gpus", "GPUs", true], ["cost_per_hour_usd", "USD / hour", true], ["chips", "chips", true], ["electricity", "electricity", true], ["operations", "operations", true]],
        d.factories.map((f) => f.error ? { name: f.name + " (" + f.error + ")" } : Object.assign({ name: f.name, gpus: f.gpus, cost_per_hour_usd: f.cost_per_hour_usd },
          Object.fromEntries(Object.entries(f.split_per_hour_usd).map(([k, v]) => [k, v + " (" + (Number(f.shares[k]) * 100).toFixed(1) + " %)"])))));
    }
    document.body.dataset.loaded = "overview";
  }

  // ---- budgets -------------------------------------------------------------------
  async function budgets() {
    const d = await getJSON("/dashboard/api/budgets");
    const asOf = document.getElementById("budgets-as-of");
    if (asOf) asOf.textContent = "as of " + new Date(d.as_of_ms).toISOString().slice(11, 19) + " UTC (recomputed every minute)";
    table("budgets", [["scope"], ["unit"], ["period"], ["limit", "limit", true], ["spent", "spent", true], ["remaining", "remaining", true],
      ["burn_per_day", "burn / day", true], ["projected_exhaustion", "projected exhaustion"], ["runs_out_before_reset", "runs out before reset", false, (v) => (v ? "yes" : "no")]], d.data);
    const box = document.getElementById("burn-downs");
    box.replaceChildren();
    for (const b of d.data) {
      if (!b.burn_down || !b.burn_down.length) continue;
      const holder = el("div", { class: "chart burn" });
      box.append(el("h3", {}, b.scope + " (" + b.unit + ")"), holder);
      const xs = b.burn_down.map((p) => p.day_ms / 1000);
      const spent = b.burn_down.map((p) => Number(p.spent));
      const limit = xs.map(() => Number(b.limit));
      new uPlot({ width: Math.max(300, holder.clientWidth - 16), height: 220, scales: { x: { time: true } },
        series: [{}, { label: "spent", stroke: COLORS[0], fill: COLORS[0] + "33" }, { label: "limit", stroke: COLORS[6], dash: [6, 4] }] },
      [xs, spent, limit], holder);
    }
    document.body.dataset.loaded = "budgets";
  }

  // ---- live: one request per refresh -----------------------------------------------
  const history_ = { t: [], rps: [], err: [] };
  let liveChart = null;
  async function live() {
    const d = await getJSON("/dashboard/api/live?window=10");
    const put = (k, v) => { const n = document.querySelector(`[data-live="${k}"]`); if (n) n.textContent = v; };
    put("requests_per_s", Number(d.requests_per_s).toFixed(2));
    put("error_rate", fmtPct(d.error_rate));
    put("p50_ms", fmtMs(d.p50_ms));
    put("p99_ms", fmtMs(d.p99_ms));
    history_.t.push(d.now_ms / 1000); history_.rps.push(Number(d.requests_per_s));
    history_.err.push(Number(d.error_rate) * Number(d.requests_per_s));
    if (history_.t.length > 120) { history_.t.shift(); history_.rps.shift(); history_.err.shift(); }
    const box = document.getElementById("chart-live");
    const payload = [history_.t, history_.rps, history_.err];
    if (!liveChart) {
      box.replaceChildren();
      liveChart = new uPlot({ width: Math.max(300, box.clientWidth - 16), height: 260, scales: { x: { time: true } },
        series: [{}, { label: "requests/s", stroke: COLORS[0], fill: COLORS[0] + "33" }, { label: "errors/s", stroke: COLORS[6] }] }, payload, box);
    } else {
      liveChart.setData(payload);
    }
    document.body.dataset.loaded = "live";
  }

  function fail(err) {
    const main = document.querySelector("main");
    if (main && err.message !== "signed out") main.prepend(el("p", { class: "bad", role: "alert" }, err.message));
  }

  if (page === "overview") {
    document.getElementById("controls").addEventListener("change", () => overview().catch(fail));
    overview().catch(fail);
  } else if (page === "budgets") {
    budgets().catch(fail);
  } else if (page === "live") {
    live().catch(fail);
    setInterval(() => live().catch(fail), 2000);
  } else if (page === "requests") {
    document.body.addEventListener("htmx:afterSwap", () => { document.body.dataset.loaded = "requests"; });
  }
})();
