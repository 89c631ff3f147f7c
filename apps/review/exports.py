"""CSV exports of the corrected labels: Kaggle's layout (``emotion,pixels,Usage``), FER+'s vote layout
(``fer2013new.csv``), the per-image history, and the operator's full export of every label, vote and review item.

All stream row by row, so a full FER-2013 export runs in constant memory. The views pass in what the caller may
see (the splits, or the faces, of ``apps.faces.selectors``), and votes come blind (``selectors.BlindReview``). The
operator's export (``labels_export_write``, ``manage.py export_labels``) is for whoever runs the stack: every face,
every vote and the queue in its order (gold items marked), nothing hidden.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from apps.faces.labels import FERPLUS_COLUMNS
from apps.faces.models import FaceImage, Split
from apps.faces.selectors import face_pixels
from ml.files import atomic_open

from .choices import choice_name
from .ferplus import ferplus_counts, ferplus_not_a_face, reviewer_votes_as_ferplus
from .models import ReviewItem, Vote
from .selectors import BlindReview, HistoryEntry

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


def exported_faces(*, dataset: str, splits: Sequence[str]) -> QuerySet[FaceImage]:
    """The faces both layouts export, in their order: the caller's ``splits`` of ``dataset`` in source order, "not a
    face" (excluded) and unlabelled rows dropped. One query for both, so that the two files line up row for row."""
    splits = [s for s in KAGGLE_SPLITS if s in splits]
    return (FaceImage.objects.filter(dataset__name=dataset, split__in=splits, excluded=False,
                                     current_label__isnull=False)
            .order_by("source_row", "pk"))


def kaggle_csv_rows(*, dataset: str = "fer2013", splits: Sequence[str]) -> Iterator[str]:
    """Current labels of ``splits`` (those the caller may see), in source order; "not a face" (excluded) and
    unlabelled rows are dropped."""
    writer = csv.writer(_Echo(), lineterminator="\n")
    yield writer.writerow(["emotion", "pixels", "Usage"])
    faces = exported_faces(dataset=dataset, splits=splits).values_list("pk", "current_label", "split")
    rows = faces.iterator(chunk_size=CHUNK)
    while chunk := [row for _, row in zip(range(CHUNK), rows, strict=False)]:
        pixels = face_pixels([pk for pk, _, _ in chunk])
        for (_, label, split), image in zip(chunk, pixels, strict=True):
            # Usage is one of KAGGLE_SPLITS, never user text; escaped anyway, as the one text column (a no-op).
            yield writer.writerow([label, " ".join(map(str, image.tobytes())), text_cell(split)])


FERPLUS_HEADER = ["Usage", "Image name", *FERPLUS_COLUMNS]


def ferplus_csv_rows(*, dataset: str = "fer2013", splits: Sequence[str], blind: BlindReview) -> Iterator[str]:
    """FER+'s ``fer2013new.csv`` layout for the rows of ``kaggle_csv_rows`` (same dataset, same splits), row for row.

    FER+ files have no key: row N of fer2013new.csv belongs to row N of fer2013.csv, and ``import_ferplus`` matches
    by row order. So this export keeps exactly the Kaggle export's rows (``exported_faces``): the pair is a corrected
    fer2013.csv with its fer2013new.csv, and imports back into a fresh dataset (``import_fer2013`` on the Kaggle
    file, then ``import_ferplus`` on this one). Faces the caller may not see are in neither file, so nothing hidden
    needs a placeholder row; "not a face" faces are dropped from both, as the Kaggle export does.

    Per row: the imported FER+ counts (zeros when the face has none), plus each vote of the face's review item's
    current round that ``blind`` shows the caller (admins: all; others: rounds they voted in), an emotion in its
    column and "not a face" in NF ("unsure" adds nothing). ``Image name`` follows FER+: rows FER+ takes for "not a
    face" have an empty name and the others are numbered in order (``fer0000000.png``, ...) skipping the unnamed
    ones, so a name is not the row index; here a row is unnamed when NF holds at least half its votes
    (``ferplus.ferplus_not_a_face``).
    """
    writer = csv.writer(_Echo(), lineterminator="\n")
    yield writer.writerow(FERPLUS_HEADER)
    faces = exported_faces(dataset=dataset, splits=splits)
    reviewer_votes = reviewer_votes_as_ferplus(faces=faces, blind=blind)
    named = 0
    for pk, split, raw in faces.values_list("pk", "split", "ferplus_votes").iterator(chunk_size=CHUNK):
        counts = ferplus_counts(raw) or [0] * len(FERPLUS_COLUMNS)
        for column, n in enumerate(reviewer_votes.get(pk, ())):
            counts[column] += n
        name = ""
        if not ferplus_not_a_face(counts):
            name, named = f"fer{named:07d}.png", named + 1
        # Usage is one of KAGGLE_SPLITS and the name is ours, never user text; escaped as in kaggle_csv_rows.
        yield writer.writerow([text_cell(split), name, *counts])


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


LABELS_COLUMNS = ["face_id", "dataset", "split", "source_row", "source_name", "sha256", "original_label",
                  "current_label", "excluded"]


def labels_csv_rows() -> Iterator[str]:
    """One row per face of every dataset and split, "not a face" and unlabelled faces included (operator side)."""
    writer = csv.writer(_Echo(), lineterminator="\n")
    yield writer.writerow(LABELS_COLUMNS)
    faces = (FaceImage.objects.order_by("dataset__name", "source_row", "pk")
             .values_list("pk", "dataset__name", "split", "source_row", "source_name", "pixels_id", "original_label",
                          "current_label", "excluded"))
    for pk, dataset, split, row, name, sha256, original, current, excluded in faces.iterator(chunk_size=CHUNK):
        yield writer.writerow([pk, text_cell(dataset), text_cell(split), _blank(row), text_cell(name), sha256,
                               _blank(original), _blank(current), int(excluded)])


VOTES_COLUMNS = ["vote_id", "face_id", "dataset", "source_row", "item_id", "round", "item_round", "gold",
                 "reviewer_id", "reviewer", "choice", "choice_name", "created_at"]


def votes_csv_rows() -> Iterator[str]:
    """One row per vote of every round (operator side: nothing blind). ``round`` is the vote's, ``item_round`` the
    item's current one, so votes of reopened rounds can be told apart; votes on gold items never changed a label."""
    writer = csv.writer(_Echo(), lineterminator="\n")
    yield writer.writerow(VOTES_COLUMNS)
    votes = (Vote.objects.order_by("item__face__dataset__name", "item__face__source_row", "item__face_id", "round",
                                   "created_at", "pk")
             .values_list("pk", "item__face_id", "item__face__dataset__name", "item__face__source_row", "item_id",
                          "round", "item__round", "item__is_gold", "reviewer_id",
                          f"reviewer__{get_user_model().USERNAME_FIELD}", "choice", "created_at"))
    for (pk, face, dataset, row, item, round_, item_round, gold, reviewer_id, reviewer, choice,
         at) in votes.iterator(chunk_size=CHUNK):
        yield writer.writerow([pk, face, text_cell(dataset), _blank(row), item, round_, item_round, int(gold),
                               reviewer_id, text_cell(reviewer), choice, choice_name(choice), at.isoformat()])


QUEUE_COLUMNS = ["position", "item_id", "face_id", "dataset", "split", "source_row", "original_label",
                 "current_label", "suggested_label", "suggested_probability", "priority", "status", "gold",
                 "settled_label"]


def queue_csv_rows() -> Iterator[str]:
    """Every review item, settled ones included, in the order the queue serves it: ascending priority, then id
    (``services.review_item_next_for``; gold items take their place by their own priority). ``position`` counts from
    1. Settling never moves an item; a scoring run or a queue fit re-ranks the open ones."""
    writer = csv.writer(_Echo(), lineterminator="\n")
    yield writer.writerow(QUEUE_COLUMNS)
    items = (ReviewItem.objects.order_by("priority", "pk")
             .values_list("pk", "face_id", "face__dataset__name", "face__split", "face__source_row",
                          "face__original_label", "face__current_label", "suggested_label", "suggested_probability",
                          "priority", "status", "is_gold", "settled_label"))
    for position, (pk, face, dataset, split, row, original, current, suggested, probability, priority, status, gold,
                   settled) in enumerate(items.iterator(chunk_size=CHUNK), start=1):
        yield writer.writerow([position, pk, face, text_cell(dataset), text_cell(split), _blank(row),
                               _blank(original), _blank(current), _blank(suggested), _blank(probability), priority,
                               status, int(gold), _blank(settled)])


@dataclass(frozen=True)
class LabelsExport:
    labels_path: Path
    labels: int
    votes_path: Path
    votes: int
    queue_path: Path
    queue: int


def _write_rows(path: Path, rows: Iterator[str]) -> int:
    """Write a CSV whole or not at all; the number of data rows (the header not counted)."""
    lines = -1
    with atomic_open(path, what="a labels export", mode=0o644) as fh:
        for line in rows:
            fh.write(line.encode())
            lines += 1
    return lines


def queue_export_write(*, path: Path) -> int:
    """Write ``queue.csv`` alone (``queue_csv_rows``) to ``path``; the number of items."""
    return _write_rows(Path(path), queue_csv_rows())


def labels_export_write(*, directory: Path) -> LabelsExport:
    """Write ``labels.csv`` (every face), ``votes.csv`` (every vote) and ``queue.csv`` (every review item in the
    queue's order) into ``directory``."""
    directory = Path(directory)
    labels_path, votes_path, queue_path = directory / "labels.csv", directory / "votes.csv", directory / "queue.csv"
    labels = _write_rows(labels_path, labels_csv_rows())
    votes = _write_rows(votes_path, votes_csv_rows())
    queue = queue_export_write(path=queue_path)
    return LabelsExport(labels_path=labels_path, labels=labels, votes_path=votes_path, votes=votes,
                        queue_path=queue_path, queue=queue)
