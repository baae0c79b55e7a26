"""``tokenomy factory | plan | breakeven | forecast``: the economics commands, one module each.

Each command parses flags, calls ``tokenomy.economics`` and prints the result with every
assumption behind it: a Rich table for people, ``--format json`` (or csv) for programs.
"""

from __future__ import annotations

import typer

from tokenomy.cli.economics.breakeven import breakeven_cmd
from tokenomy.cli.economics.factory import factory
from tokenomy.cli.economics.forecast import forecast_cmd
from tokenomy.cli.economics.measure import factory_group
from tokenomy.cli.economics.plan import plan


def register(app: typer.Typer) -> None:
    """Add ``factory``, ``plan``, ``breakeven`` and ``forecast`` to the main app."""
    app.add_typer(factory_group(factory), name="factory")  # + `factory measure`
    app.command("plan")(plan)
    app.command("breakeven")(breakeven_cmd)
    app.command("forecast")(forecast_cmd)
