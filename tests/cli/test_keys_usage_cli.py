"""``tokenomy keys`` and ``tokenomy usage``: the README's command table, promise by promise.

Most commands run in-process through Typer's ``CliRunner`` on ``tokenomy.cli.app``; some run
the installed ``tokenomy`` console script in a real subprocess. The usage reports run on
SQLite and on a real PostgreSQL server (``db_url``) over a ledger filled here with
``Store.insert_events``; the expected totals are computed independently in this module.
"""

from __future__ import annotations

import csv
import gc
import hashlib
import io
import json
import os
import re
import sqlite3
import subprocess
import sys
import warnings
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from typer.testing import CliRunner, Result

from tests.builders import usage_event
from tokenomy.cli import app
from tokenomy.events import Usage, UsageEvent
from tokenomy.ledger import open_store

RUNNER = CliRunner()
TOKENOMY = Path(sys.executable).with_name("tokenomy")  # the console script of this venv

# The README's JSON row of `tokenomy usage`, after the group fields, in this order.
USAGE_FIELDS = [
    "requests",
    "input_tokens",
    "cached_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
    "estimated_requests",
    "unpriced_requests",
]
COUNT_FIELDS = [f for f in USAGE_FIELDS if f != "cost_usd"]


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # No test may pick up a developer's TOKENOMY_DB or write ./tokenomy.db into the repo.
    monkeypatch.delenv("TOKENOMY_DB", raising=False)
    monkeypatch.chdir(tmp_path)


def cli(*args: str, env: dict[str, str] | None = None) -> Result:
    return RUNNER.invoke(app, list(args), env=env)


def ok(result: Result) -> str:
    assert result.exit_code == 0, (result.exit_code, result.stdout, result.stderr)
    return result.stdout


def one_line(text: str) -> str:
    """Whitespace-normalised text (the console may wrap long messages at spaces)."""
    return " ".join(text.split())


def leaked_connections() -> list[str]:
    """Database connections dropped without ``close()`` (psycopg warns when one is collected)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def run_script(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed ``tokenomy`` console script."""
    assert TOKENOMY.exists(), f"console script missing: {TOKENOMY}"
    full_env = {k: v for k, v in os.environ.items() if k != "TOKENOMY_DB"}
    full_env.update(env or {})
    return subprocess.run(
        [str(TOKENOMY), *args], capture_output=True, text=True, env=full_env, timeout=60
    )


# ---------------------------------------------------------------------------- database peeks


def db_rows(url: str, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Run one read-only query straight on the database, bypassing tokenomy."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        try:
            return [tuple(r) for r in conn.execute(sql, tuple(params)).fetchall()]
        finally:
            conn.close()
    with psycopg.connect(url) as pg:
        return [tuple(r) for r in pg.execute(sql.replace("?", "%s"), tuple(params)).fetchall()]


def every_value_in_db(url: str) -> str:
    """repr of every row of every table of the database."""
    if url.startswith("sqlite:///"):
        tables_sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    else:
        tables_sql = (
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'"
        )
    tables = [r[0] for r in db_rows(url, tables_sql)]
    assert "api_keys" in tables
    return "\n".join(repr(row) for t in tables for row in db_rows(url, f'SELECT * FROM "{t}"'))


# ---------------------------------------------------------------------------------- keys


def create_key_json(db: str, org: str = "acme", **fields: str) -> dict[str, Any]:
    args = ["keys", "create", "--org", org, "--json", "--db", db]
    for name, value in fields.items():
        args += [f"--{name}", value]
    data: dict[str, Any] = json.loads(ok(cli(*args)))
    return data


def list_keys_json(*args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads(
        ok(cli("keys", "list", "--format", "json", *args, env=env))
    )
    return data


def test_keys_create_json_prints_the_secret_once_and_stores_only_its_hash(db_url: str) -> None:
    created = create_key_json(db_url, team="research", user="alice", name="laptop")
    secret = created["secret"]
    key_id = created["key_id"]
    assert isinstance(secret, str) and len(secret) >= 32
    assert (created["org"], created["team"], created["user"], created["name"]) == (
        "acme",
        "research",
        "alice",
        "laptop",
    )
    assert created["revoked"] is False

    listing = cli("keys", "list", "--format", "json", "--db", db_url)
    assert secret not in ok(listing)
    (row,) = json.loads(listing.stdout)
    assert "secret" not in row and "secret_hash" not in row
    assert row["key_id"] == key_id
    assert (row["org"], row["team"], row["user"], row["name"]) == (
        "acme",
        "research",
        "alice",
        "laptop",
    )
    assert secret.startswith(row["prefix"].rstrip("…"))  # a display prefix, not the secret

    # The database holds the SHA-256 of the secret and nowhere the secret itself.
    assert db_rows(db_url, "SELECT secret_hash FROM api_keys WHERE key_id = ?", [key_id]) == [
        (hashlib.sha256(secret.encode()).hexdigest(),)
    ]
    assert secret not in every_value_in_db(db_url)


def test_sqlite_files_never_contain_the_secret(sqlite_url: str, tmp_path: Path) -> None:
    secret = create_key_json(sqlite_url, team="research")["secret"]
    ok(cli("keys", "list", "--db", sqlite_url))
    files = list(tmp_path.glob("ledger.db*"))
    assert files
    for path in files:  # main file, WAL and shared memory: not even in a free page
        assert secret.encode() not in path.read_bytes(), path.name


def test_keys_create_without_json_prints_the_secret_exactly_once(sqlite_url: str) -> None:
    out = ok(cli("keys", "create", "--org", "acme", "--team", "ops", "--db", sqlite_url))
    secrets_shown = re.findall(r"\btk-[A-Za-z0-9_-]{20,}", out)
    assert len(secrets_shown) == 1, out
    (key,) = list_keys_json("--db", sqlite_url)
    assert key["key_id"] in out
    assert db_rows(sqlite_url, "SELECT secret_hash FROM api_keys") == [
        (hashlib.sha256(secrets_shown[0].encode()).hexdigest(),)
    ]


def test_keys_create_needs_an_org(db_url: str) -> None:
    missing = cli("keys", "create", "--team", "t", "--db", db_url)
    assert missing.exit_code != 0
    assert "--org" in missing.stderr
    empty = cli("keys", "create", "--org", "", "--db", db_url)
    assert empty.exit_code == 1
    assert "needs an org" in one_line(empty.stderr)
    del missing, empty
    # The command closes the ledger on its error path too.
    assert leaked_connections() == []
    assert list_keys_json("--db", db_url) == []


def test_keys_list_formats(sqlite_url: str) -> None:
    a = create_key_json(sqlite_url, team="research", user="alice", name="laptop")
    b = create_key_json(sqlite_url, org="globex", team="sales", user="bob", name="ci")
    rows = list_keys_json("--db", sqlite_url)
    assert {r["key_id"] for r in rows} == {a["key_id"], b["key_id"]}

    text = ok(cli("keys", "list", "--format", "csv", "--db", sqlite_url))
    assert a["secret"] not in text and b["secret"] not in text
    reader = csv.DictReader(io.StringIO(text))
    assert reader.fieldnames == [
        "key_id",
        "prefix",
        "name",
        "org",
        "team",
        "user",
        "created_ms",
        "revoked",
    ]
    by_id = {r["key_id"]: r for r in reader}
    assert by_id[b["key_id"]]["org"] == "globex"
    assert by_id[b["key_id"]]["user"] == "bob"

    table = ok(cli("keys", "list", "--db", sqlite_url, env={"COLUMNS": "200"}))
    assert a["secret"] not in table and b["secret"] not in table
    assert "globex" in table and "laptop" in table and a["key_id"] in table


def test_keys_list_table_shows_whole_key_ids(sqlite_url: str) -> None:
    """The key id is what `keys revoke` takes, so the default listing must show it whole
    (here through a pipe, where the console is 80 columns wide)."""
    ids = [
        create_key_json(sqlite_url, team="research", user=f"user{i}", name=f"key-{i}")["key_id"]
        for i in range(2)
    ]
    proc = run_script("keys", "list", "--db", sqlite_url, env={"COLUMNS": "80"})
    assert proc.returncode == 0, proc.stderr
    for key_id in ids:
        assert key_id in proc.stdout, proc.stdout


def test_keys_revoke(sqlite_url: str) -> None:
    keep = create_key_json(sqlite_url, name="keep")
    gone = create_key_json(sqlite_url, name="gone")
    result = cli("keys", "revoke", gone["key_id"], "--db", sqlite_url)
    assert gone["key_id"] in ok(result)
    state = {r["key_id"]: r["revoked"] for r in list_keys_json("--db", sqlite_url)}
    assert state == {keep["key_id"]: False, gone["key_id"]: True}
    revoked_ms = db_rows(
        sqlite_url, "SELECT revoked_ms FROM api_keys WHERE key_id = ?", [gone["key_id"]]
    )
    assert revoked_ms[0][0] is not None

    again = cli("keys", "revoke", gone["key_id"], "--db", sqlite_url)
    assert again.exit_code == 1
    assert gone["key_id"] in again.stderr and "no active key" in again.stderr
    # Revoking twice does not move the revocation time.
    assert (
        db_rows(sqlite_url, "SELECT revoked_ms FROM api_keys WHERE key_id = ?", [gone["key_id"]])
        == revoked_ms
    )

    unknown = cli("keys", "revoke", "000000000000", "--db", sqlite_url)
    assert unknown.exit_code == 1
    assert "000000000000" in unknown.stderr and "no active key" in unknown.stderr
    assert {r["key_id"]: r["revoked"] for r in list_keys_json("--db", sqlite_url)} == state


def test_db_option_and_env_var_select_the_same_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    by_flag = create_key_json(url, name="by-flag")
    by_env = json.loads(
        ok(
            cli(
                "keys",
                "create",
                "--org",
                "acme",
                "--name",
                "by-env",
                "--json",
                env={"TOKENOMY_DB": url},
            )
        )
    )
    listed_by_env = {r["key_id"] for r in list_keys_json(env={"TOKENOMY_DB": url})}
    listed_by_flag = {r["key_id"] for r in list_keys_json("--db", url)}
    assert listed_by_env == listed_by_flag == {by_flag["key_id"], by_env["key_id"]}
    ok(cli("keys", "revoke", by_flag["key_id"], env={"TOKENOMY_DB": url}))
    assert {r["key_id"]: r["revoked"] for r in list_keys_json("--db", url)} == {
        by_flag["key_id"]: True,
        by_env["key_id"]: False,
    }


def test_db_option_beats_env_var_and_default_is_tokenomy_db_in_cwd(tmp_path: Path) -> None:
    flag_url = f"sqlite:///{tmp_path / 'flag.db'}"
    env_url = f"sqlite:///{tmp_path / 'env.db'}"
    key = json.loads(
        ok(
            cli(
                "keys",
                "create",
                "--org",
                "acme",
                "--json",
                "--db",
                flag_url,
                env={"TOKENOMY_DB": env_url},
            )
        )
    )
    assert [r["key_id"] for r in list_keys_json("--db", flag_url)] == [key["key_id"]]
    assert list_keys_json("--db", env_url) == []

    default = json.loads(ok(cli("keys", "create", "--org", "acme", "--json")))
    assert (tmp_path / "tokenomy.db").exists()
    assert [
        r["key_id"] for r in list_keys_json("--db", f"sqlite:///{tmp_path / 'tokenomy.db'}")
    ] == [default["key_id"]]


def test_console_script_keys_round_trip(db_url: str) -> None:
    created = run_script(
        "keys",
        "create",
        "--org",
        "acme",
        "--team",
        "research",
        "--user",
        "alice",
        "--name",
        "laptop",
        "--json",
        env={"TOKENOMY_DB": db_url},
    )
    assert created.returncode == 0, created.stderr
    key = json.loads(created.stdout)
    listed = run_script("keys", "list", "--format", "json", "--db", db_url)
    assert listed.returncode == 0, listed.stderr
    assert key["secret"] not in listed.stdout
    assert [r["key_id"] for r in json.loads(listed.stdout)] == [key["key_id"]]

    revoked = run_script("keys", "revoke", key["key_id"], "--db", db_url)
    assert revoked.returncode == 0, revoked.stderr
    twice = run_script("keys", "revoke", key["key_id"], env={"TOKENOMY_DB": db_url})
    assert twice.returncode == 1
    assert "no active key" in one_line(twice.stderr) and key["key_id"] in twice.stderr
    assert "Traceback" not in twice.stderr


# ---------------------------------------------------------------------------------- usage


def ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000)


def event(event_id: str, ts_ms: int, *, cost_nanos: int | None, **attrs: Any) -> UsageEvent:
    """Alice's (acme/research) call to OpenAI's gpt-4o in the cloud unless ``attrs`` say so."""
    return usage_event(
        id=event_id,
        ts_ms=ts_ms,
        cost_nanos=cost_nanos,
        price_source="" if cost_nanos is None else "custom:test",
        **{
            "org": "acme",
            "team": "research",
            "user": "alice",
            "key_id": "k-alice",
            "provider": "openai",
            "location": "cloud",
            **attrs,
        },
    )


EVENTS = [
    event(
        "e1",
        ms("2026-03-01T09:00:00+00:00"),
        agent="planner",
        step="plan",
        usage=Usage(
            input_tokens=1000,
            cached_tokens=200,
            cache_write_tokens=100,
            output_tokens=500,
            reasoning_tokens=120,
        ),
        cost_nanos=100_000_001,
    ),
    event(  # the last millisecond of 1 March (UTC)
        "e2",
        ms("2026-03-01T23:59:59.999+00:00"),
        user="bob",
        key_id="k-bob",
        agent="coder",
        step="act",
        usage=Usage(input_tokens=10, output_tokens=5),
        cost_nanos=200_000_002,
    ),
    event(  # the first millisecond of 2 March; a local model without a price, counted offline
        "e3",
        ms("2026-03-02T00:00:00+00:00"),
        model="local-llama",
        provider="box",
        location="local",
        usage=Usage(input_tokens=7, output_tokens=3),
        cost_nanos=None,
        estimated=True,
    ),
    event(
        "e4",
        ms("2026-03-02T12:30:00+00:00"),
        team="sales",
        user="carol",
        key_id="k-carol",
        model="gpt-4o-mini",
        usage=Usage(input_tokens=2000, cached_tokens=1500, output_tokens=40),
        cost_nanos=450_000,
    ),
    event(
        "e5",
        ms("2026-03-03T00:00:00+00:00"),
        org="globex",
        team="sales",
        user="carol",
        key_id="k-carol",
        usage=Usage(input_tokens=3, output_tokens=4, reasoning_tokens=2),
        cost_nanos=7,
    ),
]
BY_ID = {e.id: e for e in EVENTS}


def expected(events: Sequence[UsageEvent]) -> dict[str, Any]:
    """The usage columns of a report row over ``events``, computed here from scratch."""
    row: dict[str, Any] = dict.fromkeys(COUNT_FIELDS, 0)
    cost = Decimal(0)
    for e in events:
        row["requests"] += 1
        row["input_tokens"] += e.usage.input_tokens
        row["cached_tokens"] += e.usage.cached_tokens
        row["cache_write_tokens"] += e.usage.cache_write_tokens
        row["output_tokens"] += e.usage.output_tokens
        row["reasoning_tokens"] += e.usage.reasoning_tokens
        row["estimated_requests"] += int(e.estimated)
        if e.cost_nanos is None:
            row["unpriced_requests"] += 1
        else:
            cost += Decimal(e.cost_nanos).scaleb(-9)
    row["cost_usd"] = cost
    return row


def grouped(
    fields: Sequence[str],
    key: Callable[[UsageEvent], tuple[str, ...]],
    events: Sequence[UsageEvent] = EVENTS,
) -> dict[tuple[str, ...], dict[str, Any]]:
    groups: dict[tuple[str, ...], list[UsageEvent]] = {}
    for e in events:
        groups.setdefault(key(e), []).append(e)
    return {k: dict(zip(fields, k, strict=True)) | expected(v) for k, v in groups.items()}


@pytest.fixture
def ledger(db_url: str) -> str:
    store = open_store(db_url)
    try:
        store.insert_events(EVENTS)
        assert store.count_events() == len(EVENTS)
    finally:
        store.close()
    return db_url


def usage_json(db: str, *args: str, env: dict[str, str] | None = None) -> list[dict[str, Any]]:
    out = ok(cli("usage", "--format", "json", "--db", db, *args, env=env))
    rows: list[dict[str, Any]] = json.loads(out, parse_float=Decimal)
    return rows


def keyed(
    rows: list[dict[str, Any]], fields: Sequence[str]
) -> dict[tuple[str, ...], dict[str, Any]]:
    out = {tuple(r[f] for f in fields): r for r in rows}
    assert len(out) == len(rows), "duplicate groups"
    return out


def assert_types(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        for name in COUNT_FIELDS:
            assert type(row[name]) is int, (name, row[name])
        assert isinstance(row["cost_usd"], Decimal), row["cost_usd"]  # a JSON number


def test_usage_json_by_team_and_model_exact(ledger: str) -> None:
    raw = ok(cli("usage", "--by", "team,model", "--format", "json", "--db", ledger))
    # Exact decimal number in the JSON text: not a string, not a rounded float.
    assert re.search(r'"cost_usd": 0\.300000003\b', raw), raw
    rows = json.loads(raw, parse_float=Decimal)
    assert_types(rows)
    for row in rows:
        assert list(row) == ["team", "model", *USAGE_FIELDS]
    got = keyed(rows, ["team", "model"])
    assert got == grouped(["team", "model"], lambda e: (e.team, e.model))
    research = got[("research", "gpt-4o")]
    assert research["cost_usd"] == Decimal("0.300000003")
    assert (research["requests"], research["input_tokens"], research["output_tokens"]) == (
        2,
        1010,
        505,
    )
    unpriced = got[("research", "local-llama")]
    assert (unpriced["unpriced_requests"], unpriced["estimated_requests"]) == (1, 1)


def test_usage_json_without_by_is_one_total_row(ledger: str) -> None:
    (row,) = usage_json(ledger)
    assert list(row) == USAGE_FIELDS
    assert row == expected(EVENTS)
    assert row["cost_usd"] == Decimal("0.300450010")
    assert (row["requests"], row["input_tokens"], row["cached_tokens"]) == (5, 3020, 1700)


@pytest.mark.parametrize(
    ("by", "key"),
    [
        ("org", lambda e: (e.org,)),
        ("user", lambda e: (e.user,)),
        ("key", lambda e: (e.key_id,)),
        ("agent,step", lambda e: (e.agent, e.step)),
        ("provider,location", lambda e: (e.provider, e.location)),
    ],
)
def test_usage_json_group_fields(
    ledger: str, by: str, key: Callable[[UsageEvent], tuple[str, ...]]
) -> None:
    fields = by.split(",")
    rows = usage_json(ledger, "--by", by)
    assert_types(rows)
    for row in rows:
        assert list(row) == [*fields, *USAGE_FIELDS]
    assert keyed(rows, fields) == grouped(fields, key)


def test_usage_by_day_groups_by_utc_date(ledger: str) -> None:
    # Far-east local and session time zones must not move an event to another day.
    far_east = {"TZ": "Pacific/Kiritimati", "PGTZ": "Pacific/Kiritimati"}
    rows = usage_json(ledger, "--by", "day", env=far_east)
    assert [r["day"] for r in rows] == ["2026-03-01", "2026-03-02", "2026-03-03"]
    got = keyed(rows, ["day"])
    assert got[("2026-03-01",)] == {"day": "2026-03-01"} | expected([BY_ID["e1"], BY_ID["e2"]])
    assert got[("2026-03-02",)] == {"day": "2026-03-02"} | expected([BY_ID["e3"], BY_ID["e4"]])
    assert got[("2026-03-03",)] == {"day": "2026-03-03"} | expected([BY_ID["e5"]])


def test_usage_bare_until_date_includes_that_day(ledger: str) -> None:
    (row,) = usage_json(ledger, "--since", "2026-03-01", "--until", "2026-03-01")
    assert row == expected([BY_ID["e1"], BY_ID["e2"]])  # 23:59:59.999 in, 00:00 next day out
    (row,) = usage_json(ledger, "--until", "2026-03-02")
    assert row == expected([BY_ID[i] for i in ("e1", "e2", "e3", "e4")])


def test_usage_since_is_inclusive_and_reads_iso_timestamps(ledger: str) -> None:
    (row,) = usage_json(ledger, "--since", "2026-03-02")
    assert row == expected([BY_ID[i] for i in ("e3", "e4", "e5")])
    (row,) = usage_json(ledger, "--since", "2026-03-01T23:59:59.999Z")
    assert row == expected([BY_ID[i] for i in ("e2", "e3", "e4", "e5")])
    # 01:00 at +01:00 is midnight UTC: e3 is the first event in.
    rows = usage_json(ledger, "--since", "2026-03-02T01:00:00+01:00", "--by", "day")
    assert [r["day"] for r in rows] == ["2026-03-02", "2026-03-03"]
    assert usage_json(ledger, "--since", "2026-03-04") == []


def test_usage_relative_since(db_url: str) -> None:
    now = datetime.now(UTC)
    recent = [
        event(
            "r1",
            int((now - timedelta(hours=1)).timestamp() * 1000),
            usage=Usage(input_tokens=1, output_tokens=1),
            cost_nanos=1,
        ),
        event(
            "r2",
            int((now - timedelta(days=3)).timestamp() * 1000),
            usage=Usage(input_tokens=20, output_tokens=2),
            cost_nanos=20,
        ),
        event(
            "r3",
            int((now - timedelta(days=30)).timestamp() * 1000),
            usage=Usage(input_tokens=300, output_tokens=3),
            cost_nanos=300,
        ),
    ]
    store = open_store(db_url)
    store.insert_events(recent)
    store.close()
    (day,) = usage_json(db_url, "--since", "24h")
    assert day == expected(recent[:1])
    (week,) = usage_json(db_url, "--since", "7d")
    assert week == expected(recent[:2])


def test_usage_where_filters(ledger: str) -> None:
    (sales,) = usage_json(ledger, "--where", "team=sales")
    assert sales == expected([BY_ID["e4"], BY_ID["e5"]])
    rows = usage_json(ledger, "--where", "team=research", "--where", "user=alice", "--by", "model")
    assert keyed(rows, ["model"]) == grouped(
        ["model"], lambda e: (e.model,), [BY_ID["e1"], BY_ID["e3"]]
    )
    assert usage_json(ledger, "--where", "team=nobody") == []


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--by", "colour"], ["colour", "team", "model", "day"]),
        (["--by", "team,colour"], ["colour"]),
        (["--since", "last tuesday"], ["last tuesday"]),
        (["--where", "team"], ["FIELD=VALUE", "team"]),
    ],
)
def test_usage_bad_arguments_exit_1_with_a_message(
    sqlite_url: str, args: list[str], words: list[str]
) -> None:
    result = cli("usage", "--db", sqlite_url, *args)
    assert result.exit_code == 1
    assert result.stdout == ""
    message = one_line(result.stderr)
    for word in words:
        assert word in message, message


def test_usage_where_unknown_field_exits_1(ledger: str) -> None:
    result = cli("usage", "--db", ledger, "--where", "colour=red")
    assert result.exit_code == 1
    assert "cannot filter on 'colour'" in one_line(result.stderr)
    del result
    # The command closes the ledger on its error path too.
    assert leaked_connections() == []


def test_usage_csv_has_a_header_row_and_exact_values(ledger: str) -> None:
    text = ok(cli("usage", "--by", "team", "--format", "csv", "--db", ledger))
    lines = text.splitlines()
    assert lines[0] == ",".join(["team", *USAGE_FIELDS])
    rows = list(csv.DictReader(io.StringIO(text)))
    got = {r["team"]: r for r in rows}
    want = grouped(["team"], lambda e: (e.team,))
    assert set(got) == {"research", "sales"}
    for team, row in got.items():
        exp = want[(team,)]
        for name in COUNT_FIELDS:
            assert int(row[name]) == exp[name], (team, name)
        assert Decimal(row["cost_usd"]) == exp["cost_usd"]
    assert got["research"]["cost_usd"] == "0.300000003"

    empty = ok(
        cli("usage", "--by", "day", "--format", "csv", "--since", "2030-01-01", "--db", ledger)
    )
    assert empty.splitlines() == [",".join(["day", *USAGE_FIELDS])]


def test_usage_table_shows_every_value_in_full(ledger: str) -> None:
    """A report must not cut numbers short, not even in an 80-column terminal or a pipe."""
    table = ok(cli("usage", "--by", "team", "--db", ledger, env={"COLUMNS": "80"}))
    for text in ("research", "sales", "0.300000003", "0.000450007", "1,017", "2,003", "1,500"):
        assert text in table, (text, table)


def test_usage_table_wide_terminal(ledger: str) -> None:
    table = ok(cli("usage", "--by", "team,model", "--db", ledger, env={"COLUMNS": "250"}))
    header = next(line for line in table.splitlines() if "requests" in line)
    for name in ["team", "model", *USAGE_FIELDS]:
        assert name in header
    research = next(line for line in table.splitlines() if "research" in line and "gpt-4o" in line)
    assert "0.300000003" in research and "1,010" in research


def test_console_script_usage_matches_in_process_report(ledger: str) -> None:
    proc = run_script("usage", "--by", "team,day", "--format", "json", env={"TOKENOMY_DB": ledger})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout, parse_float=Decimal) == usage_json(ledger, "--by", "team,day")
    bad = run_script("usage", "--by", "colour", "--db", ledger)
    assert bad.returncode == 1
    assert "colour" in bad.stderr and "Traceback" not in bad.stderr
