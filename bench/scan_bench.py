"""Data-class scan benchmark: what ``tokenomy.sovereignty.classify`` costs per request.

An agent re-sends its whole growing context on every step; the verdict cache (per text,
keyed by a blake2b hash) makes a step pay the detectors only for what is new. Measured:

* **4,000-token step** — a chat request whose earlier messages were classified before
  (cached) and whose last message, 4,000 tokens of new tool output, was not. Reported for
  a short context (only the new message) and a 100k-token context (hashing the rest).
* **100k-token first request** — the same agent's context seen for the first time (cold
  cache): every detector over every text.

The texts are agent-like tool output without personal data (code, logs with timestamps,
UUIDs, versions, prose, numbers), the worst case: no detection stops a scan early.

Usage: python bench/scan_bench.py [--steps 300] [--markdown]
       python bench/scan_bench.py --callgrind [--baseline-src OTHER_CHECKOUT/src]

``--callgrind`` counts instructions per 4,000-token step (new message alone) under valgrind:
deterministic where wall time on a shared machine is not; with ``--baseline-src`` the same
steps go through another checkout's code in the same run, for a ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# --callgrind runs this file again for the baseline checkout's code (--baseline-src).
sys.path.insert(0, os.environ.get("SCAN_BENCH_SRC", str(ROOT / "src")))

from tokenomy.config import PolicySection  # noqa: E402
from tokenomy.metering.tokenizer import count_text  # noqa: E402
from tokenomy.sovereignty import build_policy, classify, warm_up  # noqa: E402
from tokenomy.wire import ENDPOINTS  # noqa: E402

_PROSE = (
    "the gateway routes each request to a deployment and records its usage in the ledger "
    "while budgets reserve the worst case before the upstream is called and settle after "
    "function returns value error retry stream token cache prompt context agent tool"
)
WORDS = _PROSE.split(" ")


def _line(rng: random.Random) -> str:
    r = rng.randint
    kind = rng.randrange(6)
    if kind == 0:
        words = " ".join(rng.choice(WORDS) for _ in range(r(8, 20)))
        return words.capitalize() + "."
    if kind == 1:
        ts = f"2026-{r(1, 12):02d}-{r(1, 28):02d}T{r(0, 23):02d}:{r(0, 59):02d}:07Z"
        uid = "-".join(f"{rng.getrandbits(4 * n):0{n}x}" for n in (8, 4, 4, 4, 12))
        return f"{ts} INFO request {uid} took {rng.random():.3f}s"
    if kind == 2:
        name = rng.choice(WORDS)
        return f"    def {name}_{r(0, 99)}(self, x: int) -> int:  # v{r(1, 9)}.2.3"
    if kind == 3:
        return f"    return self.{rng.choice(WORDS)}[{r(0, 999)}] + {r(0, 10**6)}"
    if kind == 4:
        return f"order #{r(10**9, 10**10)} total {r(1, 9999)}.{r(0, 99):02d} USD"
    return f"sha256:{rng.getrandbits(128):032x} size {r(1, 10**7)} bytes, S3 bucket c4-{r(1, 99)}"


def agent_text(rng: random.Random, tokens: int) -> str:
    """Agent-like tool output of about ``tokens`` tokens (o200k)."""
    lines: list[str] = []
    n = 0
    while n < tokens:
        chunk = [_line(rng) for _ in range(4)]
        n += count_text("\n".join(chunk))
        lines.extend(chunk)
    return "\n".join(lines)


def chat(messages: list[str]) -> dict[str, Any]:
    body: list[dict[str, Any]] = [{"role": "system", "content": "You are a coding agent."}]
    for i, m in enumerate(messages):
        if i % 2:
            body.append({"role": "tool", "tool_call_id": f"call_{i}", "content": m})
        else:
            body.append({"role": "user", "content": m})
    return {"model": "gpt-4o", "messages": body}


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(p / 100 * (len(s) - 1)))]


def _policy() -> Any:
    return build_policy(PolicySection(confidential={"locations": ["local"]}))  # type: ignore[arg-type]


def classify_steps(path: str, n: int) -> None:
    """The child under valgrind: classify the first ``n`` steps of a JSON list."""
    warm_up()
    chat_ep, policy = ENDPOINTS["chat.completions"], _policy()
    for text in json.loads(Path(path).read_text())[:n]:
        classify(chat_ep, chat([text]), None, policy)


def callgrind(baseline_src: str | None, few: int = 20, many: int = 120) -> None:
    """Instructions per step: (I(many) - I(few)) / (many - few), start-up cancelled out."""
    rng = random.Random(7)
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump([agent_text(rng, 4000) for _ in range(many)], f)
        f.flush()
        trees = [("baseline", baseline_src)] if baseline_src else []
        counted: dict[str, int] = {}
        for label, src in [*trees, ("this checkout", str(ROOT / "src"))]:
            env = {**os.environ, "SCAN_BENCH_SRC": src or ""}
            total = []
            for n in (few, many):
                cmd = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]
                cmd += [sys.executable, __file__, "--count", f.name, str(n)]
                run = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
                total.append(int(re.findall(r"Collected : (\d+)", run.stderr)[-1]))
            counted[label] = (total[1] - total[0]) // (many - few)
            print(f"{label} ({src}): {counted[label]:,} instructions per 4,000-token step")
        if baseline_src:
            ratio = counted["this checkout"] / counted["baseline"]
            print(f"this checkout / baseline: {ratio:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--markdown", action="store_true", help="print a RESULTS.md section")
    ap.add_argument("--callgrind", action="store_true", help="instructions per step (valgrind)")
    ap.add_argument("--baseline-src", help="with --callgrind: another checkout's src/")
    ap.add_argument("--count", nargs=2, metavar=("FILE", "N"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.count:
        return classify_steps(args.count[0], int(args.count[1]))
    if args.callgrind:
        return callgrind(args.baseline_src)
    warm_up()
    chat_ep = ENDPOINTS["chat.completions"]
    policy = _policy()
    rng = random.Random(7)

    # Texts of 4,000 tokens each, made before timing.
    steps = [agent_text(rng, 4000) for _ in range(args.steps)]
    step_tokens = statistics.median(count_text(s) for s in steps[:20])

    def timed(body: dict[str, Any], wall: list[float], cpu: list[float]) -> str:
        t, c = time.perf_counter(), time.thread_time()
        verdict = classify(chat_ep, body, None, policy)
        cpu.append((time.thread_time() - c) * 1000)
        wall.append((time.perf_counter() - t) * 1000)
        return verdict.data_class

    # A running gateway is warm: scan other texts first (not timed, cache cleared after), so
    # the first case does not pay the interpreter's and the detectors' warm-up.
    for _ in range(100):
        classify(chat_ep, chat([agent_text(rng, 4000)]), None, policy)
    policy.scanner.clear()

    # 1. The new 4,000-token message alone (no earlier context).
    alone: tuple[list[float], list[float]] = ([], [])
    for text in steps:
        assert timed(chat([text]), *alone) == "internal"

    # 2. A growing context of ~100k tokens: earlier messages cached, the last one new.
    context = [agent_text(rng, 4000) for _ in range(24)]
    policy.scanner.clear()
    classify(chat_ep, chat(context), None, policy)  # the agent's earlier steps
    context_tokens = sum(count_text(c) for c in context)
    grown: tuple[list[float], list[float]] = ([], [])
    for text in steps:
        timed(chat([*context, text]), *grown)

    # 3. A 100k-token first request: nothing cached.
    first: tuple[list[float], list[float]] = ([], [])
    for _ in range(7):
        policy.scanner.clear()
        timed(chat(context), *first)

    # 4. An ordinary small request: what every call pays when a policy is on.
    small: tuple[list[float], list[float]] = ([], [])
    for i in range(args.steps):
        timed(chat([f"What is the capital of France? Answer in one word ({i})."]), *small)

    rows = [
        (f"small chat request, 2 messages ({args.steps} requests)", small),
        (f"4,000-token step, new message alone ({args.steps} steps)", alone),
        (f"4,000-token step on a {context_tokens // 1000}k-token cached context", grown),
        (f"{context_tokens // 1000}k-token first request, cold cache (7 runs)", first),
    ]
    machine = f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
    machine += f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    if args.markdown:
        print("## Data-class scan (bench/scan_bench.py)\n")
        print(f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
        print(f"- machine: {machine}")
        print(
            f"- one step's new content: {step_tokens:,.0f} tokens (o200k) of agent-like tool "
            "output without personal data (every detector runs to the end: the worst case)"
        )
        print(
            "- CPU: the thread's CPU time per classify (what the scan costs); wall: elapsed "
            "time, which on a busy machine includes waiting for a core"
        )
        print("\n| scan | CPU p50 ms | CPU p95 ms | wall p50 ms | wall p95 ms |")
        print("|---|---|---|---|---|")
        for name, (wall, cpu) in rows:
            print(
                f"| {name} | {pct(cpu, 50):.3f} | {pct(cpu, 95):.3f} "
                f"| {pct(wall, 50):.3f} | {pct(wall, 95):.3f} |"
            )
    else:
        print(machine)
        for name, (wall, cpu) in rows:
            print(
                f"{name}: CPU p50 {pct(cpu, 50):.3f} p95 {pct(cpu, 95):.3f} ms; "
                f"wall p50 {pct(wall, 50):.3f} p95 {pct(wall, 95):.3f} ms"
            )


if __name__ == "__main__":
    main()
