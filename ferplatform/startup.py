"""Which settings a process runs with, and a clear stop when they cannot load.

``manage.py``, ``wsgi.py`` (gunicorn) and ``celery.py`` (workers, beat) call ``settings_or_exit``. Where nothing
sets ``DJANGO_SETTINGS_MODULE`` they run the production settings: DEBUG off, media only through nginx, and no start
without ``SECRET_KEY``. ``make run`` and the tests name their settings themselves.
"""

from __future__ import annotations

import os
import sys

PRODUCTION = "ferplatform.settings.production"


def settings_or_exit() -> None:
    """Load the settings now. A missing or malformed variable stops the process with one line naming it (exit 2),
    instead of a traceback later, in the middle of a request or a worker's first task."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", PRODUCTION)
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        settings.SECRET_KEY  # noqa: B018 (reading one setting imports the whole module)
    except ImproperlyConfigured as exc:
        module = os.environ["DJANGO_SETTINGS_MODULE"]
        sys.stderr.write(f"ferplatform: cannot start with {module}: {exc}\n")
        sys.stderr.flush()
        raise SystemExit(2) from None


def manage_or_exit(argv: list[str]) -> None:
    """Run a management command. When the database cannot be had (SQLite locked by another writer for longer than
    ``SQLITE_BUSY_TIMEOUT``, or a PostgreSQL that does not answer) say so in one line and exit 1, instead of a
    traceback: the platform's state, not a bug of the command. Importers commit batch by batch and skip what is
    stored, so running the command again goes on where it stopped."""
    from django.core.management import execute_from_command_line
    from django.db import OperationalError

    try:
        execute_from_command_line(argv)
    except OperationalError as exc:
        from django.conf import settings

        from apps.core.errors import database_unavailable

        command = " ".join(["manage.py", *argv[1:2]])
        if "database is locked" in str(exc):
            timeout = settings.DATABASES["default"].get("OPTIONS", {}).get("timeout")
            reason = (f"the database stayed locked by another writer for {timeout} s (SQLITE_BUSY_TIMEOUT); what was "
                      "committed before stays, run it again")
        elif database_unavailable(exc) is not None:
            reason = f"the database is not answering ({' '.join(str(exc).split())[:200]})"
        else:
            raise
        sys.stderr.write(f"CommandError: {command}: {reason}\n")
        sys.stderr.flush()
        raise SystemExit(1) from None
