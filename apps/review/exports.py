"""CSV exports of the corrected labels: Kaggle's layout (``emotion,pixels,Usage``) and the per-image history.

Both stream row by row, so a full FER-2013 export runs in constant memory.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from apps.faces.models import FaceImage, Split
from apps.faces.selectors import face_pixels

from .selectors import label_history_rows

KAGGLE_SPLITS = (Split.TRAINING, Split.PUBLIC_TEST, Split.PRIVATE_TEST)


class _Echo:
    def write(self, value: str) -> str:
        return value


CHUNK = 2000  # faces decoded at a time: constant memory, whatever the dataset's size


def kaggle_csv_rows(*, dataset: str = "fer2013") -> Iterator[str]:
    """Current labels, in source order; "not a face" (excluded) and unlabelled rows are dropped."""
    writer = csv.writer(_Echo(), lineterminator="\n")
    yield writer.writerow(["emotion", "pixels", "Usage"])
    faces = (FaceImage.objects.filter(dataset__name=dataset, split__in=KAGGLE_SPLITS, excluded=False,
                                      current_label__isnull=False)
             .order_by("source_row", "pk").values_list("pk", "current_label", "split"))
    rows = faces.iterator(chunk_size=CHUNK)
    while chunk := [row for _, row in zip(range(CHUNK), rows, strict=False)]:
        pixels = face_pixels([pk for pk, _, _ in chunk])
        for (_, label, split), image in zip(chunk, pixels, strict=True):
            yield writer.writerow([label, " ".join(map(str, image.tobytes())), split])


HISTORY_COLUMNS = ["face_id", "dataset", "source_row", "split", "original_label", "kind", "old_label", "new_label",
                   "old_excluded", "new_excluded", "actor", "votes", "at"]


def history_csv_rows() -> Iterator[str]:
    writer = csv.writer(_Echo(), lineterminator="\n")
    yield writer.writerow(HISTORY_COLUMNS)
    for entry in label_history_rows().iterator(chunk_size=2000):
        face = entry.face
        votes = ";".join(f"{v.get('reviewer')}:{v.get('choice')}" for v in entry.votes)
        yield writer.writerow([
            face.pk, face.dataset.name, "" if face.source_row is None else face.source_row, face.split,
            "" if face.original_label is None else face.original_label, entry.kind,
            "" if entry.old_label is None else entry.old_label, "" if entry.new_label is None else entry.new_label,
            int(entry.old_excluded), int(entry.new_excluded), entry.actor.get_username() if entry.actor_id else "",
            votes, entry.created_at.isoformat(),
        ])
