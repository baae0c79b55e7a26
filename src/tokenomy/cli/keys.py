"""``tokenomy keys``: create, list and revoke gateway API keys."""

from __future__ import annotations

from typing import Annotated

import typer

from tokenomy.cli.db import DbOption, ledger
from tokenomy.cli.output import FormatOption, OutputFormat, console, fail, render, to_json
from tokenomy.errors import LedgerError

app = typer.Typer(help="Create, list and revoke API keys.", no_args_is_help=True)


@app.command("create")
def create(
    org: Annotated[str, typer.Option(help="Organisation the key bills to.")],
    team: Annotated[str, typer.Option(help="Team the key bills to.")] = "",
    user: Annotated[str, typer.Option(help="User (employee or agent owner).")] = "",
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    db: DbOption = None,
) -> None:
    """Create a key. The secret is printed once; only its hash is stored.

    Example: tokenomy keys create --org acme --team research --user alice --name laptop
    """
    try:
        with ledger(db) as store:
            record, secret = store.create_key(org=org, team=team, user=user, name=name)
    except LedgerError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print(to_json({**record.as_dict(), "secret": secret}))
        return
    console.print(f"key id: [bold]{record.key_id}[/]  org={org} team={team} user={user}")
    console.print("secret (shown once, store it now):")
    print(secret)


@app.command("list")
def list_keys(fmt: FormatOption = OutputFormat.table, db: DbOption = None) -> None:
    """List keys (never their secrets).

    Example: tokenomy keys list --format json
    """
    try:
        with ledger(db) as store:
            rows = [k.as_dict() for k in store.list_keys()]
    except LedgerError as exc:
        raise fail(str(exc)) from exc
    render(
        rows,
        fmt,
        title="API keys",
        columns=["key_id", "prefix", "name", "org", "team", "user", "created_ms", "revoked"],
    )


@app.command("revoke")
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key id from `keys list`.")], db: DbOption = None
) -> None:
    """Revoke a key; gateways refuse it within about a second.

    Example: tokenomy keys revoke 3f9c2a1b7d4e
    """
    try:
        with ledger(db) as store:
            ok = store.revoke_key(key_id)
    except LedgerError as exc:
        raise fail(str(exc)) from exc
    if not ok:
        raise fail(f"no active key with id {key_id!r}")
    console.print(f"revoked {key_id}")
