"""Gateway overhead benchmark: direct vs through tokenomy, side by side in one run.

Starts the tests' fake OpenAI upstream in its fast mode (``python -m tests.fakes.serve
--fast``: pre-serialised replies, uvloop) and a real ``tokenomy serve`` (keys, metering,
pricing and the SQLite ledger all on), then drives both with wrk at
concurrency 1 and 64, alternating, and writes bench/RESULTS.md. This machine is noisy:
compare the ratios within one run, not absolute numbers across runs.

Usage: python bench/run.py [--duration 10] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))  # the fake upstream, free ports and PostgreSQL live in tests/

from tests.ports import unused_port  # noqa: E402

BODY = '{"model":"bench-model","messages":[{"role":"user","content":"Say hello."}]}'


@dataclass
class Result:
    label: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def wait_http(url: str, timeout: float = 15.0, headers: dict[str, str] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(url, headers=headers or {})
            urllib.request.urlopen(req, timeout=1).read()
            return
        except Exception:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not come up")


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open")


def _ms(value: str) -> float:
    m = re.match(r"([\d.]+)(us|ms|s)", value)
    if not m:
        raise ValueError(value)
    n = float(m.group(1))
    return {"us": n / 1000, "ms": n, "s": n * 1000}[m.group(2)]


def wrk(
    url: str, key: str | None, concurrency: int, duration: int, lua_dir: Path, agent: bool = False
) -> Result:
    script = lua_dir / "post.lua"
    auth = f'wrk.headers["Authorization"] = "Bearer {key}"\n' if key else ""
    if agent:
        auth += 'wrk.headers["X-Tokenomy-Agent"] = "bencher"\n'
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n' + auth
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errs = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Result("", concurrency, rps, p50, p99, int(errs.group(1)) if errs else 0)


@dataclass
class Target:
    label: str
    url: str
    key: str | None
    agent: bool = False
    startup_s: float = 0.0  # from starting ``tokenomy serve`` until /health answers


def gateway_process(
    work: Path, name: str, db_url: str, up_port: int, budgets: bool, src: Path | None = None
) -> tuple[subprocess.Popen[bytes], Target]:
    """A real ``tokenomy serve`` on its own database, with a key on org/team/user.

    The key and budgets are made with the ``tokenomy`` CLI of the code under test, so the
    bench does not depend on library internals. ``src``: run the tokenomy source tree
    found there instead of this checkout's (the ``--baseline`` row).
    """
    env = {**os.environ, "PYTHONPATH": str(src)} if src is not None else None
    port = unused_port()
    config = work / f"{name}.toml"
    config.write_text(f"""
[gateway]
port = {port}
journal_dir = "{work / (name + ".journal")}"

[providers.upstream]
kind = "openai"
base_url = "http://127.0.0.1:{up_port}/v1"
catalog_provider = "openai"

[[models]]
name = "bench-model"
deployments = [{{ provider = "upstream", model = "gpt-4o-mini" }}]
""")

    def cli(*args: str) -> str:
        return subprocess.run(
            [sys.executable, "-m", "tokenomy.cli", *args, "--db", db_url],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        ).stdout

    created = json.loads(
        cli("keys", "create", "--org", "bench", "--team", "perf", "--user", "wrk", "--json")
    )
    if budgets:  # generous limits on every scope: measures the bookkeeping, not refusals
        for scope in (
            "org:bench",
            "team:perf",
            "user:wrk",
            f"key:{created['key_id']}",
            "agent:bencher",
        ):
            cli(
                "budgets", "set", scope, "--limit", "1000000000", "--period", "month", "--alert", ""
            )
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tokenomy.cli",
            "serve",
            "--config",
            str(config),
            "--db",
            db_url,
            "--log-level",
            "warning",
        ],
        stdout=subprocess.DEVNULL,
        env=env,
    )
    wait_http(f"http://127.0.0.1:{port}/health")
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    return proc, Target(name, url, created["secret"], budgets, time.monotonic() - t0)


def measure(
    targets: list[Target], concurrency: int, rounds: int, duration: int, work: Path
) -> list[Result]:
    """Alternate the targets round by round; report each one's median round.

    The order rotates every round and each run starts after a pause, so no target always
    runs right after the same neighbour (whose ledger writes, WAL checkpoints or PostgreSQL
    autovacuum would otherwise always land on it).
    """
    runs: dict[str, list[Result]] = {t.label: [] for t in targets}
    for round_no in range(rounds):
        shift = round_no % len(targets)
        for t in targets[shift:] + targets[:shift]:
            time.sleep(1.0)
            r = wrk(t.url, t.key, concurrency, duration, work, agent=t.agent)
            r.label = t.label
            runs[t.label].append(r)
    out = []
    for t in targets:
        rs = runs[t.label]
        mid = statistics.median_low([r.rps for r in rs])
        p50 = statistics.median([r.p50_ms for r in rs])
        p99 = statistics.median([r.p99_ms for r in rs])
        out.append(Result(t.label, concurrency, mid, p50, p99, sum(r.errors for r in rs)))
        print(
            f"{t.label:28} c={concurrency:<3} {mid:10,.0f} req/s  p50 {p50:.3f} ms  "
            f"p99 {p99:.3f} ms  non-2xx {out[-1].errors}",
            flush=True,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds per cell")
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--no-postgres", action="store_true")
    parser.add_argument(
        "--baseline",
        metavar="GIT_REF",
        help="also run that commit's gateway (sqlite, no budgets) side by side: before/after",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is required: apt-get install wrk")

    work = Path(tempfile.mkdtemp(prefix="tokenomy-bench-"))
    up_port, bare_port = unused_port(), unused_port()
    procs: list[subprocess.Popen[bytes]] = []
    with contextlib.ExitStack() as stack:
        try:
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "tests.fakes.serve",
                        "--port",
                        str(up_port),
                        "--fast",
                    ],
                    cwd=ROOT,
                    stdout=subprocess.DEVNULL,
                )
            )
            wait_port(up_port)
            procs.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        str(HERE / "bare_proxy.py"),
                        "--port",
                        str(bare_port),
                        "--upstream",
                        f"http://127.0.0.1:{up_port}",
                    ]
                )
            )
            wait_port(bare_port)
            gw, plain = gateway_process(
                work, "tokenomy sqlite", f"sqlite:///{work / 'a.db'}", up_port, budgets=False
            )
            procs.append(gw)
            gw, budgeted = gateway_process(
                work,
                "tokenomy sqlite +budgets",
                f"sqlite:///{work / 'b.db'}",
                up_port,
                budgets=True,
            )
            procs.append(gw)
            before: list[Target] = []
            if args.baseline:
                src = work / "baseline"
                src.mkdir()
                archive = subprocess.run(
                    ["git", "-C", str(ROOT), "archive", args.baseline, "src"],
                    check=True,
                    capture_output=True,
                ).stdout
                subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
                gw, t = gateway_process(
                    work,
                    f"tokenomy sqlite @{args.baseline}",
                    f"sqlite:///{work / 'base.db'}",
                    up_port,
                    budgets=False,
                    src=src / "src",
                )
                procs.append(gw)
                before.append(t)
            pg_targets: list[Target] = []
            if not args.no_postgres:
                from tests.postgres import fresh_database, postgres_server

                admin = stack.enter_context(postgres_server())
                for label, budgets in (
                    ("tokenomy postgres", False),
                    ("tokenomy postgres +budgets", True),
                ):
                    gw, t = gateway_process(work, label, fresh_database(admin), up_port, budgets)
                    procs.append(gw)
                    pg_targets.append(t)
            direct = Target(
                "direct (upstream)", f"http://127.0.0.1:{up_port}/v1/chat/completions", None
            )
            bare = Target(
                "bare aiohttp proxy (floor)",
                f"http://127.0.0.1:{bare_port}/v1/chat/completions",
                None,
            )
            for t in (plain, budgeted, *before, *pg_targets):
                wrk(t.url, t.key, 8, 2, work, agent=t.agent)  # warm-up
            results = measure([direct, bare, plain, *before], 1, args.rounds, args.duration, work)
            results += measure(
                [direct, bare, plain, *before, budgeted, *pg_targets],
                64,
                args.rounds,
                args.duration,
                work,
            )
        finally:
            for p in reversed(procs):
                p.send_signal(signal.SIGTERM)
            for p in procs:
                p.wait(30)
    shutil.rmtree(work, ignore_errors=True)
    write_results(Path(args.out), results, args.duration, args.rounds, plain.startup_s)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_results(
    path: Path, results: list[Result], duration: int, rounds: int, startup_s: float
) -> None:
    by = {(r.label, r.concurrency): r for r in results}
    d1, g1 = by[("direct (upstream)", 1)], by[("tokenomy sqlite", 1)]
    b1 = by[("bare aiohttp proxy (floor)", 1)]
    g64 = by[("tokenomy sqlite", 64)]
    lines = [
        "# Gateway benchmark",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {os.cpu_count()} cores, {_cpu()}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}",
        "- tokenomy: one `tokenomy serve` process per row (uvloop), API key auth, metering, "
        "genai-prices pricing, ledger with crash journal — everything on; `+budgets`: hard USD "
        "budgets on org, team, user, key and agent",
        "- upstream: the tests' FakeOpenAI in fast mode (`python -m tests.fakes.serve --fast`: "
        "a raw asyncio front with the fake's pre-serialised chat completion, uvloop, keep-alive); "
        "floor: bench/bare_proxy.py, aiohttp server + client doing nothing but forwarding",
        f"- load: wrk -t1, {duration} s per run, {rounds} rounds per cell in a rotating order "
        "with a 1 s pause before each run, median round reported; wrk, upstream and gateway "
        "share the 2 cores",
        "",
        "| target | c | req/s | p50 ms | p99 ms | non-2xx |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.label} | {r.concurrency} | {r.rps:,.0f} | {r.p50_ms:.3f} | "
            f"{r.p99_ms:.3f} | {r.errors} |"
        )
    lines += [
        "",
        f"- added p50 latency at c=1 (tokenomy − direct): **{g1.p50_ms - d1.p50_ms:.3f} ms** "
        f"(target ≤ 0.5 ms); the bare proxy alone adds {b1.p50_ms - d1.p50_ms:.3f} ms",
        f"- tokenomy throughput at c=64: **{g64.rps:,.0f} req/s** (target ≥ 4,000), "
        f"{g64.rps / by[('bare aiohttp proxy (floor)', 64)].rps:.0%} of the bare proxy",
    ]
    for r in results:
        if r.label.startswith("tokenomy sqlite @"):
            now = by[("tokenomy sqlite", r.concurrency)]
            lines.append(
                f"- this tree vs {r.label[len('tokenomy sqlite ') :]} at c={r.concurrency}: "
                f"**{now.rps / r.rps:.0%}** of its throughput, p50 {now.p50_ms:.3f} vs "
                f"{r.p50_ms:.3f} ms"
            )
    for db in ("sqlite", "postgres"):
        plain, budgeted = by.get((f"tokenomy {db}", 64)), by.get((f"tokenomy {db} +budgets", 64))
        if plain and budgeted:
            lines.append(
                f"- with budgets on every scope, {db}: **{budgeted.rps / plain.rps:.0%}** "
                "of the throughput without budgets (target ≥ 90%)"
            )
    lines += [
        f"- gateway start-up until /health answers: {startup_s:.2f} s",
        "",
        "Reproduce: `python bench/run.py` (needs `wrk`: `apt-get install wrk`; PostgreSQL "
        "server binaries for the postgres rows, or `--no-postgres`).",
        "",
    ]
    # The generated part is the file's head; the sections below it (## ...) are written by
    # other benchmarks and by hand, and are kept.
    old = path.read_text() if path.exists() else ""
    tail = old[old.index("\n## ") + 1 :] if "\n## " in old else ""
    path.write_text("\n".join(lines) + ("\n" + tail if tail else ""))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
