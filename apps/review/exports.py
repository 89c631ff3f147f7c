"""CSV exports of the corrected labels: Kaggle's layout (``emotion,pixels,Usage``) and the per-image history.

Both stream row by row, so a full FER-2013 export runs in constant memory. The views pass in what the caller may
see (the splits, or the faces, of ``apps.faces.selectors``), and the history comes blind (``selectors.BlindReview``).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence

from apps.faces.models import FaceImage, Split
from apps.faces.selectors import face_pixels

from .selectors import HistoryEntry

KAGGLE_SPLITS = (Split.TRAINING, Split.PUBLIC_TEST, Split.PRIVATE_TEST)

# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection). Only cells that can carry
# a user-controlled string (usernames, dataset names, the votes string) are escaped, with a leading "'"; numeric
# cells are never touched, because they are data: the Kaggle ``pixels`` column and labels must import back with
# ``import_fer2013`` as they are, and a negative number would otherwise turn into text.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def text_cell(value: str) -> str:
    return f"'{value}" if value.startswith(FORMULA_STARTS) else value


class _Echo:
    def write(self, value: str) -> str:
        return value


CHUNK = 2000  # faces decoded at a time: constant memory, whatever the dataset's size


def kaggle_csv_rows(*, dataset: str = "fer2013", splits: Sequence[str]) -> Iterator[str]:
    """Current labels of ``splits`` (those the caller may see), in source order; "not a face" (excluded) and
    unlabelled rows are dropped."""
    writer = csv.writer(_Echo(), lineterminator="\n")
    yield writer.writerow(["emotion", "pixels", "Usage"])
    splits = [s for s in KAGGLE_SPLITS if s in splits]
    faces = (FaceImage.objects.filter(dataset__name=dataset, split__in=splits, excluded=False,
                                      current_label__isnull=False)
             .order_by("source_row", "pk").values_list("pk", "current_label", "split"))
    rows = faces.iterator(chunk_size=CHUNK)
    while chunk := [row for _, row in zip(range(CHUNK), rows, strict=False)]:
        pixels = face_pixels([pk for pk, _, _ in chunk])
        for (_, label, split), image in zip(chunk, pixels, strict=True):
            # Usage is one of KAGGLE_SPLITS, never user text; escaped anyway, as the one text column (a no-op).
            yield writer.writerow([label, " ".join(map(str, image.tobytes())), text_cell(split)])


HISTORY_COLUMNS = ["face_id", "dataset", "source_row", "split", "original_label", "kind", "old_label", "new_label",
                   "old_excluded", "new_excluded", "actor", "votes", "at"]


def _blank(value) -> str | int:
    return "" if value is None else value


def history_csv_rows(entries: Iterable[tuple[FaceImage, HistoryEntry]]) -> Iterator[str]:
    """One row per entry of ``selectors.label_history_for``; ``votes`` is empty where they are hidden."""
    writer = csv.writer(_Echo(), lineterminator="\n")
    yield writer.writerow(HISTORY_COLUMNS)
    for face, entry in entries:
        votes = ";".join(f"{v.get('reviewer')}:{v.get('choice')}" for v in entry.votes or [])
        yield writer.writerow([
            face.pk, text_cell(face.dataset.name), _blank(face.source_row), text_cell(face.split),
            _blank(face.original_label), text_cell(entry.kind), _blank(entry.old_label), _blank(entry.new_label),
            int(entry.old_excluded), int(entry.new_excluded), text_cell(entry.actor), text_cell(votes),
            entry.created_at.isoformat(),
        ])
