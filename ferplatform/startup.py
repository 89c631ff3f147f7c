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
