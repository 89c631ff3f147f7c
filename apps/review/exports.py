"""CSV exports of the corrected labels: Kaggle's layout (``emotion,pixels,Usage``) and the per-image history.

Both stream row by row, so a full FER-2013 export runs in constant memory.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator

from PIL import Image

from apps.faces.models import FaceImage, FacePixels, Split

from .selectors import label_history_rows

KAGGLE_SPLITS = (Split.TRAINING, Split.PUBLIC_TEST, Split.PRIVATE_TEST)


class _Echo:
    def write(self, value: str) -> str:
        return value


def _pixels_text(name: str, storage) -> str:
    with storage.open(name, "rb") as fh, Image.open(fh) as image:
        return " ".join(map(str, image.convert("L").tobytes()))


def kaggle_csv_rows(*, dataset: str = "fer2013") -> Iterator[str]:
    """Current labels, in source order; "not a face" (excluded) and unlabelled rows are dropped."""
    writer = csv.writer(_Echo(), lineterminator="\n")
    yield writer.writerow(["emotion", "pixels", "Usage"])
    storage = FacePixels._meta.get_field("png").storage
    faces = (FaceImage.objects.filter(dataset__name=dataset, split__in=KAGGLE_SPLITS, excluded=False,
                                      current_label__isnull=False)
             .order_by("source_row", "pk").values_list("current_label", "pixels__png", "split"))
    for label, png, split in faces.iterator(chunk_size=2000):
        yield writer.writerow([label, _pixels_text(png, storage), split])


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
