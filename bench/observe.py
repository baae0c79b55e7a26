"""Observability benchmark: what metrics, the access log and OpenTelemetry cost, side by side.

Starts the tests' fast fake upstream (``python -m tests.fakes.serve --fast``), a small
OTLP/HTTP sink (accepts and drops spans, as a collector on another machine would), and
four ``tokenomy serve`` processes that differ only in what they observe:

* ``metrics off``          ``[metrics] enabled = false`` (the live stats only)
* ``metrics on``           the default: ``GET /metrics``
* ``metrics + access log`` ``--access-log FILE``
* ``metrics + otel``       ``[otel] enabled = true``, exporting to the sink

then drives them with wrk at c=1 and c=64, alternating, and reports each gateway's CPU
time per request (from /proc/PID/stat) beside its throughput: on a busy machine the CPU
time per request is the steadier of the two. Then ``GET /metrics`` on a gateway holding
10,000 series is timed.

Usage: python bench/observe.py [--duration 5] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from run import Target, wait_http, wait_port, wrk  # noqa: E402
from tests.ports import unused_port  # noqa: E402

CLI = (sys.executable, "-m", "tokenomy.cli")
SINK = """
from aiohttp import web
async def sink(request):
    await request.read()
    return web.Response(body=b"", content_type="application/x-protobuf")
app = web.Application()
app.router.add_post("/v1/traces", sink)
web.run_app(app, host="127.0.0.1", port=int(__import__("sys").argv[1]), print=None)
"""


def gateway(
    work: Path,
    name: str,
    up_port: int,
    toml: str = "",
    args: tuple[str, ...] = (),
    wrap: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], Target]:
    port = unused_port()
    db = f"sqlite:///{work / (name.replace(' ', '_') + '.db')}"
    config = work / f"{name.replace(' ', '_')}.toml"
    config.write_text(f"""
[gateway]
port = {port}
journal_dir = "{work / (name.replace(" ", "_") + ".journal")}"

[providers.upstream]
kind = "openai"
base_url = "http://127.0.0.1:{up_port}/v1"
catalog_provider = "openai"

[[models]]
name = "bench-model"
deployments = [{{ provider = "upstream", model = "gpt-4o-mini" }}]
{toml}
""")
    out = subprocess.run(
        [*CLI, "keys", "create", "--org", "bench", "--team", "perf", "--json", "--db", db],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    proc = subprocess.Popen(
        [
            *wrap,
            *CLI,
            "serve",
            "--config",
            str(config),
            "--db",
            db,
            "--log-level",
            "warning",
            *args,
        ],
        stdout=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    wait_http(f"http://127.0.0.1:{port}/health", timeout=600 if wrap else 15)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    return proc, Target(name, url, json.loads(out)["secret"])


def scrape_10k(work: Path, up_port: int) -> tuple[int, float, float]:
    """A gateway with 24 teams x 11 models (264 label sets x 38 series ≈ 10k); time /metrics.

    Returns (series, median ms, p95 ms) over 50 scrapes.
    """
    models = "".join(
        f'\n[[models]]\nname = "m{i}"\n'
        f'deployments = [{{ provider = "upstream", model = "gpt-4o-mini" }}]\n'
        for i in range(11)
    )
    proc, target = gateway(work, "scrape", up_port, models)
    try:
        from tokenomy.database import open_database

        db = f"sqlite:///{work / 'scrape.db'}"
        store = open_database(db)
        keys = [store.create_key(org="bench", team=f"team{t}", user="u")[1] for t in range(24)]
        store.close()
        time.sleep(1.5)  # the key cache refreshes
        for key in keys:
            for i in range(11):
                body = json.dumps(
                    {"model": f"m{i}", "messages": [{"role": "user", "content": "hi"}]}
                ).encode()
                req = urllib.request.Request(
                    target.url,
                    data=body,
                    headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                )
                urllib.request.urlopen(req, timeout=10).read()
        metrics = target.url.replace("/v1/chat/completions", "/metrics")
        text = urllib.request.urlopen(metrics, timeout=10).read().decode()
        series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        times = []
        for _ in range(50):
            t0 = time.perf_counter()
            urllib.request.urlopen(metrics, timeout=10).read()
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        return series, statistics.median(times), times[int(len(times) * 0.95) - 1]
    finally:
        proc.terminate()
        proc.wait()


def cpu_ticks(pid: int) -> int:
    """User + system CPU time of a process, in clock ticks (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime


def cpu_per_request(
    targets: list[tuple[subprocess.Popen[bytes], Target]],
    concurrency: int,
    rounds: int,
    duration: int,
    work: Path,
) -> dict[str, tuple[float, float]]:
    """Label → (median req/s, median gateway CPU µs per request), targets alternating.

    CPU time per request is what a noisy machine disturbs least: other processes slow a
    run down, but do not add to the gateway's own CPU time.
    """
    hz = os.sysconf("SC_CLK_TCK")
    runs: dict[str, list[tuple[float, float]]] = {t.label: [] for _, t in targets}
    for round_no in range(rounds):
        shift = round_no % len(targets)
        for proc, t in targets[shift:] + targets[:shift]:
            time.sleep(1.0)
            before = cpu_ticks(proc.pid)
            r = wrk(t.url, t.key, concurrency, duration, work)
            used_us = (cpu_ticks(proc.pid) - before) * 1_000_000 / hz
            runs[t.label].append((r.rps, used_us / max(r.rps * duration, 1)))
    out = {}
    for label, rs in runs.items():
        out[label] = (
            statistics.median(r for r, _ in rs),
            statistics.median(c for _, c in rs),
        )
        print(
            f"{label:24} c={concurrency:<3} {out[label][0]:8,.0f} req/s "
            f"{out[label][1]:7.1f} µs CPU/request",
            flush=True,
        )
    return out


def callgrind_rows(
    work: Path, up_port: int, rows: Any, rounds: int = 1, n: int = 500
) -> dict[str, int]:
    """Label → instructions per request (all threads; the median of ``rounds`` runs, rows
    alternating), each gateway under callgrind.

    Repeatable where the clock is not (see bench/RESULTS.md): 100 warm-up requests
    uninstrumented, then ``n`` sequential keep-alive requests counted. A configuration
    still varies by ~±3% from run to run (thread timing, GC), hence the rounds.
    """
    counted: dict[str, list[int]] = {}
    for _ in range(rounds):
        for name, per in _callgrind_round(work, up_port, rows, n).items():
            counted.setdefault(name, []).append(per)
    out = {name: int(statistics.median(runs)) for name, runs in counted.items()}
    if rounds > 1:
        for name, runs in counted.items():
            print(f"{name:24} median {out[name]:,} of {', '.join(f'{r:,}' for r in runs)}")
    return out


def _callgrind_round(work: Path, up_port: int, rows: Any, n: int) -> dict[str, int]:
    out: dict[str, int] = {}
    client = str(HERE / "callgrind_client.py")
    for name, toml, extra, env in rows:
        stem = "cg_" + name.replace(" ", "_").replace("+", "").replace(",", "")
        for old in work.glob(f"{stem}.*.out*"):  # an earlier round's dumps
            old.unlink()
        proc, target = gateway(
            work,
            stem,
            up_port,
            toml,
            extra,
            env=env,
            wrap=(
                "valgrind",
                "--tool=callgrind",
                "--instr-atstart=no",
                f"--callgrind-out-file={work / stem}.%p.out",
            ),
        )
        port = target.url.split(":")[2].split("/")[0]
        try:
            subprocess.run([sys.executable, client, port, target.key or "", "100"], check=True)
            subprocess.run(["callgrind_control", "-i", "on", str(proc.pid)], check=True)
            subprocess.run([sys.executable, client, port, target.key or "", str(n)], check=True)
            time.sleep(1.5)  # the exporters' and writers' threads finish their batches
            subprocess.run(["callgrind_control", "-i", "off", str(proc.pid)], check=True)
        finally:
            proc.terminate()
            proc.wait()
        total = 0  # dumps (parts) are disjoint: their totals add up
        for dump in work.glob(f"{stem}.{proc.pid}.out*"):
            lines = dump.read_text(errors="replace").splitlines()
            total += max(
                (int(x.split()[1]) for x in lines if x.startswith(("summary:", "totals:"))),
                default=0,
            )
        out[name] = total // n
        print(f"{name:24} {total / 1e6:8.1f} M instructions, {total // n:,} per request")
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument(
        "--rounds", type=int, help="alternating rounds per cell (default 5; --callgrind: 1)"
    )
    parser.add_argument(
        "--callgrind", action="store_true", help="instructions per request instead (valgrind)"
    )
    parser.add_argument(
        "--only", action="append", help="only this row (repeatable; 'metrics on' is kept)"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tokenomy-bench-observe-"))
    up_port, sink_port = unused_port(), unused_port()
    procs: list[subprocess.Popen[bytes]] = []
    root = HERE.parent
    otel = "[otel]\nenabled = true\n"
    # label, config lines, serve arguments, environment
    rows: list[tuple[str, str, tuple[str, ...], dict[str, str]]] = [
        ("metrics off", "[metrics]\nenabled = false\n", (), {}),
        ("metrics on", "", (), {}),
        ("metrics + access log", "", ("--access-log", str(work / "access.jsonl")), {}),
        ("metrics + otel", otel, (), {}),
    ]
    if args.callgrind:
        # Under valgrind a gateway serves ~25 calls/s, so an export every 5 s carries ~100
        # spans instead of full batches of 512: this row exports only full batches of 250
        # (two during the 500 counted calls), as a busy gateway does.
        full = {"OTEL_BSP_SCHEDULE_DELAY": "600000", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "250"}
        rows.append(("metrics + otel, full batches", otel, (), full))
    args.rounds = args.rounds or (1 if args.callgrind else 5)
    if args.only:
        rows = [r for r in rows if r[0] in args.only or r[0] == "metrics on"]
    try:
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "tests.fakes.serve", "--port", str(up_port), "--fast"],
                cwd=root,
                stdout=subprocess.DEVNULL,
            )
        )
        procs.append(subprocess.Popen([sys.executable, "-c", SINK, str(sink_port)]))
        wait_port(up_port)
        wait_port(sink_port)
        os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = f"http://127.0.0.1:{sink_port}"
        targets = []
        if args.callgrind:
            counted = callgrind_rows(work, up_port, rows, args.rounds)
            base = counted["metrics on"]
            print("\n| target | instructions per request | vs metrics on |\n|---|---|---|")
            for label, per in counted.items():
                print(f"| {label} | {per / 1000:,.0f} k | {per / base - 1:+.1%} |")
            return
        for name, toml, extra, env in rows:
            proc, target = gateway(work, name, up_port, toml, extra, env=env)
            procs.append(proc)
            targets.append((proc, target))
        for _, t in targets:
            wrk(t.url, t.key, 8, 2, work)  # warm-up
        results = {
            c: cpu_per_request(targets, c, args.rounds, args.duration, work) for c in (1, 64)
        }
        series, median_ms, p95_ms = scrape_10k(work, up_port)
    finally:
        for p in procs:
            p.terminate()
            p.wait()
    print(f"\n## Observability cost ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)\n")
    print(
        f"- machine: {os.cpu_count()} cores, {platform.machine()}, Python "
        f"{platform.python_version()}, load average at the end {os.getloadavg()[0]:.1f}; "
        f"wrk -t1, {args.duration} s x {args.rounds} alternating rounds, medians"
    )
    print(
        "\n| target | c | req/s | gateway CPU µs/request | CPU vs metrics on "
        "| req/s vs metrics on |"
    )
    print("|---|---|---|---|---|---|")
    for c, by_label in results.items():
        base_rps, base_cpu = by_label["metrics on"]
        for label, (rps, cpu) in by_label.items():
            print(
                f"| {label} | {c} | {rps:,.0f} | {cpu:.0f} | {cpu / base_cpu - 1:+.1%} | "
                f"{rps / base_rps:.0%} |"
            )
    print(
        f"\n- GET /metrics with {series:,} series: median {median_ms:.1f} ms, "
        f"p95 {p95_ms:.1f} ms (50 scrapes, over HTTP)"
    )


if __name__ == "__main__":
    main()
