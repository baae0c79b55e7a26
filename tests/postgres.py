"""A real, throwaway PostgreSQL server for the test session (never a mock, never skipped).

initdb + pg_ctl from the machine's PostgreSQL binaries (``scripts/test`` installs them).
PostgreSQL refuses to run as root, so under root the server runs as the ``postgres``
system user (created by the Debian package) or a dedicated user created here.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from tests.ports import unused_port


def _bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    if not candidates:
        raise RuntimeError(
            f"PostgreSQL binary {name!r} not found: run scripts/test, which "
            "installs the postgresql package"
        )
    return candidates[0]


def _run_as() -> list[str]:
    if os.geteuid() != 0:
        return []
    for user in ("postgres", "tokenomy-pg"):
        try:
            pwd.getpwnam(user)
            return ["runuser", "-u", user, "--"]
        except KeyError:
            continue
    subprocess.run(["useradd", "--system", "--no-create-home", "tokenomy-pg"], check=True)
    return ["runuser", "-u", "tokenomy-pg", "--"]


@contextmanager
def postgres_server() -> Iterator[str]:
    """Start PostgreSQL on 127.0.0.1:<free port>; yield an admin DSN; stop and delete it."""
    prefix = _run_as()
    root = tempfile.mkdtemp(prefix="tokenomy-pg-")
    data = os.path.join(root, "data")
    if prefix:
        user = prefix[2]
        shutil.chown(root, user=user)
        os.chmod(root, 0o700)
    port = unused_port()
    subprocess.run(
        [
            *prefix,
            _bin("initdb"),
            "-D",
            data,
            "-A",
            "trust",
            "-U",
            "postgres",
            "--no-sync",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
    )
    log = os.path.join(root, "server.log")
    opts = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off "
        "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
    )
    subprocess.run(
        [*prefix, _bin("pg_ctl"), "-D", data, "-l", log, "-o", opts, "-w", "start"],
        check=True,
        capture_output=True,
    )
    dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        yield dsn
    finally:
        subprocess.run(
            [*prefix, _bin("pg_ctl"), "-D", data, "-m", "immediate", "stop"], capture_output=True
        )
        time.sleep(0.1)
        shutil.rmtree(root, ignore_errors=True)


def fresh_database(admin_dsn: str) -> str:
    """A new empty database on the session's server; returns its DSN."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return admin_dsn.rsplit("/", 1)[0] + "/" + name
