from __future__ import annotations

import socket

from django.contrib.auth import get_user_model
from django.db import connection
from django.utils import timezone


def health_report() -> dict[str, object]:
    """Proves the caller reaches the database: what a worker answers to the health task."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {
        "status": "ok",
        "host": socket.gethostname(),
        "database": connection.vendor,
        "users": get_user_model().objects.count(),
        "at": timezone.now().isoformat(),
    }
