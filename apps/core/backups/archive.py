"""The backup archive itself: written in one pass (dump, media, then the manifest that describes them), read in one
pass into a staging directory, every member checked on the way.

A restore reads the archive once, so it cannot know that the manifest (the last member) agrees with the dump and
the media until it has read them all: ``archive_unpack`` therefore writes only to a staging directory that the
caller throws away when it raises, and the caller moves things into place only after it returned.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import re
import stat
import tarfile
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from ml.files import atomic_open

from . import BackupError
from .manifest import DUMP_NAME, MANIFEST_NAME, MEDIA_DIR, Manifest

_CHUNK = 1 << 20
_MANIFEST_MAX_BYTES = 1 << 20  # a manifest is a few KB; refuse to read a huge "manifest" into memory
# ml.files.atomic_open's named temp files (".name.<12 hex>.tmp"): a write in progress, never a finished file.
_TEMP_FILE = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")
# What a damaged or foreign file raises while tarfile reads it as a gzip stream.
_UNREADABLE = (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile)


@dataclass
class Contents:
    """What an archive holds, measured while writing or reading it, to hold against the manifest."""

    dump_sha256: str = ""
    dump_bytes: int = 0
    media_files: int = 0
    media_bytes: int = 0
    _media_digest: Any = field(default_factory=hashlib.sha256, repr=False)

    def add_media(self, name: str, *, sha256: str, size: int) -> None:
        self.media_files += 1
        self.media_bytes += size
        self._media_digest.update(f"{name}\0{sha256}\n".encode())

    @property
    def media_sha256(self) -> str:
        """One digest over every media file's name and content, in archive order."""
        return self._media_digest.hexdigest()


class _HashingReader:
    """A file read through by tarfile, hashed on the way, so that each file is read once."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh, self.sha256, self.size = fh, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.fh.read(n)
        self.sha256.update(data)
        self.size += len(data)
        return data


# --- writing --------------------------------------------------------------------------------------------------------

def media_files(media_root: Path) -> Iterator[tuple[Path, str]]:
    """(path, archive name) of every regular file under ``media_root``, in a stable order. Links are skipped (a
    restore refuses them), and so are half-written temp files of atomic writes."""
    for directory, dirs, files in os.walk(media_root):
        dirs.sort()
        for name in sorted(files):
            path = Path(directory, name)
            try:
                regular = stat.S_ISREG(path.lstat().st_mode)
            except FileNotFoundError:  # deleted while we walk: it was not part of the stack any more
                continue
            if regular and not _TEMP_FILE.match(name):
                yield path, f"{MEDIA_DIR}/{path.relative_to(media_root).as_posix()}"


def _add(tar: tarfile.TarFile, path: Path, arcname: str) -> _HashingReader:
    with open(path, "rb") as fh:
        info = tar.gettarinfo(arcname=arcname, fileobj=fh)  # the size of the file opened, even if renamed over now
        info.uid = info.gid = 0
        info.uname = info.gname = ""
        reader = _HashingReader(fh)
        tar.addfile(info, reader)
        return reader


def archive_write(path: Path, *, dump: Path, media_root: Path, manifest: Callable[[Contents], Manifest]) -> Manifest:
    """Write the archive to ``path`` whole or not at all (a temp file renamed at the end): the dump, every media
    file, then ``manifest(contents)``, built from what was actually written."""
    contents = Contents()
    with atomic_open(path, what="the backup archive", mode=0o600) as fh:
        with tarfile.open(fileobj=fh, mode="w:gz", compresslevel=6) as tar:  # PNGs and checkpoints barely shrink
            reader = _add(tar, dump, DUMP_NAME)
            contents.dump_sha256, contents.dump_bytes = reader.sha256.hexdigest(), reader.size
            for media_path, arcname in media_files(media_root):
                try:
                    reader = _add(tar, media_path, arcname)
                except FileNotFoundError:  # deleted since the walk listed it
                    continue
                contents.add_media(arcname, sha256=reader.sha256.hexdigest(), size=reader.size)
            written = manifest(contents)
            data = written.to_json()
            info = tarfile.TarInfo(MANIFEST_NAME)
            info.size, info.mtime, info.mode = len(data), int(time.time()), 0o644
            tar.addfile(info, io.BytesIO(data))
    return written


# --- reading --------------------------------------------------------------------------------------------------------

def _member_role(member: tarfile.TarInfo) -> str:
    """"manifest", "dump" or "media" for a member a backup may hold; anything else is refused by name."""
    name = member.name
    parts = PurePosixPath(name).parts
    if name.startswith("/") or "\\" in name or ".." in parts or not parts:
        raise BackupError(f"refusing archive member {name!r}: an absolute path or one that leaves the archive")
    if not (member.isfile() or member.isdir()):
        raise BackupError(f"refusing archive member {name!r}: links and special files are never restored")
    if member.isfile() and name == MANIFEST_NAME:
        return "manifest"
    if member.isfile() and name == DUMP_NAME:
        return "dump"
    if parts[0] == MEDIA_DIR and (member.isdir() or len(parts) > 1):
        return "media"
    raise BackupError(f"unexpected archive member {name!r}: not a ferplatform backup")


def _read_dump(tar: tarfile.TarFile, member: tarfile.TarInfo, target: Path, contents: Contents) -> None:
    sha256, size = hashlib.sha256(), 0
    source = tar.extractfile(member)
    with open(target, "xb") as out:
        while chunk := source.read(_CHUNK):
            sha256.update(chunk)
            size += len(chunk)
            out.write(chunk)
    contents.dump_sha256, contents.dump_bytes = sha256.hexdigest(), size


def _read_media(tar: tarfile.TarFile, member: tarfile.TarInfo, into: Path, contents: Contents) -> None:
    try:
        tar.extract(member, into, filter="data")  # tarfile's own guard: nothing outside ``into``, no odd modes
    except tarfile.FilterError as exc:
        raise BackupError(f"refusing archive member {member.name!r}: {exc}") from None
    if member.isfile():
        sha256 = hashlib.sha256()
        with open(into / member.name, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                sha256.update(chunk)
        contents.add_media(member.name, sha256=sha256.hexdigest(), size=member.size)


def _read_members(tar: tarfile.TarFile, into: Path) -> tuple[bytes | None, Contents]:
    manifest_data, contents, seen = None, Contents(), set()
    for member in tar:
        role = _member_role(member)
        if member.name in seen:  # a second copy would silently replace the first one
            raise BackupError(f"archive member {member.name!r} appears twice: not a ferplatform backup")
        seen.add(member.name)
        if role == "manifest":
            if member.size > _MANIFEST_MAX_BYTES:
                raise BackupError(f"{MANIFEST_NAME} is {member.size} bytes: not a ferplatform backup")
            manifest_data = tar.extractfile(member).read()
        elif role == "dump":
            _read_dump(tar, member, into / DUMP_NAME, contents)
        else:
            _read_media(tar, member, into, contents)
    return manifest_data, contents


def _check(manifest: Manifest, contents: Contents) -> None:
    if not contents.dump_sha256:
        raise BackupError(f"the archive has no {DUMP_NAME}")
    if (contents.dump_sha256, contents.dump_bytes) != (manifest.dump_sha256, manifest.dump_bytes):
        raise BackupError(f"{DUMP_NAME} does not match the manifest (sha256 {contents.dump_sha256}, "
                          f"{contents.dump_bytes} bytes; the manifest says {manifest.dump_sha256}, "
                          f"{manifest.dump_bytes} bytes): the archive is damaged or was altered")
    measured = (contents.media_files, contents.media_bytes, contents.media_sha256)
    if measured != (manifest.media_files, manifest.media_bytes, manifest.media_sha256):
        raise BackupError(f"the media does not match the manifest ({contents.media_files} files, "
                          f"{contents.media_bytes} bytes; the manifest says {manifest.media_files} files, "
                          f"{manifest.media_bytes} bytes, or their contents differ): the archive is damaged or was "
                          f"altered")


def archive_unpack(archive: Path, into: Path) -> Manifest:
    """Read ``archive`` into the empty directory ``into`` (``database.dump`` and ``media/...``) and check it all
    against its manifest. Raises ``BackupError`` for a damaged, truncated, altered or foreign archive; what it wrote
    to ``into`` is then the caller's to delete."""
    if not archive.is_file():
        raise BackupError(f"{archive}: no such file")
    try:
        with tarfile.open(archive, mode="r|gz") as tar:  # a stream: one pass, no seeking back
            manifest_data, contents = _read_members(tar, into)
    except _UNREADABLE as exc:
        raise BackupError(f"{archive} is damaged, truncated or not a .tar.gz backup: {exc}") from None
    if manifest_data is None:
        raise BackupError(f"{archive} has no {MANIFEST_NAME}: not a ferplatform backup")
    manifest = Manifest.from_json(manifest_data)
    _check(manifest, contents)
    return manifest
