"""The PostgreSQL side of backups: ``pg_dump`` / ``pg_restore`` run against the configured database, a snapshot that
the dump and the manifest's counts share, and the "is this database empty" check of a restore.

The connection comes from ``django.db.connection.settings_dict``, so the tools reach exactly the database Django
uses. The password goes to the tools through ``PGPASSWORD`` in their environment, never on the command line, where
``ps`` would show it to every user of the machine.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django.db import connection, transaction

from . import BackupError

# libpq reads these from the environment; Django's OPTIONS use the connection keywords' names.
_OPTION_ENV = {"sslmode": "PGSSLMODE", "sslrootcert": "PGSSLROOTCERT", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
               "connect_timeout": "PGCONNECT_TIMEOUT"}
_STDERR_SHOWN = 4000  # characters of a failed tool's stderr put in the error (the tail, where the cause is)


def database_require_postgres() -> None:
    """Backups are ``pg_dump`` archives: other databases (the SQLite of ``make run``) have none."""
    if connection.vendor != "postgresql":
        raise BackupError(f"backups need PostgreSQL; this stack's database is {connection.vendor} "
                          f"({connection.settings_dict.get('NAME')}). Point DATABASE_URL at a postgres:// database.")


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise BackupError(f"{name} not found on PATH: install the PostgreSQL client tools (Debian: apt-get install "
                          f"postgresql-client), of the server's major version or newer.")
    return path


def _connection_args() -> tuple[list[str], dict[str, str]]:
    """The tools' connection options and environment for Django's database (no password in the arguments)."""
    config = connection.settings_dict
    args = [f"--dbname={config['NAME']}"]
    if config.get("HOST"):
        args.append(f"--host={config['HOST']}")
    if config.get("PORT"):
        args.append(f"--port={config['PORT']}")
    if config.get("USER"):
        args.append(f"--username={config['USER']}")
    env = {**os.environ, "PGAPPNAME": "ferplatform-backup"}
    env.pop("PGPASSWORD", None)  # only the configured password, never one left in the caller's environment
    if config.get("PASSWORD"):
        env["PGPASSWORD"] = str(config["PASSWORD"])
    for option, variable in _OPTION_ENV.items():
        value = (config.get("OPTIONS") or {}).get(option)
        if value is not None:
            env[variable] = str(value)
    return args, env


def _run(name: str, args: list[str]) -> None:
    """Run a PostgreSQL client tool on Django's database; a failure raises with the tool's own words."""
    connection_args, env = _connection_args()
    command = [_tool(name), "--no-password", *connection_args, *args]  # never prompt: nobody may be at a terminal
    result = subprocess.run(command, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        stderr = result.stderr.strip()[-_STDERR_SHOWN:] or "(no output)"
        raise BackupError(f"{name} failed (exit {result.returncode}):\n{stderr}")


@contextmanager
def database_snapshot() -> Iterator[str]:
    """Hold a read-only, repeatable-read transaction on Django's connection and yield its exported snapshot id.

    ``pg_dump --snapshot`` then dumps exactly what the ORM reads inside the block, so the manifest's counts and
    migration state describe the dump even while the stack keeps writing.
    """
    if connection.in_atomic_block:
        raise BackupError("run backups outside a transaction: pg_dump sees only committed rows")
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            cursor.execute("SELECT pg_export_snapshot()")
            (snapshot,) = cursor.fetchone()
        yield snapshot


def database_dump(path: Path, *, snapshot: str, lock_wait_timeout: float | None = None) -> None:
    """``pg_dump`` Django's database, as of ``snapshot``, to ``path`` in the custom format (what pg_restore reads).

    Without owners and privileges, so that the dump restores as whichever role runs the restore. With
    ``lock_wait_timeout`` (seconds), a table locked by someone else (a running migration) fails the backup instead
    of making it wait for ever.
    """
    args = ["--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}", f"--file={path}"]
    if lock_wait_timeout is not None:
        args.append(f"--lock-wait-timeout={max(int(lock_wait_timeout * 1000), 1)}")
    _run("pg_dump", args)


def database_restore(path: Path) -> None:
    """``pg_restore`` a custom-format dump into Django's database, in one transaction: it stops at the first error
    and then leaves the database as empty as it found it."""
    _run("pg_restore", ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", str(path)])


def database_tables(limit: int = 5) -> list[str]:
    """Up to ``limit`` tables (or views) of the public schema: a restore needs there to be none."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                       "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'f') "
                       "ORDER BY c.relname LIMIT %s", [limit])
        return [name for (name,) in cursor.fetchall()]


def database_describe() -> str:
    """The database as an operator names it (``name on host:port``), for messages."""
    config = connection.settings_dict
    where = f"{config.get('HOST') or 'local socket'}{':' + str(config['PORT']) if config.get('PORT') else ''}"
    return f"{config['NAME']} on {where}"
