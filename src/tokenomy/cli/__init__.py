"""The ``tokenomy`` command line: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from tokenomy.cli import (
    admin,
    budgets,
    economics,
    keys,
    ledger,
    local,
    prices,
    savings,
    serve,
    top,
    usage,
)
from tokenomy.cli import finops as finops_cmd
from tokenomy.cli import simulate as simulate_cmd
from tokenomy.cli import tasks as agent_tasks

app = typer.Typer(
    name="tokenomy",
    help="Meter, price, budget and plan every token: an OpenAI/Anthropic-compatible gateway "
    "with an append-only usage ledger.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
serve.register(app)
app.add_typer(keys.app, name="keys")
app.add_typer(budgets.app, name="budgets")
app.add_typer(budgets.limits_app, name="limits")
app.add_typer(admin.app, name="admin")
usage.register(app)
finops_cmd.register(app)  # tokenomy invoice, tokenomy export (FOCUS)
top.register(app)
prices.register(app)
savings.register(app)
agent_tasks.register(app)  # tasks, value, shredder
app.add_typer(ledger.app, name="ledger")
app.add_typer(local.app, name="local")

economics.register(app)
simulate_cmd.register(app)  # tokenomy simulate


def main() -> None:
    app()
