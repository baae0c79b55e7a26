"""`tokenomy simulate` as a load generator, against the built-in simulated provider.

Starts a target and runs ``tokenomy simulate --profile chat`` against it for a few rounds,
reporting the requests per second the fleet sustained and the CPU time each side used per
request (the CPU figures hold on a busy machine, where the clock does not). Targets
(``--upstream``):

* ``simulated`` (default): a real ``tokenomy serve`` (keys, metering, pricing, SQLite ledger,
  task office, everything on) whose model is the built-in simulated factory with no pacing
  (``tokens_per_s = 0``, ``ttft_ms = 0``): each call is a full gateway request plus an HTTP
  call to the factory in the gateway's process.
* ``fake``: the same gateway in front of the tests' fake OpenAI in fast mode (its own
  process): the gateway's cost without the factory in it.
* ``direct``: no gateway, the fleet against ``python -m tokenomy.simulated``: what the load
  generator itself sustains.

Usage: python bench/simulate_bench.py [--upstream simulated|fake|direct] [--duration 10]
       [--rounds 3] [--agents 64] [--concurrency 64] [--no-outcomes]
       [--write bench/RESULTS.md]   (replaces that target's section between its markers)
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

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

from tests.ports import unused_port  # noqa: E402

TARGETS = {
    "simulated": "one `tokenomy serve` process (uvloop, SQLite ledger, everything on) whose "
    "model is the built-in simulated provider with no pacing (`tokens_per_s = 0`, `ttft_ms = "
    "0`, {answer_tokens}-token answers), served in the gateway's process on a loopback port: "
    "each call is a full gateway request plus an HTTP call to the factory",
    "fake": "one `tokenomy serve` process in front of the tests' fake OpenAI in fast mode (a "
    "process of its own): the gateway without the factory in it",
    "direct": "no gateway: `python -m tokenomy.simulated` alone (one process, no pacing, "
    "{answer_tokens}-token answers): what the load generator itself sustains",
}
CONFIG = """
[gateway]
ledger_flush_interval_s = 0.2

[providers.sim]
kind = "simulated"
tokens_per_s = 0
ttft_ms = 0
failure_rate = 0
answer_tokens = {answer_tokens}

[[models]]
name = "sim"
deployments = [{{ provider = "sim", model = "sim-1", price = "sim" }}]

[prices.sim]
input = "2.50"
output = "10.00"
"""
# --upstream fake: the same gateway in front of the tests' fake OpenAI in fast mode, in a
# process of its own (the baseline: what the gateway costs without the factory in it).
FAKE_PROVIDER = """
[providers.sim]
kind = "openai"
base_url = "http://127.0.0.1:{port}/v1"
"""


def tokenomy(*args: str, env: dict[str, str]) -> str:
    exe = [sys.executable, "-m", "tokenomy.cli", *args]
    return subprocess.run(exe, env=env, check=True, capture_output=True, text=True).stdout


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_http(url: str, timeout: float = 20.0) -> float:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        try:
            urllib.request.urlopen(url, timeout=1).read()
            return time.monotonic() - t0
        except Exception:
            time.sleep(0.05)
    raise SystemExit(f"{url} did not answer within {timeout} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--agents", type=int, default=64)
    parser.add_argument("--answer-tokens", type=int, default=16)
    parser.add_argument(
        "--upstream",
        choices=("simulated", "fake", "direct"),
        default="simulated",
        help="simulated: the gateway's built-in factory; fake: the gateway in front of the "
        "tests' fast fake; direct: no gateway, the fleet against `python -m tokenomy.simulated`"
        " (the load generator's own capacity; implies --no-outcomes)",
    )
    parser.add_argument("--no-outcomes", action="store_true", help="no outcome posts")
    parser.add_argument("--write", help="markdown file to put the results section in")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="simulate-bench-"))
    db = f"sqlite:///{tmp / 'ledger.db'}"
    env = {**os.environ, "TOKENOMY_DB": db}
    config = CONFIG.format(answer_tokens=args.answer_tokens)
    fake = None
    if args.upstream == "fake":
        fake_port = unused_port()
        fake = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.serve", "--port", str(fake_port), "--fast"],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
        )
        head, rest = config.split("[providers.sim]", 1)
        config = head + FAKE_PROVIDER.format(port=fake_port) + rest.split("\n\n", 1)[1]
    (tmp / "bench.toml").write_text(config)
    created = json.loads(tokenomy("keys", "create", "--org", "bench", "--json", env=env))
    port = unused_port()
    if args.upstream == "direct":
        args.no_outcomes = True
        command = ["tokenomy.simulated", "--port", str(port)]
        command += ["--answer-tokens", str(args.answer_tokens)]
        target, health = f"http://127.0.0.1:{port}/sim", f"http://127.0.0.1:{port}/sim/v1/models"
    else:
        command = ["tokenomy.cli", "serve", "--config", str(tmp / "bench.toml")]
        command += ["--port", str(port)]
        target, health = f"http://127.0.0.1:{port}", f"http://127.0.0.1:{port}/health"
    serve = subprocess.Popen(
        [sys.executable, "-m", *command],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rounds: list[dict[str, object]] = []
    try:
        startup = wait_http(health)
        for i in range(args.rounds):
            time.sleep(1)
            gw0 = cpu_s(serve.pid)
            out = tokenomy(
                "simulate",
                *("--gateway", target, "--key", created["secret"]),
                *("--profile", "chat", "--model", "sim", "--agents", str(args.agents)),
                *("--concurrency", str(args.concurrency), "--duration", str(args.duration)),
                *("--format", "json"),
                *(("--no-outcomes",) if args.no_outcomes else ()),
                env=env,
            )
            data = json.loads(out)
            data["load"] = f"{os.getloadavg()[0]:.1f}"
            requests = int(data["calls"]) + int(data["outcomes_posted"])
            data["gateway_cpu_ms"] = round((cpu_s(serve.pid) - gw0) * 1000 / requests, 3)
            data["client_cpu_ms"] = round(float(data["client_cpu_s"]) * 1000 / requests, 3)
            rounds.append(data)
            print(
                f"round {i + 1}: {data['requests_per_s']:,} requests/s"
                f" ({data['calls_per_s']:,} calls/s), p50 {data['latency_p50_ms']} ms,"
                f" p95 {data['latency_p95_ms']} ms, {data['failed_calls']} failed,"
                f" {data['outcomes_posted']} outcomes posted; CPU per request: gateway"
                f" {data['gateway_cpu_ms']} ms, client {data['client_cpu_ms']} ms",
                flush=True,
            )
    finally:
        serve.terminate()
        serve.wait(30)
        if fake is not None:
            fake.terminate()
            fake.wait(30)
    best = max(rounds, key=lambda d: float(str(d["requests_per_s"])))
    median = statistics.median(float(str(d["requests_per_s"])) for d in rounds)
    gw_ms = statistics.median(float(str(d["gateway_cpu_ms"])) for d in rounds)
    cl_ms = statistics.median(float(str(d["client_cpu_ms"])) for d in rounds)
    cpu = platform.processor() or platform.machine()
    begin = f"<!-- simulate_bench {args.upstream}: begin -->"
    end = f"<!-- simulate_bench {args.upstream}: end -->"
    lines = [
        begin,
        f"### `tokenomy simulate` as a load generator: {args.upstream} (bench/simulate_bench.py)",
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {os.cpu_count()} cores, {cpu}, {platform.system()} {platform.release()},"
        f" Python {platform.python_version()}",
        "- target: " + TARGETS[args.upstream].format(answer_tokens=args.answer_tokens),
        f"- load: `tokenomy simulate --profile chat --agents {args.agents} --concurrency "
        f"{args.concurrency} --duration {args.duration:g}"
        + (" --no-outcomes" if args.no_outcomes else "")
        + "` (aiohttp, one kept-alive pool"
        + ("" if args.no_outcomes else "; it also posts one outcome per finished task")
        + f"), {args.rounds} rounds; client and target share the machine's cores",
        f"- start-up until the target answers: {startup:.2f} s",
        "",
        "| round | requests/s | calls/s | p50 ms | p95 ms | failed | outcomes posted "
        "| target CPU ms/request | client CPU ms/request | load (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for i, d in enumerate(rounds, 1):
        lines.append(
            f"| {i} | {d['requests_per_s']:,} | {d['calls_per_s']:,} | {d['latency_p50_ms']} "
            f"| {d['latency_p95_ms']} "
            f"| {d['failed_calls']} | {d['outcomes_posted']} | {d['gateway_cpu_ms']} "
            f"| {d['client_cpu_ms']} | {d['load']} |"
        )
    lines += [
        "",
        f"- median **{median:,.0f} requests/s** (LLM calls"
        + ("" if args.no_outcomes else " and outcome posts")
        + "), best"
        f" {best['requests_per_s']:,} (target ≥ 1,000)",
        f"- CPU-bound capacity: the target process used {gw_ms:.3f} ms of CPU per request"
        f" (median), the client {cl_ms:.3f} ms: with a core each, about"
        f" **{1000 / max(gw_ms, cl_ms):,.0f} requests/s** before the busier one's core is full"
        " (on a machine that has those cores free; the load column says how busy it was)",
        "",
        f"Reproduce: `python bench/simulate_bench.py --upstream {args.upstream}"
        + (" --no-outcomes" if args.no_outcomes and args.upstream != "direct" else "")
        + "`.",
        end,
    ]
    section = "\n".join(lines)
    print(section)
    if args.write:
        path = Path(args.write)
        text = path.read_text() if path.exists() else ""
        if begin in text and end in text:
            head, rest = text.split(begin, 1)
            text = head + section + rest.split(end, 1)[1]
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        path.write_text(text)


if __name__ == "__main__":
    main()
