"""Typed access to environment variables that fails loudly on malformed values.

Every reader raises ``ImproperlyConfigured`` naming the variable and the bad value, so a typo in a
deployment stops the process at start instead of surfacing later as odd behaviour.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_MISSING: Any = object()


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def _fail(name: str, value: str, expected: str) -> ImproperlyConfigured:
    return ImproperlyConfigured(f"Environment variable {name}={value!r} is malformed: expected {expected}.")


def env_str(name: str, default: str | None = _MISSING) -> str:
    value = _raw(name)
    if value is not None:
        return value
    if default is _MISSING or default is None:
        raise ImproperlyConfigured(f"Environment variable {name} is required but not set.")
    return default


def env_optional_str(name: str) -> str | None:
    return _raw(name)


def env_bool(name: str, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise _fail(name, value, "one of 1/0, true/false, yes/no, on/off")


def env_int(name: str, default: int, *, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise _fail(name, value, "an integer") from None
    if minimum is not None and number < minimum:
        raise _fail(name, value, f"an integer >= {minimum}")
    return number


def env_list(name: str, default: list[str]) -> list[str]:
    value = _raw(name)
    if value is None:
        return list(default)
    items = [item.strip() for item in value.split(",")]
    if any(not item for item in items):
        raise _fail(name, value, "a comma-separated list without empty items")
    return items


def env_networks(name: str, default: list[str]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Comma-separated addresses or networks (``127.0.0.1``, ``172.16.0.0/12``, ``::1``); ``*`` is refused, so that
    "trust everyone" is never one keystroke away."""
    items = env_list(name, default)
    try:
        return tuple(ipaddress.ip_network(item, strict=False) for item in items)
    except ValueError:
        raise _fail(name, ",".join(items), "comma-separated IP addresses or networks such as 10.0.0.0/8") from None


def env_path(name: str, default: Path, *, base: Path) -> Path:
    """A filesystem path; relative values are taken relative to ``base`` (the repository root)."""
    value = _raw(name)
    path = Path(value) if value is not None else default
    return path if path.is_absolute() else (base / path)


def env_database(name: str, default: str, *, base: Path) -> dict[str, Any]:
    """A Django DATABASES entry from a URL such as ``postgres://user@host:5432/db`` or ``sqlite:///var/db.sqlite3``."""
    url = _raw(name) or default
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme not in {"postgres", "postgresql", "pgsql", "sqlite"}:
        raise _fail(name, url, "a postgres:// or sqlite:/// URL")
    if scheme == "sqlite":
        # sqlite:///var/db.sqlite3 is relative to the repository root; sqlite:////abs/path is absolute.
        raw_path = url.split("://", 1)[1][1:]
        if not raw_path:
            raise _fail(name, url, "sqlite:///<path>")
        path = Path(raw_path)
        path = path if path.is_absolute() else base / path
        path.parent.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(path),
            # Web, workers, beat and commands share the file. A deferred transaction that reads and then writes
            # cannot wait for the write lock (in WAL mode SQLite answers "database is locked" at once when another
            # writer committed since its read), so every transaction takes the write lock when it begins
            # (IMMEDIATE) and waits up to SQLITE_BUSY_TIMEOUT seconds for it. Measured: docs/operations.md.
            "OPTIONS": {"timeout": env_int("SQLITE_BUSY_TIMEOUT", 30, minimum=1), "transaction_mode": "IMMEDIATE",
                        "init_command": "PRAGMA journal_mode=WAL;"},
        }
    try:
        config = dj_database_url.parse(url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise _fail(name, url, f"a database URL ({exc})") from None
    if not config.get("NAME"):
        raise _fail(name, url, "a database name in the URL path")
    # A database that is down answers requests with a 503 within seconds instead of hanging them.
    config.setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
    return dict(config)


def env_redis_url(name: str) -> str | None:
    value = _raw(name)
    if value is None:
        return None
    if not value.startswith(("redis://", "rediss://", "unix://")):
        raise _fail(name, value, "a redis://, rediss:// or unix:// URL")
    return value
