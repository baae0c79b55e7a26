"""``tokenomy simulate``: an agent fleet driving a gateway (and a load generator)."""

from __future__ import annotations

import asyncio
import enum
import sys
import time
from collections.abc import Coroutine
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from tokenomy.cli.db import DbOption
from tokenomy.cli.output import console, fail, to_json
from tokenomy.errors import LedgerError
from tokenomy.simulate.agent import Stats
from tokenomy.simulate.fleet import FleetError, FleetOptions, read_findings, run, summary
from tokenomy.simulate.profiles import PROFILES

T = TypeVar("T")
ProfileName = enum.StrEnum("ProfileName", {p: p for p in PROFILES})  # type: ignore[misc]


class SummaryFormat(enum.StrEnum):
    table = "table"
    json = "json"


def register(app: typer.Typer) -> None:
    app.command()(simulate)


def simulate(
    key: Annotated[
        str, typer.Option("--key", envvar="TOKENOMY_KEY", help="Gateway API key (tk-...).")
    ],
    agents: Annotated[int, typer.Option("--agents", min=1, help="Agents in the fleet.")] = 10,
    profile: Annotated[
        ProfileName, typer.Option("--profile", help="What the agents do.")
    ] = "moderate",  # type: ignore[assignment]
    duration: Annotated[float, typer.Option("--duration", min=0.1, help="Seconds to run.")] = 60.0,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency", min=1, help="Calls in flight at most (default: one per agent)."
        ),
    ] = None,
    gateway: Annotated[
        str, typer.Option("--gateway", help="Gateway base URL.")
    ] = "http://127.0.0.1:8080",
    model: Annotated[str, typer.Option("--model", help="Model the agents ask for.")] = "simulated",
    shredder: Annotated[
        bool,
        typer.Option(
            "--shredder", help="Every other agent loops, bloats its context or storms retries."
        ),
    ] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the agents' choices.")] = 0,
    outcomes: Annotated[
        bool,
        typer.Option(
            "--outcomes/--no-outcomes",
            help="Post each finished task's outcome (--no-outcomes: load on the model "
            "endpoints only).",
        ),
    ] = True,
    db: DbOption = None,
    fmt: Annotated[
        SummaryFormat, typer.Option("--format", "-f", help="Summary format.")
    ] = SummaryFormat.table,
) -> None:
    """Run a simulated agent fleet against a gateway and summarize what it cost.

    Agents play Plan → Act → Observe → Reflect tasks with growing context and tool calls.
    Profiles: chat, moderate (~100k tokens a task), complex (> 1M), itinerary (~930k),
    polling (legitimate status checks). Calls carry the task headers; retries back off.
    Each finished task posts its outcome and value to the gateway.
    With --db, the gateway's shredder findings on the run's tasks are shown.

    Example: tokenomy simulate --agents 8 --profile moderate --duration 60 --key tk-... --shredder
    """
    options = FleetOptions(
        gateway=gateway,
        key=key,
        agents=agents,
        profile=str(profile),
        duration_s=duration,
        concurrency=concurrency,
        shredder=shredder,
        model=model,
        seed=seed,
        outcomes=outcomes,
    )
    since_ms = time.time_ns() // 1_000_000
    err = Console(stderr=True)
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[line]}"),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    ) as bar:
        tid = bar.add_task(f"simulate {options.profile}", total=duration, line="")

        def progress(stats: Stats, elapsed: float) -> None:
            bar.update(tid, completed=min(elapsed, duration), line=_line(stats, elapsed))

        try:
            stats, elapsed, run_id = _run_loop(run(options, progress))
        except FleetError as exc:
            raise fail(str(exc)) from exc
    findings = None
    if db:
        try:
            findings = read_findings(db, run_id, since_ms)
        except LedgerError as exc:
            raise fail(f"cannot read findings: {exc}") from exc
    data = summary(options, stats, elapsed, run_id, findings)
    if fmt is SummaryFormat.json:
        sys.stdout.write(to_json(data) + "\n")
    else:
        _table(data)


def _run_loop(coro: Coroutine[Any, Any, T]) -> T:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return asyncio.run(coro)
    return uvloop.run(coro)


def _line(stats: Stats, elapsed: float) -> str:
    rate = stats.calls / elapsed if elapsed else 0.0
    done = sum(stats.outcomes.values())
    return (
        f"{stats.calls:,} calls ({rate:,.0f}/s)  {done:,} tasks done  "
        f"{stats.input_tokens + stats.output_tokens:,} tokens  ${stats.cost:.4f}"
    )


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def _table(data: dict[str, Any]) -> None:
    table = Table(title=f"tokenomy simulate — run {data['run_id']}", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key in (
        "profile",
        "agents",
        "duration_s",
        "calls",
        "calls_per_s",
        "requests_per_s",
        "failed_calls",
        "retries",
        "latency_p50_ms",
        "latency_p95_ms",
        "tasks",
        "succeeded",
        "failed",
        "abandoned",
        "unfinished",
        "success_rate",
        "input_tokens",
        "output_tokens",
        "tokens",
        "cost_usd",
        "cost_per_success_usd",
        "tokens_per_success",
        "value_usd",
        "value_per_usd",
        "outcomes_posted",
        "outcomes_refused",
    ):
        table.add_row(key, _fmt(data[key]))
    console.print(table)
    if data["shredders"]:
        kinds: dict[str, int] = {}
        for s in data["shredders"]:
            kinds[s["kind"]] = kinds.get(s["kind"], 0) + 1
        planted = ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items()))
        console.print(f"shredder tasks planted: {planted}")
    if data["findings"] is None:
        console.print("findings: pass --db (the gateway's database) or run `tokenomy shredder`")
        return
    found = Table(title="shredder findings", show_lines=False)
    for col in ("task", "agent", "kind", "tokens", "cost_usd", "evidence"):
        found.add_column(col)
    for f in data["findings"]:
        found.add_row(
            f["task"], f["agent"], f["kind"], _fmt(f["tokens"]), _fmt(f["cost_usd"]), f["evidence"]
        )
    console.print(found if data["findings"] else "findings: none")
