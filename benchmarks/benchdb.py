"""The throwaway PostgreSQL database the benchmarks run against, on the server of $DATABASE_URL."""

from __future__ import annotations

import os
from urllib.parse import urlsplit, urlunsplit

DEFAULT_SERVER = "postgres://postgres@127.0.0.1:5432/ferplatform"


def _server():
    server = urlsplit(os.environ.get("DATABASE_URL", DEFAULT_SERVER))
    return server if server.scheme in {"postgres", "postgresql"} else None


def _admin(sql: str) -> None:
    import psycopg

    server = _server()
    with psycopg.connect(urlunsplit((server.scheme, server.netloc, "/postgres", "", "")), autocommit=True) as conn:
        conn.execute(sql)


def bench_database_create(name: str) -> str | None:
    """(Re)create database ``name`` and return its URL; None, after saying why, when DATABASE_URL is not PostgreSQL."""
    server = _server()
    if server is None:
        print("DATABASE_URL must point at PostgreSQL for this benchmark.")
        return None
    bench_database_drop(name)
    _admin(f'CREATE DATABASE "{name}"')
    return urlunsplit((server.scheme, server.netloc, f"/{name}", "", ""))


def bench_database_drop(name: str) -> None:
    _admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_wait(process, port: int, *, timeout: float = 60.0) -> bool:
    """Wait until ``process`` (a gunicorn the benchmark started) accepts connections on 127.0.0.1:``port``; False if
    it exits first or ``timeout`` seconds pass (the caller says so and stops)."""
    import socket
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                return False
            time.sleep(0.3)
