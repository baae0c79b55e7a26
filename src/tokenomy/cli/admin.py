"""``tokenomy admin``: create, list and revoke admin keys for the admin REST API."""

from __future__ import annotations

from typing import Annotated

import typer

from tokenomy.admin.keys import create_admin_key, list_admin_keys, revoke_admin_key
from tokenomy.cli.db import DbOption, ledger
from tokenomy.cli.output import FormatOption, OutputFormat, console, fail, render, to_json
from tokenomy.errors import LedgerError

app = typer.Typer(
    help="Admin keys for the admin REST API (/admin/v1): global, or bound to one team of one org.",
    no_args_is_help=True,
)

ALL_TEAMS = "(all teams)"


@app.command("create-key")
def create_key(
    org: Annotated[
        str | None,
        typer.Option(help="The org of --team (team names are unique only within an org)."),
    ] = None,
    team: Annotated[
        str | None,
        typer.Option(help="Bind the key to one team of --org: it sees and changes only that."),
    ] = None,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Create an admin key. The secret is printed once; only its hash is stored.

    With --org and --team the key is a team admin of that team of that org; without
    both it is a global admin (every org and team). Send it as
    'Authorization: Bearer tka-...'.

    Example: tokenomy admin create-key --org acme --team research --name research-lead
    """
    try:
        with ledger(db) as store:
            record, secret = create_admin_key(store, org=org, team=team, name=name)
    except (ValueError, LedgerError) as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print(to_json({**record.as_dict(), "secret": secret}))
        return
    who = f"team {team} of org {org}" if team is not None else "global (all teams)"
    console.print(f"admin key id: [bold]{record.key_id}[/]  {who}")
    console.print("secret (shown once, store it now):")
    print(secret)


@app.command("list-keys")
def list_keys(fmt: FormatOption = OutputFormat.table, db: DbOption = None) -> None:
    """List admin keys (never their secrets); org and team are null for global admins.

    Example: tokenomy admin list-keys --format json
    """
    try:
        with ledger(db) as store:
            rows = [k.as_dict() for k in list_admin_keys(store)]
    except LedgerError as exc:
        raise fail(str(exc)) from exc
    if fmt is OutputFormat.table:
        for r in rows:
            if r["team"] is None:
                r["team"] = ALL_TEAMS
                r["org"] = r["org"] or ""
            elif r["org"] is None:  # made before org binding; refused until re-created
                r["org"] = "(unknown: re-create)"
    render(
        rows,
        fmt,
        title="Admin keys",
        columns=["key_id", "prefix", "name", "org", "team", "created_ms", "revoked"],
    )


@app.command("revoke-key")
def revoke_key(
    key_id: Annotated[str, typer.Argument(help="The key id from `admin list-keys`.")],
    db: DbOption = None,
) -> None:
    """Revoke an admin key; the admin API refuses it from the next request on.

    Example: tokenomy admin revoke-key 3f9c2a1b7d4e
    """
    try:
        with ledger(db) as store:
            ok = revoke_admin_key(store, key_id)
    except LedgerError as exc:
        raise fail(str(exc)) from exc
    if not ok:
        raise fail(f"no active admin key with id {key_id!r}")
    console.print(f"revoked admin key {key_id}")
