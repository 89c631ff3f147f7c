"""Label snapshots and the arrays a run trains and is measured on, read from the database.

A snapshot is the (face id, current label) pairs of every labelled Training face not marked "not a face", sorted
by id. It is stored on the run (compressed), so that "labels changed since the active version" is an exact count
and a resumed run trains on the labels it started with.
"""

from __future__ import annotations

import hashlib
import zlib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
from django.db.models import F

from apps.faces.labels import FERPLUS_COLUMNS, FERPLUS_INDEX
from apps.faces.models import FaceImage, Split
from apps.faces.selectors import face_pixels, training_faces_labelled
from apps.inference.models import ModelVersion
from ml.labels import CLASSES, NUM_CLASSES

assert len(CLASSES) == NUM_CLASSES == 7  # noqa: S101
MIN_REVIEWER_VOTES = 2  # one reviewer's vote is not a distribution


@dataclass(frozen=True)
class LabelSnapshot:
    face_ids: np.ndarray  # int64, sorted
    labels: np.ndarray  # int64, same order

    def __len__(self) -> int:
        return len(self.face_ids)

    @property
    def fingerprint(self) -> str:
        digest = hashlib.sha256()
        for face_id, label in zip(self.face_ids.tolist(), self.labels.tolist(), strict=True):
            digest.update(f"{face_id}:{label}\n".encode())
        return digest.hexdigest()

    def encode(self) -> bytes:
        return zlib.compress(self.face_ids.astype("<i8").tobytes() + self.labels.astype("<i8").tobytes())

    @classmethod
    def decode(cls, data: bytes | memoryview) -> LabelSnapshot:
        raw = np.frombuffer(zlib.decompress(bytes(data)), dtype="<i8")
        half = len(raw) // 2
        return cls(raw[:half].astype(np.int64), raw[half:].astype(np.int64))

    def changed_against(self, other: LabelSnapshot) -> int:
        """Faces whose label differs, plus faces in only one of the two snapshots."""
        mine = dict(zip(self.face_ids.tolist(), self.labels.tolist(), strict=True))
        theirs = dict(zip(other.face_ids.tolist(), other.labels.tolist(), strict=True))
        differing = sum(1 for face_id, label in mine.items() if theirs.get(face_id, -1) != label)
        return differing + len(theirs.keys() - mine.keys())


def label_snapshot_current() -> LabelSnapshot:
    rows = np.array(list(training_faces_labelled().order_by("pk").values_list("pk", "current_label")), dtype=np.int64)
    rows = rows.reshape(-1, 2)
    return LabelSnapshot(rows[:, 0].copy(), rows[:, 1].copy())


def label_snapshot_of(version: ModelVersion | None) -> LabelSnapshot | None:
    """The snapshot a version was trained on, when a training run produced it."""
    if version is None:
        return None
    data = (version.training_runs.filter(snapshot_labels__isnull=False).order_by("-pk")
            .values_list("snapshot_labels", flat=True).first())
    return LabelSnapshot.decode(data) if data is not None else None


def labels_changed_since(version: ModelVersion | None, current: LabelSnapshot | None = None) -> int:
    """Labels changed since ``version``'s snapshot. A version no run produced (the shipped default, an uploaded
    checkpoint) was trained on the original labels: count the Training faces reviewers changed or excluded."""
    snapshot = label_snapshot_of(version)
    if snapshot is None:
        faces = FaceImage.objects.filter(split=Split.TRAINING, original_label__isnull=False)
        return faces.exclude(current_label=F("original_label"), excluded=False).count()
    return (current or label_snapshot_current()).changed_against(snapshot)


def vote_distributions(snapshot: LabelSnapshot) -> tuple[np.ndarray, int]:
    """(N, 7) float32 target distributions and how many faces have real votes behind them.

    Per face, in order: the current round's reviewer votes (two or more, emotions only); a one-hot of the current
    label when reviewers changed it (their decision beats older crowd votes); FER+ votes over the seven emotions;
    otherwise a one-hot of the label.
    """
    from apps.review.models import Vote

    ids = snapshot.face_ids.tolist()
    index = {face_id: i for i, face_id in enumerate(ids)}
    dist = np.zeros((len(ids), NUM_CLASSES), dtype=np.float32)
    dist[np.arange(len(ids)), snapshot.labels] = 1.0
    with_votes = np.zeros(len(ids), dtype=bool)

    reviewer: dict[int, np.ndarray] = defaultdict(lambda: np.zeros(NUM_CLASSES, dtype=np.float32))
    votes = Vote.objects.filter(item__face_id__in=ids, choice__lt=NUM_CLASSES, round=F("item__round"))
    for face_id, choice in votes.values_list("item__face_id", "choice"):
        reviewer[face_id][choice] += 1
    changed = set(FaceImage.objects.filter(pk__in=ids).exclude(current_label=F("original_label"))
                  .values_list("pk", flat=True))
    ferplus = FaceImage.objects.filter(pk__in=ids, ferplus_votes__isnull=False).values_list("pk", "ferplus_votes")
    for face_id, raw in ferplus:
        if face_id in changed or not isinstance(raw, list) or len(raw) != len(FERPLUS_COLUMNS):
            continue
        counts = np.zeros(NUM_CLASSES, dtype=np.float32)
        for column, cls in FERPLUS_INDEX:
            counts[cls] = float(raw[column] or 0)
        if counts.sum() > 0:
            dist[index[face_id]] = counts / counts.sum()
            with_votes[index[face_id]] = True
    for face_id, counts in reviewer.items():
        if counts.sum() >= MIN_REVIEWER_VOTES:
            dist[index[face_id]] = counts / counts.sum()
            with_votes[index[face_id]] = True
    return dist, int(with_votes.sum())


@dataclass(frozen=True)
class TestSet:
    """PublicTest faces with both their current (corrected) and original labels."""

    face_ids: np.ndarray
    images: np.ndarray
    current: np.ndarray
    original: np.ndarray

    def __len__(self) -> int:
        return len(self.face_ids)


def public_test_set() -> TestSet:
    rows = list(FaceImage.objects.filter(split=Split.PUBLIC_TEST, excluded=False, current_label__isnull=False,
                                         original_label__isnull=False)
                .order_by("pk").values_list("pk", "current_label", "original_label"))
    ids = [r[0] for r in rows]
    return TestSet(np.array(ids, dtype=np.int64), face_pixels(ids), np.array([r[1] for r in rows], dtype=np.int64),
                   np.array([r[2] for r in rows], dtype=np.int64))
