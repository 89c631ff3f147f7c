"""``manifest.json``: what a backup holds, so that a restore can check the archive before it writes anything and
check the restored database against it afterwards.

The counts and the migration state are read from the database (in the dump's snapshot when backing up, from the
restored database after a restore), by one function each, so that both sides count the same way.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from django.apps import apps
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder

from . import BackupError

FORMAT = "ferplatform-backup"
VERSION = 1
MANIFEST_NAME = "manifest.json"
DUMP_NAME = "database.dump"
MEDIA_DIR = "media"

# Manifest key -> model: the tables whose loss an operator would notice first.
COUNTED = {
    "users": settings.AUTH_USER_MODEL,
    "faces": "faces.FaceImage",
    "face_pixels": "faces.FacePixels",
    "label_history": "review.LabelHistory",
    "review_items": "review.ReviewItem",
    "votes": "review.Vote",
    "model_versions": "inference.ModelVersion",
    "training_runs": "training.TrainingRun",
    "explanations": "inference.Explanation",
    "uploads": "uploads.Upload",
}


def database_counts() -> dict[str, int]:
    return {key: apps.get_model(label)._default_manager.count() for key, label in COUNTED.items()}


def migration_state() -> dict[str, str]:
    """App -> the last migration applied to it (in the order they were applied)."""
    applied = MigrationRecorder(connection).migration_qs.order_by("id").values_list("app", "name")
    return dict(applied)


def migrations_unknown(state: dict[str, str]) -> list[str]:
    """Migrations of ``state`` that this code does not have: the archive comes from a newer version of the
    platform, whose tables this code would misread."""
    known = set(MigrationExecutor(connection).loader.disk_migrations)
    return [f"{app}.{name}" for app, name in sorted(state.items()) if (app, name) not in known]


def migrations_pending() -> int:
    """How many of this code's migrations the database still lacks (``manage.py migrate`` applies them)."""
    executor = MigrationExecutor(connection)
    return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))


@dataclass(frozen=True)
class Manifest:
    created_at: str
    migrations: dict[str, str]
    counts: dict[str, int]
    dump_sha256: str
    dump_bytes: int
    media_files: int
    media_bytes: int
    media_sha256: str
    format: str = field(default=FORMAT)
    version: int = field(default=VERSION)

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), indent=2, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        """Parse and check a manifest; anything else than one this code writes is refused."""
        try:
            raw = json.loads(data)
        except (UnicodeDecodeError, ValueError) as exc:
            raise BackupError(f"{MANIFEST_NAME} is not JSON ({exc}): not a ferplatform backup") from None
        if not isinstance(raw, dict) or raw.get("format") != FORMAT:
            raise BackupError(f"{MANIFEST_NAME} is not a {FORMAT} manifest: not a ferplatform backup")
        if raw.get("version") != VERSION:
            raise BackupError(f"backup format version {raw.get('version')!r}; this code reads version {VERSION}")
        try:
            manifest = cls(**raw)
        except TypeError as exc:
            raise BackupError(f"{MANIFEST_NAME} is malformed: {exc}") from None
        manifest._check_types()
        return manifest

    def _check_types(self) -> None:
        ok = (isinstance(self.migrations, dict) and all(isinstance(v, str) for v in self.migrations.values())
              and isinstance(self.counts, dict) and all(type(v) is int for v in self.counts.values())
              and all(isinstance(v, str) and len(v) == 64 for v in (self.dump_sha256, self.media_sha256))
              and all(type(v) is int for v in (self.dump_bytes, self.media_files, self.media_bytes)))
        if not ok:
            raise BackupError(f"{MANIFEST_NAME} is malformed: a field has the wrong type")
