"""Import an image-folder layout ``DIR/<split>/<class>/*.png|jpg`` (any size; stored as 48x48 grey).

Split folders: Training/train, PublicTest/val/test, PrivateTest, Upload (any case). Class folders: a name
(``happy``) or an index (``3``). Images are keyed by their path relative to DIR, so re-imports add nothing.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from django.conf import settings

from apps.faces.models import FaceImage
from apps.faces.services import (
    FaceRecord,
    FaceWriter,
    dataset_get_or_create,
    face_pixels_from_image,
    split_from_name,
)
from ml.labels import class_index

from .common import BadRow, ImportAborted, ImportReport, ProgressCallback, batched

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}


def folder_images(root: Path) -> list[Path]:
    """Image files two levels down (``<split>/<class>/file``), sorted so runs are reproducible."""
    return sorted(
        path
        for path in root.glob("*/*/*")
        if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")
    )


def folder_import(
    *,
    root: str | Path,
    dataset_name: str | None = None,
    strict: bool = False,
    batch_size: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> ImportReport:
    root = Path(root)
    if not root.is_dir():
        raise ImportAborted(f"{root}: not a directory")
    batch_size = batch_size or settings.FACES_IMPORT_BATCH_SIZE
    writer = FaceWriter()
    report = ImportReport()
    with writer.scope() if strict else nullcontext():
        writer.dataset = dataset_get_or_create(name=dataset_name or root.resolve().name)
        for batch in batched(folder_images(root), batch_size):
            _import_batch(root, batch, writer, report, strict)
            if on_progress:
                on_progress(len(batch))
    return report


def _import_batch(root: Path, batch: list[Path], writer: FaceWriter, report: ImportReport, strict: bool) -> None:
    report.rows_read += len(batch)
    names = {path: path.relative_to(root).as_posix() for path in batch}
    present = set(
        FaceImage.objects.filter(dataset=writer.dataset, source_name__in=names.values()).values_list(
            "source_name", flat=True
        )
    )
    records: list[FaceRecord] = []
    for path, name in names.items():
        if name in present:
            report.already_present += 1
            continue
        split_dir, class_dir = path.relative_to(root).parts[:2]
        try:
            split = split_from_name(split_dir)
            label = class_index(class_dir)
            raw = face_pixels_from_image(path.read_bytes())
        except (ValueError, OSError) as exc:
            bad = BadRow(name, str(exc))
            if strict:
                raise ImportAborted(f"{bad} (--strict: nothing imported)") from None
            report.add_bad(bad)
            continue
        records.append(FaceRecord(raw=raw, split=split, label=label, source_name=name))
    result = writer.write(records)  # its own short transaction, or a part of the strict import's one
    report.created += result.created
    report.duplicates_linked += result.duplicates_linked
    report.pixels_stored += result.pixels_stored
