"""The two operations: ``backup_create`` (database and media into one archive) and ``backup_restore`` (an archive
into an empty stack). ``manage.py backup`` and ``manage.py restore`` call them."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.storage import FileSystemStorage, storages
from django.utils import timezone

from . import BackupError
from .archive import archive_unpack, archive_write
from .database import (
    database_describe,
    database_dump,
    database_require_postgres,
    database_restore,
    database_snapshot,
    database_tables,
)
from .manifest import (
    DUMP_NAME,
    MEDIA_DIR,
    Manifest,
    database_counts,
    migration_state,
    migrations_pending,
    migrations_unknown,
)


@dataclass(frozen=True)
class BackupResult:
    path: Path
    size: int
    manifest: Manifest


@dataclass(frozen=True)
class RestoreResult:
    manifest: Manifest
    counts: dict[str, int]
    pending_migrations: int


def backup_default_path() -> Path:
    return Path(settings.VAR_DIR) / "backups" / f"ferplatform-{timezone.now():%Y%m%d-%H%M%S}.tar.gz"


def _media_root() -> Path:
    """MEDIA_ROOT of the default storage; media in an object store is that store's to back up."""
    storage = storages["default"]
    if not isinstance(storage, FileSystemStorage):
        raise BackupError(f"media is stored by {type(storage).__name__}, not on local disk: these backups cover a "
                          f"MEDIA_ROOT on disk only; back the media up with the object store's own tools")
    return Path(storage.location)


def backup_create(*, output: Path | None = None, lock_wait_timeout: float | None = None) -> BackupResult:
    """Dump the database and copy MEDIA_ROOT into one ``.tar.gz`` at ``output`` (default: ``backup_default_path``).

    The archive appears under its final name only once complete. The manifest's counts and migration state are read
    in the dump's own snapshot. Media is read after the dump: files are stored before the rows that name them, so
    every file the dump refers to is there by then (files added meanwhile come along unreferenced, which is harmless).
    """
    database_require_postgres()
    media_root = _media_root()
    path = Path(output) if output else backup_default_path()
    if path.exists():
        raise BackupError(f"{path} already exists; a backup never overwrites another: choose another --output")
    path.parent.mkdir(parents=True, exist_ok=True)
    created_at = timezone.now().isoformat()
    with tempfile.TemporaryDirectory(prefix=".ferplatform-dump-", dir=path.parent) as work:
        dump = Path(work) / DUMP_NAME
        with database_snapshot() as snapshot:
            counts, migrations = database_counts(), migration_state()
            database_dump(dump, snapshot=snapshot, lock_wait_timeout=lock_wait_timeout)
        manifest = archive_write(path, dump=dump, media_root=media_root, manifest=lambda contents: Manifest(
            created_at=created_at, migrations=migrations, counts=counts, dump_sha256=contents.dump_sha256,
            dump_bytes=contents.dump_bytes, media_files=contents.media_files, media_bytes=contents.media_bytes,
            media_sha256=contents.media_sha256))
    return BackupResult(path=path, size=path.stat().st_size, manifest=manifest)


def _require_empty_database() -> None:
    tables = database_tables()
    if tables:
        name = database_describe()
        raise BackupError(
            f"the database {name} already has tables ({', '.join(tables)}, ...): a restore needs an empty one. "
            f"Create an empty database (e.g. `createdb NEW_NAME`, or `dropdb OLD; createdb OLD` if it may go) and "
            f"point DATABASE_URL at it, without running `manage.py migrate` first: the archive brings the schema.")


def _require_empty_media(media_root: Path) -> None:
    for directory, _, files in os.walk(media_root):
        if files:
            example = Path(directory, files[0])
            raise BackupError(f"MEDIA_ROOT {media_root} already holds files (e.g. {example}): a restore needs an "
                              f"empty one. Move them aside or point MEDIA_ROOT at an empty directory.")


def _move_tree(source: Path, target: Path) -> None:
    """Move ``source``'s contents into ``target`` by renames (same file system); ``target`` holds no files."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in source.iterdir():
        destination = target / entry.name
        if entry.is_dir() and destination.is_dir():
            _move_tree(entry, destination)
        else:
            os.replace(entry, destination)


def _counts_differ(expected: dict[str, int], restored: dict[str, int]) -> list[str]:
    return [f"{key}: {restored.get(key)} restored, {expected.get(key)} in the manifest"
            for key in sorted(set(expected) | set(restored)) if expected.get(key) != restored.get(key)]


def backup_restore(*, archive: Path) -> RestoreResult:
    """Restore ``archive`` into this stack's database and MEDIA_ROOT, both of which must be empty.

    The whole archive is read and checked (manifest, sha256 of the dump, media digest) into a staging directory
    inside MEDIA_ROOT before anything is written where the stack looks; pg_restore runs in one transaction, so a
    failure leaves the database empty; media is moved into place last, by renames. Afterwards the restored
    database's counts and migration state must match the manifest's.
    """
    database_require_postgres()
    media_root = _media_root()
    _require_empty_media(media_root)
    _require_empty_database()
    media_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=media_root))
    try:
        manifest = archive_unpack(Path(archive), staging)
        unknown = migrations_unknown(manifest.migrations)
        if unknown:
            raise BackupError(f"the archive comes from a newer ferplatform (migrations this code lacks: "
                              f"{', '.join(unknown)}): restore it with the version that made it")
        database_restore(staging / DUMP_NAME)
        if (staging / MEDIA_DIR).is_dir():
            _move_tree(staging / MEDIA_DIR, media_root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    counts = database_counts()
    differ = _counts_differ(manifest.counts, counts)
    if migration_state() != manifest.migrations:
        differ.append("the migration state differs from the manifest's")
    if differ:
        raise BackupError("restored, but the database does not match the manifest: " + "; ".join(differ))
    return RestoreResult(manifest=manifest, counts=counts, pending_migrations=migrations_pending())
