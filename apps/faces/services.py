"""Writes for faces: encoding pixels, storing each distinct face once, and recording images in batches.

Files are written before the rows that point at them (slow I/O outside short transactions); ``FaceWriter.scope``
deletes the files a failed transaction wrote, so an abort leaves neither rows nor files behind.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage
from django.db import transaction
from PIL import Image, ImageOps, UnidentifiedImageError

from .models import FACE_SIZE, Dataset, FaceImage, FacePixels, Split, face_png_path

FACE_BYTES = FACE_SIZE * FACE_SIZE


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


class FaceWriter:
    """Stores batches of ``FaceRecord`` for one dataset with a handful of queries per batch."""

    def __init__(self, dataset: Dataset | None = None, storage: Storage | None = None) -> None:
        self.dataset = dataset  # may be set later, inside ``scope()``, so that an abort removes a new dataset too
        self.storage = storage or default_storage
        self._written: list[str] = []
        self._depth = 0

    @contextmanager
    def scope(self) -> Iterator[None]:
        """A transaction; on any error its rows roll back and the files written inside it are deleted."""
        mark = len(self._written)
        self._depth += 1
        try:
            with transaction.atomic():
                yield
        except BaseException:
            for name in self._written[mark:]:
                self.storage.delete(name)
            del self._written[mark:]
            raise
        finally:
            self._depth -= 1
        if self._depth == 0:
            self._written.clear()  # committed for good: nothing left to clean up

    def write(self, records: list[FaceRecord]) -> BatchResult:
        result = BatchResult()
        if not records:
            return result
        assert self.dataset is not None, "FaceWriter.dataset must be set before writing"
        shas = [face_sha256(record.raw) for record in records]
        known = set(FacePixels.objects.filter(sha256__in=set(shas)).values_list("sha256", flat=True))
        new_pixels: list[FacePixels] = []
        for sha, record in zip(shas, records, strict=True):
            if sha in known:
                result.duplicates_linked += 1
                continue
            known.add(sha)
            new_pixels.append(FacePixels(sha256=sha, png=self._store_png(sha, record.raw)))
        FacePixels.objects.bulk_create(new_pixels, ignore_conflicts=True)
        result.pixels_stored = len(new_pixels)
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
            for sha, record in zip(shas, records, strict=True)
        ]
        FaceImage.objects.bulk_create(images, ignore_conflicts=True)
        result.created = len(images)
        return result

    def _store_png(self, sha: str, raw: bytes) -> str:
        name = face_png_path(sha)
        if self.storage.exists(name):
            # Left over from a crash without its row: replace it, it may be incomplete.
            self.storage.delete(name)
        saved = self.storage.save(name, ContentFile(face_png_encode(raw)))
        self._written.append(saved)
        return saved


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
