"""Media written whole or not at all, through the storage that the settings choose (``STORAGES``).

Django's ``FileSystemStorage.save`` writes straight to the final name, so a full disk (or a killed worker) leaves a
partial file there. ``storage_save_atomic`` writes a local file system's files with ``ml.files.atomic_open`` instead
(unnamed file in the same directory, fsync, rename); other backends (object stores) store an object whole already and
use their own ``save``.
"""

from __future__ import annotations

import shutil
from typing import BinaryIO

from django.core.files.base import ContentFile, File
from django.core.files.storage import FileSystemStorage, Storage, default_storage

from ml.files import FileWriteError, atomic_open

__all__ = ["FileWriteError", "storage_save_atomic"]


def storage_save_atomic(name: str, content: bytes | BinaryIO, *, what: str, storage: Storage | None = None) -> str:
    """Store ``content`` (bytes or a binary file read from its start) as ``name`` and return the stored name.

    The name is taken as given, replacing a file of that name: callers pass unique names (uuids) or names derived
    from the row's unique key, so that a retried write lands on the same file. A failed write raises
    ``FileWriteError`` ("No space left on device while writing <what>: ...") and leaves no file behind.
    """
    storage = storage or default_storage
    if not isinstance(storage, FileSystemStorage):
        wrapped = ContentFile(content) if isinstance(content, bytes) else File(content)
        try:
            return storage.save(name, wrapped)
        except OSError as exc:
            raise FileWriteError.of(exc, what=what, path=name) from exc
    path = storage.path(name)  # safe_join: refuses names outside the storage root
    with atomic_open(path, what=what, mode=storage.file_permissions_mode) as fh:
        if isinstance(content, bytes):
            fh.write(content)
        else:
            shutil.copyfileobj(content, fh, length=1 << 20)
    return name
