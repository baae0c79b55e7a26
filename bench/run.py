"""Gateway overhead benchmark: direct vs through tokenomy, side by side in one run.

Starts a fast local upstream (bench/upstream.py) and a real ``tokenomy serve`` (keys,
metering, pricing and the SQLite ledger all on), then drives both with wrk at
concurrency 1 and 64, alternating, and writes bench/RESULTS.md. This machine is noisy:
compare the ratios within one run, not absolute numbers across runs.

Usage: python bench/run.py [--duration 10] [--out bench/RESULTS.md]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
BODY = '{"model":"bench-model","messages":[{"role":"user","content":"Say hello."}]}'


@dataclass
class Result:
    label: str
    concurrency: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def wrk(url: str, key: str | None, concurrency: int, duration: int, lua_dir: Path) -> Result:
    script = lua_dir / "post.lua"
    auth = f'wrk.headers["Authorization"] = "Bearer {key}"\n' if key else ""
    script.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n' + auth)
    out = subprocess.run(
        ["wrk", "-t1", f"-c{concurrency}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    errs = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return Result("", concurrency, rps, p50, p99, int(errs.group(1)) if errs else 0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is required: apt-get install wrk")

    work = Path(tempfile.mkdtemp(prefix="tokenomy-bench-"))
    up_port, gw_port = free_port(), free_port()
    db_url = f"sqlite:///{work / 'bench.db'}"
    config = work / "bench.toml"
    config.write_text(f"""
[gateway]
port = {gw_port}

[providers.upstream]
kind = "openai"
base_url = "http://127.0.0.1:{up_port}/v1"
catalog_provider = "openai"

[[models]]
name = "bench-model"
deployments = [{{ provider = "upstream", model = "gpt-4o-mini" }}]
""")
    env = {**os.environ, "TOKENOMY_DB": db_url}
    from tokenomy.ledger import open_store

    store = open_store(db_url)
    _, key = store.create_key(org="bench", team="perf", user="wrk")
    store.close()

    procs = []
    try:
        procs.append(subprocess.Popen([sys.executable, str(HERE / "upstream.py"),
                                       "--port", str(up_port)]))
        wait_port(up_port)
        t0 = time.monotonic()
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "tokenomy.cli", "serve", "--config", str(config),
             "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL))
        wait_http(f"http://127.0.0.1:{gw_port}/health")
        startup_s = time.monotonic() - t0

        direct = f"http://127.0.0.1:{up_port}/v1/chat/completions"
        gateway = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
        wrk(gateway, key, 8, 2, work)  # warm-up: connections, price cache, imports
        results: list[Result] = []
        for c in (1, 64):
            for label, url, k in (("direct", direct, None), ("gateway", gateway, key)):
                r = wrk(url, k, c, args.duration, work)
                r.label = label
                results.append(r)
                print(f"{label:8} c={c:<3} {r.rps:10,.0f} req/s  p50 {r.p50_ms:.3f} ms  "
                      f"p99 {r.p99_ms:.3f} ms  non-2xx {r.errors}", flush=True)
        time.sleep(1.0)
        s = open_store(db_url)
        recorded = s.count_events()
        s.close()
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(30)
        shutil.rmtree(work, ignore_errors=True)

    write_results(Path(args.out), results, args.duration, startup_s, recorded)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_results(path: Path, results: list[Result], duration: int, startup_s: float,
                  recorded: int) -> None:
    by = {(r.label, r.concurrency): r for r in results}
    d1, g1 = by[("direct", 1)], by[("gateway", 1)]
    d64, g64 = by[("direct", 64)], by[("gateway", 64)]
    added = g1.p50_ms - d1.p50_ms
    lines = [
        "# Gateway benchmark",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {os.cpu_count()} cores, {_cpu()}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}",
        "- gateway: one `tokenomy serve` process (uvloop), API key auth, metering, genai-prices "
        "pricing, SQLite ledger with journal — everything on",
        "- upstream: bench/upstream.py, a fixed OpenAI chat completion (uvloop, keep-alive)",
        f"- load: wrk -t1, {duration} s per cell, cells alternate direct/gateway in one run",
        "",
        "| path | c | req/s | p50 ms | p99 ms | non-2xx |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r.label} | {r.concurrency} | {r.rps:,.0f} | {r.p50_ms:.3f} | "
                     f"{r.p99_ms:.3f} | {r.errors} |")
    lines += [
        "",
        f"- added p50 latency at c=1: **{added:.3f} ms** (target ≤ 0.5 ms)",
        f"- gateway throughput at c=64: **{g64.rps:,.0f} req/s** (target ≥ 4,000), "
        f"{g64.rps / d64.rps:.0%} of direct",
        f"- gateway start-up until /health answers: {startup_s:.2f} s",
        f"- usage events in the ledger after the run: {recorded:,}",
        "",
        "Reproduce: `python bench/run.py` (needs `wrk`: `apt-get install wrk`).",
        "",
    ]
    path.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
