"""FER-2013 data: Kaggle's ``fer2013.csv`` (plain or gzip) and in-memory arrays, as uint8 tensors."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.labels import NUM_CLASSES, USAGES

IMAGE_SIDE = 48
PIXELS = IMAGE_SIDE * IMAGE_SIDE


class DataError(ValueError):
    """A data file that cannot be read as FER-2013; the message names the file and line."""


@dataclass
class FaceArrays:
    """Faces as uint8 (N, 48, 48), labels as int64 (N,), and for each face its 0-based data row in the source file
    and its Usage. Soft labels (N, 7) are optional vote distributions."""

    images: np.ndarray
    labels: np.ndarray
    rows: np.ndarray
    usages: np.ndarray
    soft_labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask_or_index: np.ndarray) -> FaceArrays:
        soft = None if self.soft_labels is None else self.soft_labels[mask_or_index]
        return FaceArrays(self.images[mask_or_index], self.labels[mask_or_index], self.rows[mask_or_index],
                          self.usages[mask_or_index], soft)

    def usage(self, name: str) -> FaceArrays:
        return self.subset(self.usages == name)

    @classmethod
    def from_arrays(cls, images: np.ndarray, labels: Iterable[int], usage: str = "Training",
                    soft_labels: np.ndarray | None = None) -> FaceArrays:
        images = np.asarray(images)
        if images.ndim != 3 or images.shape[1:] != (IMAGE_SIDE, IMAGE_SIDE):
            raise DataError(f"expected images of shape (N, 48, 48), got {images.shape}")
        labels = np.asarray(list(labels), dtype=np.int64)
        if len(labels) != len(images):
            raise DataError(f"{len(images)} images but {len(labels)} labels")
        if len(labels) and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
            raise DataError(f"labels must lie in 0..{NUM_CLASSES - 1}")
        n = len(labels)
        return cls(images.astype(np.uint8, copy=False), labels, np.arange(n), np.full(n, usage, dtype=object),
                   soft_labels)


def _open_text(path: Path) -> io.TextIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    if magic == b"\x1f\x8b":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def iter_fer_csv(path: str | Path) -> Iterator[tuple[int, int, dict[str, str]]]:
    """Yield ``(line_number, data_row, record)`` for every data row, with the raw column values."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with _open_text(path) as fh:
            reader = csv.DictReader(fh)
            missing = {"emotion", "pixels", "Usage"} - set(reader.fieldnames or [])
            if missing:
                raise DataError(f"{path}: not a FER-2013 CSV (missing column(s) {', '.join(sorted(missing))})")
            for data_row, record in enumerate(reader):
                yield reader.line_num, data_row, record
    except (UnicodeDecodeError, gzip.BadGzipFile, EOFError, csv.Error) as exc:
        raise DataError(f"{path}: unreadable ({exc})") from exc


def parse_row(record: dict[str, str]) -> tuple[int, np.ndarray, str]:
    """Validate one record; raise ``ValueError`` with a short reason when it is bad."""
    try:
        label = int(record["emotion"])
    except (TypeError, ValueError):
        raise ValueError(f"emotion {record['emotion']!r} is not an integer") from None
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"emotion {label} out of range 0..{NUM_CLASSES - 1}")
    usage = (record["Usage"] or "").strip()
    if usage not in USAGES:
        raise ValueError(f"unknown Usage {usage!r}")
    parts = (record["pixels"] or "").split()
    if len(parts) != PIXELS:
        raise ValueError(f"{len(parts)} pixel values, expected {PIXELS}")
    try:
        values = np.array(parts, dtype=np.int64)
    except ValueError:
        raise ValueError("non-numeric pixel value") from None
    if values.min() < 0 or values.max() > 255:
        raise ValueError("pixel value out of range 0..255")
    return label, values.astype(np.uint8).reshape(IMAGE_SIDE, IMAGE_SIDE), usage


def load_fer_csv(path: str | Path, usages: Iterable[str] | None = None) -> FaceArrays:
    """Read a Kaggle-layout CSV. Any malformed row raises ``DataError`` naming its line (training data must be
    whole; the platform's importer is the tolerant path)."""
    wanted = set(usages) if usages is not None else None
    images, labels, rows, kept_usages = [], [], [], []
    for line, data_row, record in iter_fer_csv(path):
        try:
            label, pixels, usage = parse_row(record)
        except ValueError as exc:
            raise DataError(f"{path}: line {line}: {exc}") from None
        if wanted is not None and usage not in wanted:
            continue
        images.append(pixels)
        labels.append(label)
        rows.append(data_row)
        kept_usages.append(usage)
    if not images:
        raise DataError(f"{path}: no rows" + (f" with Usage in {sorted(wanted)}" if wanted else ""))
    return FaceArrays(np.stack(images), np.array(labels, dtype=np.int64), np.array(rows, dtype=np.int64),
                      np.array(kept_usages, dtype=object))


def class_counts(labels: np.ndarray) -> np.ndarray:
    return np.bincount(labels, minlength=NUM_CLASSES)


def balanced_class_weights(labels: np.ndarray) -> np.ndarray:
    """scikit-learn's "balanced" weights, n_samples / (n_classes * count), 0 for absent classes."""
    counts = class_counts(labels).astype(np.float64)
    weights = np.zeros(NUM_CLASSES)
    present = counts > 0
    weights[present] = len(labels) / (present.sum() * counts[present])
    return weights
