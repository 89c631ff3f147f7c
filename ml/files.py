"""Files written whole or not at all: written unnamed (or under a temp name) in the target's directory, fsynced, then
renamed over the target. Readers never see half a file, and a failed write (a full disk) leaves nothing behind.

Framework-free, so that checkpoints (``ml.checkpoint``) and the Django storage writes (``apps.core.files``) share it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


class FileWriteError(OSError):
    """Writing a file failed (disk full, quota, I/O error). Keeps the errno; the message says what was written where,
    e.g. ``[Errno 28] No space left on device while writing heatmaps: /srv/media/explanations/v3/....png``."""

    @classmethod
    def of(cls, exc: OSError, *, what: str, path: str | os.PathLike) -> FileWriteError:
        if isinstance(exc, FileWriteError):
            return exc
        return cls(exc.errno, f"{exc.strerror or exc} while writing {what}: {path}")


def _os_error(exc: BaseException) -> OSError | None:
    """``exc`` or the OSError it hides: torch.save reports a failed write as a RuntimeError raised while handling
    the file's own OSError."""
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError):
            return exc
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return None


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")


def _open_unnamed(directory: Path) -> int | None:
    """An unnamed file in ``directory`` (O_TMPFILE): it vanishes if the process is killed before it is linked, so
    even SIGKILL leaves no temp file. None where the OS or file system does not offer it."""
    flag = getattr(os, "O_TMPFILE", 0)
    if not flag:
        return None
    try:
        return os.open(directory, flag | os.O_WRONLY, 0o666)
    except OSError:  # EOPNOTSUPP, EISDIR (old kernels), EINVAL: fall back to a named temp file
        return None


def _link_unnamed(fd: int, temp: Path) -> None:
    # os.link follows /proc's magic link only through linkat(AT_SYMLINK_FOLLOW), which it uses when given dir fds.
    directory = os.open(temp.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.link(f"/proc/self/fd/{fd}", temp.name, src_dir_fd=directory, dst_dir_fd=directory, follow_symlinks=True)
    finally:
        os.close(directory)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, *, what: str = "a file", mode: int | None = None) -> Iterator[BinaryIO]:
    """Yield a binary file to write; when the block ends without error its bytes replace ``path`` in one rename.

    On any error nothing is left (no temp file, ``path`` untouched) and an OSError of the write comes out as
    ``FileWriteError`` naming ``what``. ``mode`` (e.g. 0o644) is applied before the file appears; otherwise it gets
    the usual 0o666 less the umask.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FileWriteError.of(exc, what=what, path=path) from exc
    fd = _open_unnamed(path.parent)
    temp = _temp_name(path)
    named = fd is None
    if named:
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
        except OSError as exc:
            raise FileWriteError.of(exc, what=what, path=path) from exc
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if mode is not None:
                os.fchmod(fh.fileno(), mode)
            os.fsync(fh.fileno())
            if not named:
                _link_unnamed(fh.fileno(), temp)
                named = True
        os.replace(temp, path)
    except BaseException as exc:
        if named:
            temp.unlink(missing_ok=True)
        error = _os_error(exc)
        if error is not None:
            raise FileWriteError.of(error, what=what, path=path) from exc
        raise


def write_atomic(path: str | os.PathLike, data: bytes, *, what: str = "a file", mode: int | None = None) -> None:
    """Write ``data`` to ``path`` whole or not at all (see ``atomic_open``)."""
    with atomic_open(path, what=what, mode=mode) as fh:
        fh.write(data)
