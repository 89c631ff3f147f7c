"""Backups of a whole stack: the PostgreSQL database and MEDIA_ROOT in one ``.tar.gz``, and their restore into an
empty stack (``manage.py backup`` / ``manage.py restore``; the operations are ``services.backup_create`` and
``services.backup_restore``).

The archive holds::

    database.dump   pg_dump --format=custom --no-owner --no-privileges
    media/...       every regular file of MEDIA_ROOT (face PNGs, checkpoints, overlays, uploads)
    manifest.json   format, created_at, migration state, row counts, media totals, sha256 of database.dump

The manifest comes last because it describes what was written before it (the sha256s are known only once the dump
and the media are in); ``archive.archive_unpack`` reads and checks the whole archive before a restore writes
anything where the stack looks. ``database`` runs the PostgreSQL tools, ``manifest`` reads what the manifest records.
"""

from __future__ import annotations

from apps.core.errors import ApplicationError


class BackupError(ApplicationError):
    """A backup or restore that cannot go on; the message says why and what to do."""

    code = "backup_failed"
