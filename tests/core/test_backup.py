"""``manage.py backup`` / ``manage.py restore`` on real PostgreSQL: a backup of a stack with faces, votes, a label
change and a model version restores into a second, empty database and MEDIA_ROOT with everything equal; a restore
refuses a stack that is not empty and an archive that is damaged or altered, writing nothing."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest
from django.core.files.base import ContentFile
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.recorder import MigrationRecorder
from psycopg import sql

from apps.accounts.roles import Role
from apps.core.backups import BackupError
from apps.core.backups.archive import archive_unpack
from apps.core.backups.manifest import Manifest
from apps.faces.models import FaceImage
from apps.inference.models import ModelVersion
from apps.review.choices import NOT_A_FACE
from apps.review.models import LabelHistory, Vote
from apps.review.services import review_vote_cast
from apps.training.models import TrainingRun
from tests.accounts.factories import UserFactory
from tests.faces.factories import FaceImageFactory
from tests.review.factories import ReviewItemFactory, leased_to

ROOT = Path(__file__).resolve().parents[2]
SERVER = "host=127.0.0.1 port=5432 user=postgres"

# pg_dump sees only committed rows: every test that backs up commits its data.
committed = pytest.mark.django_db(transaction=True)


# --- the stack ------------------------------------------------------------------------------------------------------

@pytest.fixture
def stack(settings) -> dict:
    """Faces with PNGs, a settled item (two votes, a label change), an open item with one vote, a model version with
    its checkpoint file and a training run with its binary label snapshot."""
    settings.REVIEW_QUORUM, settings.REVIEW_MAX_VOTES = 2, 3
    reviewers = [UserFactory(username=f"rev{i}", roles=[Role.REVIEWER]) for i in range(2)]
    faces = [FaceImageFactory(original_label=label) for label in (0, 3, 4)]
    settled = ReviewItemFactory(face=faces[0])
    for reviewer in reviewers:
        review_vote_cast(user=reviewer, item_id=leased_to(settled, reviewer).pk, choice=5)  # angry -> surprise
    pending = ReviewItemFactory(face=faces[1])
    review_vote_cast(user=reviewers[0], item_id=leased_to(pending, reviewers[0]).pk, choice=NOT_A_FACE)
    version = ModelVersion.objects.create(name="v1", arch="fer_vgg", checkpoint_sha256="0" * 64,
                                          checkpoint=ContentFile(os.urandom(4096), name="models/v1.pt"),
                                          metrics={"accuracy": 0.5})
    TrainingRun.objects.create(trigger="admin", recipe_name="default", arch="fer_vgg", epochs=1,
                               snapshot_labels=bytes(range(256)))
    assert LabelHistory.objects.count() == 1 and Vote.objects.count() == 3  # the state the tests rely on
    return {"faces": faces, "version": version}


def backup(path: Path) -> str:
    out = io.StringIO()
    call_command("backup", "--output", str(path), stdout=out)
    return out.getvalue()


@pytest.fixture
def archive(stack, tmp_path) -> Path:
    path = tmp_path / "backups" / "stack.tar.gz"
    backup(path)
    return path


def media_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# --- a second, empty stack ------------------------------------------------------------------------------------------

@pytest.fixture
def empty_database() -> str:
    """A new, empty database on the test server (dropped afterwards); yields its URL."""
    name = f"{connection.settings_dict['NAME']}_restore_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(f"{SERVER} dbname=postgres", autocommit=True) as server:
        server.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield f"postgres://postgres@127.0.0.1:5432/{name}"
    with psycopg.connect(f"{SERVER} dbname=postgres", autocommit=True) as server:
        server.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def manage(*args: str, database_url: str, media_root: Path) -> subprocess.CompletedProcess:
    """``manage.py ARGS`` in a fresh process pointed at another database and MEDIA_ROOT."""
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ferplatform.settings.test", "DATABASE_URL": database_url,
           "MEDIA_ROOT": str(media_root)}
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=600, check=False)


def rows(dsn: str, query: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


def source_dsn() -> str:
    return f"{SERVER} dbname={connection.settings_dict['NAME']}"


def public_tables(database_url: str) -> list[str]:
    return [name for (name,) in rows(database_url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]


# What the restore must bring back unchanged, compared row by row between the two databases.
COMPARED = {
    "label history": f"SELECT id, face_id, item_id, round, kind, old_label, new_label, old_excluded, new_excluded, "
                     f"votes::text, actor_id, created_at FROM {LabelHistory._meta.db_table} ORDER BY id",
    "votes": f"SELECT v.id, v.item_id, u.username, v.round, v.choice, v.created_at FROM {Vote._meta.db_table} v "
             f"JOIN auth_user u ON u.id = v.reviewer_id ORDER BY v.id",
    "model versions": f"SELECT id, name, arch, checkpoint, checkpoint_sha256, metrics::text, status, created_at "
                      f"FROM {ModelVersion._meta.db_table} ORDER BY id",
    "faces": f"SELECT id, pixels_id, split, original_label, current_label, excluded FROM {FaceImage._meta.db_table} "
             f"ORDER BY id",
    "training runs": f"SELECT id, snapshot_labels FROM {TrainingRun._meta.db_table} ORDER BY id",
    "users": "SELECT id, username, password FROM auth_user ORDER BY id",
}


@committed
def test_backup_restores_into_an_empty_stack(stack, archive, empty_database, media_root, tmp_path):
    restored_media = tmp_path / "restored-media"
    result = manage("restore", str(archive), database_url=empty_database, media_root=restored_media)
    assert result.returncode == 0, result.stderr
    assert "votes" in result.stdout and "restored" in result.stdout
    for what, query in COMPARED.items():
        before, after = rows(source_dsn(), query), rows(empty_database, query)
        assert before, f"no {what} to compare"
        assert after == before, what
    # The label change and the votes are those of the stack, not just equal tables.
    assert rows(empty_database, f"SELECT old_label, new_label FROM {LabelHistory._meta.db_table}") == [(0, 5)]
    assert len(rows(empty_database, COMPARED["votes"])) == 3
    # Media byte for byte: face PNGs and the checkpoint, under the names the rows hold.
    before, after = media_tree(media_root), media_tree(restored_media)
    assert after == before
    assert stack["version"].checkpoint.name in after
    assert {face.pixels.png.name for face in stack["faces"]} <= after.keys()
    # The restored database takes new rows (its sequences came along).
    with psycopg.connect(empty_database) as conn:
        (new_id,) = conn.execute(f"INSERT INTO {Vote._meta.db_table} (item_id, reviewer_id, round, choice, "
                                 f"created_at) SELECT item_id, reviewer_id, round + 1, choice, now() FROM "
                                 f"{Vote._meta.db_table} LIMIT 1 RETURNING id").fetchone()
    assert new_id > max(pk for pk, *_ in rows(source_dsn(), COMPARED["votes"]))


@committed
def test_archive_holds_the_dump_the_media_and_a_manifest(stack, archive, media_root):
    with tarfile.open(archive) as tar:
        names = tar.getnames()
        dump = tar.extractfile("database.dump").read()
        manifest = json.loads(tar.extractfile("manifest.json").read())
    assert names[0] == "database.dump" and names[-1] == "manifest.json"
    assert sorted(n.removeprefix("media/") for n in names[1:-1]) == sorted(media_tree(media_root))
    assert dump.startswith(b"PGDMP")  # pg_dump's custom format
    assert manifest["dump_sha256"] == hashlib.sha256(dump).hexdigest()
    assert manifest["format"] == "ferplatform-backup" and manifest["version"] == 1
    assert manifest["counts"] == {"users": 2, "faces": 3, "face_pixels": 3, "label_history": 1, "review_items": 2,
                                  "votes": 3, "model_versions": 1, "training_runs": 1, "explanations": 0, "uploads": 0}
    last = MigrationRecorder.Migration.objects.filter(app="review").order_by("id").last()
    assert manifest["migrations"]["review"] == last.name
    assert manifest["media_files"] == len(media_tree(media_root)) == 4


@committed
def test_backup_goes_to_var_dir_by_default_and_prints_what_it_wrote(stack, settings, tmp_path):
    settings.VAR_DIR = tmp_path / "var"
    out = io.StringIO()
    call_command("backup", stdout=out)
    [path] = (tmp_path / "var" / "backups").iterdir()  # the archive and nothing else (no temp files)
    assert path.name.startswith("ferplatform-") and path.name.endswith(".tar.gz")
    assert len(path.name) == len("ferplatform-YYYYmmdd-HHMMSS.tar.gz")
    text = out.getvalue()
    assert str(path) in text and "KiB" in text
    assert any(line.split() == ["votes", "3"] for line in text.splitlines())


@committed
def test_backup_never_overwrites_an_archive(stack, archive):
    before = archive.read_bytes()
    with pytest.raises(CommandError, match="already exists"):
        backup(archive)
    assert archive.read_bytes() == before


@committed
def test_a_failed_pg_dump_shows_its_error_and_leaves_no_archive(stack, tmp_path):
    """A table locked by someone else (as by a running migration): pg_dump gives up, and says why."""
    output = tmp_path / "backups" / "locked.tar.gz"
    with psycopg.connect(source_dsn()) as locker:
        locker.execute("LOCK TABLE django_session IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(CommandError, match=r"(?s)pg_dump failed.*LOCK TABLE public.django_session"):
            call_command("backup", "--output", str(output), "--lock-wait-timeout", "0.5", stdout=io.StringIO())
        locker.rollback()
    assert list(output.parent.iterdir()) == []


@committed
def test_backup_without_pg_dump_says_what_to_install(stack, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH with no PostgreSQL tools on it
    with pytest.raises(CommandError, match="pg_dump not found on PATH"):
        backup(tmp_path / "backups" / "x.tar.gz")
    assert not (tmp_path / "backups").exists() or list((tmp_path / "backups").iterdir()) == []


def test_backup_refuses_sqlite(tmp_path):
    result = manage("backup", "--output", str(tmp_path / "x.tar.gz"), database_url=f"sqlite:///{tmp_path}/db.sqlite3",
                    media_root=tmp_path / "media")
    assert result.returncode == 1
    assert "backups need PostgreSQL" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.tar.gz").exists()


# --- restore refusals -----------------------------------------------------------------------------------------------

@committed
def test_restore_refuses_a_database_with_tables(archive, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "empty-media"
    with pytest.raises(CommandError, match=r"already has tables .*createdb"):
        call_command("restore", str(archive), stdout=io.StringIO())
    assert not settings.MEDIA_ROOT.exists() or list(settings.MEDIA_ROOT.iterdir()) == []


@committed
def test_restore_refuses_a_media_root_with_files(archive, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "used-media"
    (settings.MEDIA_ROOT / "faces").mkdir(parents=True)
    (settings.MEDIA_ROOT / "faces" / "old.png").write_bytes(b"old")
    with pytest.raises(CommandError, match="MEDIA_ROOT .* already holds files"):
        call_command("restore", str(archive), stdout=io.StringIO())
    assert media_tree(settings.MEDIA_ROOT) == {"faces/old.png": b"old"}


def rewrite(source: Path, target: Path, change: Callable[[str, bytes], bytes]) -> Path:
    """Copy an archive member by member, with ``change(name, data)`` applied to every member's bytes."""
    with tarfile.open(source) as old, tarfile.open(target, "w:gz") as new:
        for member in old.getmembers():
            data = change(member.name, old.extractfile(member).read())
            member.size = len(data)
            new.addfile(member, io.BytesIO(data))
    return target


@committed
def test_restore_of_an_altered_archive_writes_nothing(archive, empty_database, tmp_path):
    def flip_a_byte(name: str, data: bytes) -> bytes:
        if name != "database.dump":
            return data
        middle = len(data) // 2
        return data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1:]

    altered = rewrite(archive, tmp_path / "altered.tar.gz", flip_a_byte)
    restored_media = tmp_path / "restored-media"
    result = manage("restore", str(altered), database_url=empty_database, media_root=restored_media)
    assert result.returncode == 1
    assert "database.dump does not match the manifest" in result.stderr and "Traceback" not in result.stderr
    assert public_tables(empty_database) == []
    assert not restored_media.exists() or list(restored_media.iterdir()) == []


# --- the archive reader, member by member ---------------------------------------------------------------------------

def make_archive(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], *, manifest: bool = True) -> Path:
    """A hand-made archive of ``members`` plus (unless told not to) a manifest that matches their dump and media."""
    dump = next((data for info, data in members if info.name == "database.dump"), b"")
    media = [(info.name, data) for info, data in members if info.isfile() and info.name.startswith("media/")]
    digest = hashlib.sha256(b"".join(f"{name}\0{hashlib.sha256(data).hexdigest()}\n".encode()
                                     for name, data in media))
    record = Manifest(created_at="2026-01-01T00:00:00+00:00", migrations={}, counts={},
                      dump_sha256=hashlib.sha256(dump).hexdigest(), dump_bytes=len(dump), media_files=len(media),
                      media_bytes=sum(len(data) for _, data in media), media_sha256=digest.hexdigest())
    with tarfile.open(path, "w:gz") as tar:
        for info, data in members + ([(file_info("manifest.json", record.to_json()), record.to_json())]
                                     if manifest else []):
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return path


def file_info(name: str, data: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info


def link_info(name: str, target: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info


DUMP = (file_info("database.dump", b"PGDMP dump"), b"PGDMP dump")
PNG = (file_info("media/faces/a.png", b"png bytes"), b"png bytes")


def test_a_well_formed_archive_unpacks(tmp_path):
    archive = make_archive(tmp_path / "ok.tar.gz", [DUMP, PNG])
    (tmp_path / "into").mkdir()
    manifest = archive_unpack(archive, tmp_path / "into")
    assert manifest.media_files == 1
    assert (tmp_path / "into" / "database.dump").read_bytes() == b"PGDMP dump"
    assert (tmp_path / "into" / "media" / "faces" / "a.png").read_bytes() == b"png bytes"


@pytest.mark.parametrize(("members", "manifest", "message"), [
    pytest.param([DUMP, (file_info("media/../../escaped.png", b"x"), b"x")], True, "leaves the archive", id="dotdot"),
    pytest.param([DUMP, (file_info("/etc/escaped", b"x"), b"x")], True, "absolute path", id="absolute"),
    pytest.param([DUMP, (link_info("media/link.png", "/etc/passwd", tarfile.SYMTYPE), b"")], True, "links",
                 id="symlink"),
    pytest.param([DUMP, (link_info("media/hard.png", "database.dump", tarfile.LNKTYPE), b"")], True, "links",
                 id="hardlink"),
    pytest.param([DUMP, (file_info("settings.py", b"x"), b"x")], True, "unexpected archive member", id="foreign"),
    pytest.param([DUMP, PNG, PNG], True, "appears twice", id="duplicate"),
    pytest.param([DUMP, PNG], False, "no manifest.json", id="no-manifest"),
    pytest.param([PNG], True, "no database.dump", id="no-dump"),
])
def test_archive_unpack_refuses(tmp_path, members, manifest, message):
    archive = make_archive(tmp_path / "bad.tar.gz", members, manifest=manifest)
    (tmp_path / "into").mkdir()
    with pytest.raises(BackupError, match=message):
        archive_unpack(archive, tmp_path / "into")
    assert not (tmp_path / "escaped.png").exists()


def test_archive_unpack_refuses_altered_media(tmp_path):
    good = make_archive(tmp_path / "good.tar.gz", [DUMP, PNG])
    altered = rewrite(good, tmp_path / "altered.tar.gz", lambda name, data: b"PNG BYTES" if name.endswith(".png")
                      else data)
    (tmp_path / "into").mkdir()
    with pytest.raises(BackupError, match="media does not match the manifest"):
        archive_unpack(altered, tmp_path / "into")


@pytest.mark.parametrize("damage", ["truncated", "not-gzip", "empty"])
def test_archive_unpack_refuses_a_damaged_file(tmp_path, damage):
    data = make_archive(tmp_path / "good.tar.gz", [DUMP, PNG]).read_bytes()
    damaged = tmp_path / "damaged.tar.gz"
    damaged.write_bytes({"truncated": data[:len(data) // 2], "not-gzip": b"hello, world\n" * 100,
                         "empty": b""}[damage])
    (tmp_path / "into").mkdir()
    with pytest.raises(BackupError, match="damaged, truncated or not a .tar.gz backup"):
        archive_unpack(damaged, tmp_path / "into")
