"""Writes for faces: encoding pixels, storing each distinct face once, and recording images in batches.

``FaceWriter`` is the one writer of face PNGs (the importers and uploads): files are written before the rows that
point at them (slow I/O outside short transactions), and deleted again when those rows do not commit, so an abort
leaves neither rows nor files behind.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from django.core.files.storage import Storage, default_storage
from django.db import DatabaseError, transaction
from PIL import Image, ImageOps, UnidentifiedImageError

from apps.core.files import storage_save_atomic

from .models import FACE_SIZE, Dataset, FaceImage, FacePixels, Split, face_png_path

FACE_BYTES = FACE_SIZE * FACE_SIZE
T = TypeVar("T")


@dataclass(frozen=True)
class FaceRecord:
    """One face to import: 2,304 grey bytes plus where it came from and its label."""

    raw: bytes
    split: str
    label: int | None
    source_row: int | None = None
    source_name: str = ""


def face_sha256(raw: bytes) -> str:
    return hashlib.sha256(raw).hexdigest()


def face_png_encode(raw: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.frombytes("L", (FACE_SIZE, FACE_SIZE), raw).save(buffer, format="PNG")
    return buffer.getvalue()


def face_pixels_from_image(data: bytes | io.IOBase) -> bytes:
    """Any image file (PNG/JPEG/..., any size) as 48x48 grey bytes: centre-cropped to square, then resized."""
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    try:
        with Image.open(source) as image:
            image = ImageOps.exif_transpose(image).convert("L")
            if image.size != (FACE_SIZE, FACE_SIZE):
                image = ImageOps.fit(image, (FACE_SIZE, FACE_SIZE), Image.Resampling.LANCZOS)
            return image.tobytes()
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ValueError(f"not a readable image ({exc})") from None


def dataset_get_or_create(*, name: str) -> Dataset:
    dataset, _ = Dataset.objects.get_or_create(name=name)
    return dataset


@dataclass
class BatchResult:
    created: int = 0
    duplicates_linked: int = 0
    pixels_stored: int = 0


@dataclass(frozen=True)
class StoredPngs:
    """What ``FaceWriter.recording`` stored: each face's sha256 (None where there was no face) and how many PNGs it
    wrote (pixels stored already, or twice in one batch, are written once)."""

    shas: list[str | None]
    written: int


class FaceWriter:
    """The one writer of face PNGs and their rows, for the importers and for uploads.

    The PNGs are written first, whole (``storage_save_atomic``), under a name derived from the pixels (a retry or a
    concurrent writer of the same face lands on the same file), and outside any transaction where the caller has
    none; then one short transaction records the rows. If the rows do not commit, the PNGs written for them are
    deleted again, so an abort leaves neither rows nor files behind.
    """

    def __init__(self, dataset: Dataset | None = None, storage: Storage | None = None) -> None:
        self.dataset = dataset  # may be set later, inside ``scope()``, so that an abort removes a new dataset too
        self.storage = storage or default_storage
        self._written: list[tuple[str, str]] = []  # (sha256, name) of PNGs whose rows have not committed yet
        self._depth = 0

    @contextmanager
    def scope(self) -> Iterator[None]:
        """A transaction; on any error its rows roll back and the PNGs written inside it are deleted. Nested scopes
        (``write`` inside a ``scope``) make the whole outer block all or nothing."""
        with self._scope(mark=len(self._written)):
            yield

    @contextmanager
    def recording(self, raws: Sequence[bytes | None]) -> Iterator[StoredPngs]:
        """Store the PNGs of ``raws`` (48x48 grey bytes; None for no face) whose pixels are not stored yet, then open
        the transaction that records them: their ``FacePixels`` rows exist inside the block, and the caller adds the
        rows that point at them (``pixels_id=sha``). If the block fails before it commits, the PNGs are deleted."""
        shas = [face_sha256(raw) if raw is not None else None for raw in raws]
        distinct = {sha: raw for sha, raw in zip(shas, raws, strict=True) if sha is not None}
        with self._scope(mark=len(self._written), files=lambda: self._pngs_store(distinct)) as new:
            FacePixels.objects.bulk_create([FacePixels(sha256=sha, png=name) for sha, name in new],
                                           ignore_conflicts=True)  # another writer's row for the same pixels wins
            yield StoredPngs(shas=shas, written=len(new))

    def write(self, records: list[FaceRecord]) -> BatchResult:
        """Store a batch of faces of ``dataset``: a handful of queries, and one short transaction for the rows."""
        result = BatchResult()
        if not records:
            return result
        assert self.dataset is not None, "FaceWriter.dataset must be set before writing"
        with self.recording([record.raw for record in records]) as pngs:
            images = [
                FaceImage(
                    dataset=self.dataset,
                    pixels_id=sha,
                    split=record.split,
                    original_label=record.label,
                    current_label=record.label,
                    source_row=record.source_row,
                    source_name=record.source_name,
                )
                for sha, record in zip(pngs.shas, records, strict=True)
            ]
            FaceImage.objects.bulk_create(images, ignore_conflicts=True)
        result.created = len(images)
        result.pixels_stored = pngs.written
        result.duplicates_linked = len(records) - pngs.written
        return result

    @contextmanager
    def _scope(self, *, mark: int, files: Callable[[], T] | None = None) -> Iterator[T | None]:
        """``files()`` (the slow writes, before the transaction), then a transaction; the PNGs written since ``mark``
        are deleted unless it commits. An error raised after our outermost transaction committed (by a later
        ``on_commit`` callback, say) leaves the files of its committed rows alone."""
        committed: list[bool] = []
        self._depth += 1
        try:
            written = files() if files is not None else None
            outermost = not transaction.get_connection().in_atomic_block
            with transaction.atomic():
                if outermost:
                    transaction.on_commit(lambda: committed.append(True))  # registered first: runs first
                yield written
        except BaseException:
            if not committed:
                self._delete(self._written[mark:])
                del self._written[mark:]
            raise
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._written.clear()  # what is left belongs to committed rows (or the caller's transaction)

    def _pngs_store(self, faces: dict[str, bytes]) -> list[tuple[str, str]]:
        """Write the PNG of each face (sha256: raw bytes) that has no row yet: [(sha256, name)] written."""
        known = set(FacePixels.objects.filter(sha256__in=list(faces)).values_list("sha256", flat=True))
        new: list[tuple[str, str]] = []
        for sha, raw in faces.items():
            if sha in known:
                continue
            # The name is the face's: a file a crash left without its row (maybe half-written) is replaced whole.
            name = storage_save_atomic(face_png_path(sha), face_png_encode(raw), what="face images",
                                       storage=self.storage)
            self._written.append((sha, name))
            new.append((sha, name))
        return new

    def _delete(self, written: Sequence[tuple[str, str]]) -> None:
        """Delete PNGs whose rows did not commit, except one a committed row refers to: a concurrent writer of the
        same face wrote the same file and recorded it meanwhile."""
        if not written:
            return
        try:
            recorded = set(FacePixels.objects.filter(sha256__in=[sha for sha, _ in written])
                           .values_list("png", flat=True))
        except DatabaseError:  # the database is away: no row can refer to them now
            recorded = set()
        for _, name in written:
            if name not in recorded:
                self.storage.delete(name)


def split_from_name(name: str) -> str:
    """``Training``/``train``, ``PublicTest``/``val``/``test``, ``PrivateTest``, ``Upload`` (any case)."""
    aliases = {
        "training": Split.TRAINING, "train": Split.TRAINING,
        "publictest": Split.PUBLIC_TEST, "public_test": Split.PUBLIC_TEST, "val": Split.PUBLIC_TEST,
        "validation": Split.PUBLIC_TEST, "test": Split.PUBLIC_TEST,
        "privatetest": Split.PRIVATE_TEST, "private_test": Split.PRIVATE_TEST,
        "upload": Split.UPLOAD, "uploads": Split.UPLOAD,
    }
    try:
        return aliases[name.strip().lower()].value
    except KeyError:
        raise ValueError(f"unknown split {name!r}; expected one of {', '.join(Split.values)}") from None
