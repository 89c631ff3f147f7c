"""Import Kaggle's ``fer2013.csv`` (``emotion,pixels,Usage``; plain or gzip), streamed and idempotent.

Rows are keyed by (dataset, source_row), so a second import skips every row already present without
decoding its pixels. Bad rows are reported with their file line numbers and skipped, or abort under
``strict`` — then the whole import is one transaction and the PNGs it wrote are deleted.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from django.conf import settings

from apps.faces.models import FaceImage, Split
from apps.faces.services import FACE_BYTES, FaceRecord, FaceWriter, dataset_get_or_create
from ml.labels import NUM_CLASSES

from .common import BadRow, ImportAborted, ImportReport, ProgressCallback, batched, header_index, open_csv

KAGGLE_USAGES = (Split.TRAINING.value, Split.PUBLIC_TEST.value, Split.PRIVATE_TEST.value)


def fer2013_parse_row(row: list[str], columns: dict[str, int]) -> tuple[bytes, int, str]:
    """Validate one data row; ``ValueError`` says what is wrong with it."""
    if len(row) <= max(columns.values()):
        raise ValueError(f"expected {max(columns.values()) + 1} columns, found {len(row)}")
    label_text = row[columns["emotion"]].strip()
    if not label_text.lstrip("-").isdigit():
        raise ValueError(f"emotion {label_text!r} is not an integer")
    label = int(label_text)
    if not 0 <= label < NUM_CLASSES:
        raise ValueError(f"emotion {label} out of range 0-{NUM_CLASSES - 1}")
    usage = row[columns["Usage"]].strip()
    if usage not in KAGGLE_USAGES:
        raise ValueError(f"unknown Usage {usage!r}; expected one of {', '.join(KAGGLE_USAGES)}")
    values = row[columns["pixels"]].split()
    if len(values) != FACE_BYTES:
        raise ValueError(f"expected {FACE_BYTES} pixel values, found {len(values)}")
    try:
        raw = bytes(map(int, values))
    except ValueError as exc:
        reason = "pixel value out of range 0-255" if "range" in str(exc) else "non-numeric pixel value"
        raise ValueError(reason) from None
    return raw, label, usage


def fer2013_import(
    *,
    path: str | Path,
    dataset_name: str = "fer2013",
    strict: bool = False,
    batch_size: int | None = None,
    on_progress: ProgressCallback | None = None,
) -> ImportReport:
    batch_size = batch_size or settings.FACES_IMPORT_BATCH_SIZE
    report = ImportReport()
    with open_csv(path, on_progress) as reader:
        columns = header_index(next(reader, None), ("emotion", "pixels", "Usage"), path)
        writer = FaceWriter()
        # source_row is the 0-based data row; the file line is source_row + 2 (line 1 is the header).
        numbered = enumerate(reader)
        with writer.scope() if strict else nullcontext():
            writer.dataset = dataset_get_or_create(name=dataset_name)  # inside the scope: an abort removes it too
            for batch in batched(numbered, batch_size):
                _import_batch(batch, columns, writer, report, strict)
    return report


def _import_batch(batch, columns, writer: FaceWriter, report: ImportReport, strict: bool) -> None:
    report.rows_read += len(batch)
    first, last = batch[0][0], batch[-1][0]
    present = set(
        FaceImage.objects.filter(dataset=writer.dataset, source_row__gte=first, source_row__lte=last).values_list(
            "source_row", flat=True
        )
    )
    records: list[FaceRecord] = []
    for source_row, row in batch:
        if source_row in present:
            report.already_present += 1
            continue
        if not row or (len(row) == 1 and not row[0].strip()):
            continue  # blank line, e.g. at the end of the file
        try:
            raw, label, usage = fer2013_parse_row(row, columns)
        except ValueError as exc:
            bad = BadRow(f"line {source_row + 2}", str(exc))
            if strict:
                raise ImportAborted(f"{bad} (--strict: nothing imported)") from None
            report.add_bad(bad)
            continue
        records.append(FaceRecord(raw=raw, split=usage, label=label, source_row=source_row))
    result = writer.write(records)  # its own short transaction, or a part of the strict import's one
    report.created += result.created
    report.duplicates_linked += result.duplicates_linked
    report.pixels_stored += result.pixels_stored
