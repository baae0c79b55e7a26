"""The ``tokenomy`` command line: one Typer app, one module per command group."""

from __future__ import annotations

import typer

from tokenomy.cli import admin, budgets, economics, keys, ledger, serve, usage

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
app.add_typer(ledger.app, name="ledger")

economics.register(app)


def main() -> None:
    app()
