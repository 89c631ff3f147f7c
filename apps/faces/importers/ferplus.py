"""Attach FER+ votes (``fer2013new.csv``) to imported FER-2013 images.

FER+ has one row per fer2013.csv row, in the same order, so data row N belongs to the image with
``source_row`` N. Rows whose image is not imported (e.g. withheld PrivateTest rows) count as unmatched;
a row whose Usage disagrees with the image's split means the files do not line up and is reported bad.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from django.conf import settings
from django.db import transaction

from apps.faces.labels import FERPLUS_COLUMNS
from apps.faces.models import FaceImage

from .common import BadRow, ImportAborted, ImportReport, ProgressCallback, batched, header_index, open_csv


def ferplus_parse_row(row: list[str], columns: dict[str, int]) -> tuple[str, list[int]]:
    if len(row) <= max(columns.values()):
        raise ValueError(f"expected {max(columns.values()) + 1} columns, found {len(row)}")
    votes: list[int] = []
    for name in FERPLUS_COLUMNS:
        text = row[columns[name]].strip()
        if not text.isdigit():
            raise ValueError(f"{name} vote {text!r} is not a non-negative integer")
        votes.append(int(text))
    return row[columns["Usage"]].strip(), votes


def ferplus_import(
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
        columns = header_index(next(reader, None), ("Usage", *FERPLUS_COLUMNS), path)
        with transaction.atomic() if strict else nullcontext():
            for batch in batched(enumerate(reader), batch_size):
                with transaction.atomic():
                    _import_batch(batch, columns, dataset_name, report, strict)
    return report


def _import_batch(batch, columns, dataset_name: str, report: ImportReport, strict: bool) -> None:
    report.rows_read += len(batch)
    first, last = batch[0][0], batch[-1][0]
    images = {
        image.source_row: image
        for image in FaceImage.objects.filter(
            dataset__name=dataset_name, source_row__gte=first, source_row__lte=last
        ).only("id", "source_row", "split", "ferplus_votes")
    }
    changed: list[FaceImage] = []
    for source_row, row in batch:
        try:
            usage, votes = ferplus_parse_row(row, columns)
            image = images.get(source_row)
            if image is not None and usage != image.split:
                raise ValueError(f"Usage {usage!r} but image row {source_row} is {image.split!r}: files do not line up")
        except ValueError as exc:
            bad = BadRow(f"line {source_row + 2}", str(exc))
            if strict:
                raise ImportAborted(f"{bad} (--strict: nothing imported)") from None
            report.add_bad(bad)
            continue
        if image is None:
            report.unmatched += 1
        elif image.ferplus_votes != votes:
            image.ferplus_votes = votes
            changed.append(image)
        else:
            report.already_present += 1
    FaceImage.objects.bulk_update(changed, ["ferplus_votes"])
    report.updated += len(changed)
