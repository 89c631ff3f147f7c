"""FER+ crowd votes (``FaceImage.ferplus_votes``) set against this platform's labels, scoring runs and models.

Votes are the 10 counts of ``apps.faces.labels.FERPLUS_COLUMNS``. The seven emotion columns map to classes through
``apps.faces.labels.FERPLUS_INDEX`` (the one mapping); contempt and unknown have no FER-2013 class, NF is
"not a face". Everything here only reads: a scoring run stores ``scoring_ferplus_report``'s dict when it ends.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from django.db.models import QuerySet
from sklearn.metrics import average_precision_score

from apps.faces.labels import FERPLUS_COLUMNS, FERPLUS_INDEX
from apps.faces.models import FaceImage, Split
from apps.inference.models import ModelVersion, Prediction

from .choices import NOT_A_FACE
from .models import LabelScore, ReviewItem, ScoringRun
from .selectors import BlindReview

NF_COLUMN = FERPLUS_COLUMNS.index("NF")
CLASS_OF_COLUMN: dict[int, int] = dict(FERPLUS_INDEX)
# A reviewer's choice as a FER+ vote: an emotion to its column, "not a face" to NF ("unsure" is no vote).
COLUMN_OF_CHOICE: dict[int, int] = {cls: column for column, cls in FERPLUS_INDEX} | {NOT_A_FACE: NF_COLUMN}

VOTERS = 10  # FER+ asked 10 taggers per image; the thresholds below are out of 10
OTHER_EMOTION_VOTES = 6
NOT_A_FACE_VOTES = 5
PRECISION_AT = (100, 500, 1000)


def ferplus_counts(raw: object) -> list[int] | None:
    """The 10 counts of a stored ``ferplus_votes`` value; None when it holds no votes (missing, malformed, all 0)."""
    if not isinstance(raw, list) or len(raw) != len(FERPLUS_COLUMNS):
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in raw):
        return None
    return list(raw) if sum(raw) > 0 else None


def _at_least(count: int, of_ten: int, total: int) -> bool:
    # A row whose counts do not sum to 10 gets the threshold scaled to its total: count / total >= of_ten / 10.
    return count * VOTERS >= of_ten * total


def ferplus_not_a_face(votes: Sequence[int]) -> bool:
    """NF holds at least 5 of 10 votes (scaled to the row's total)."""
    total = sum(votes)
    return total > 0 and _at_least(votes[NF_COLUMN], NOT_A_FACE_VOTES, total)


def ferplus_disagrees(votes: Sequence[int], label: int) -> bool:
    """Whether FER+'s crowd contradicts ``label`` (a class of ``ml.labels.CLASSES``): another of the seven emotions
    than ``label`` holds at least 6 of 10 votes, or NF ("not a face") at least 5.

    ``votes`` are the 10 raw counts in ``FERPLUS_COLUMNS`` order. Rows that do not sum to 10 are judged on shares:
    the thresholds are scaled to the row's total (6/10 and 5/10 of it); a row without votes never disagrees.
    "Another emotion" is one of the seven FER-2013 classes: contempt and unknown have no class, so however many
    votes they get they do not contradict the label (they only dilute the others' shares).
    """
    total = sum(votes)
    if total <= 0:
        return False
    if _at_least(votes[NF_COLUMN], NOT_A_FACE_VOTES, total):
        return True
    return any(cls != label and _at_least(votes[column], OTHER_EMOTION_VOTES, total) for column, cls in FERPLUS_INDEX)


def ferplus_majority(votes: Sequence[int]) -> int | None:
    """The class of the column with strictly the most votes of all 10; None when that column is contempt, unknown or
    NF, when the top is shared (a tie), or when there are no votes."""
    top = max(votes, default=0)
    if top <= 0 or list(votes).count(top) > 1:
        return None
    return CLASS_OF_COLUMN.get(list(votes).index(top))


def scoring_ferplus_report(*, run: ScoringRun) -> dict | None:
    """How well ``run``'s ranking finds the faces FER+ contradicts (``ferplus_disagrees`` with the scored label).

    Over the run's scores whose face has FER+ votes, ranked by quality ascending (face id breaks ties): precision at
    100, 500 and 1000 (None when fewer faces), average precision with score = -quality (None when no face
    disagrees), the number of faces with votes, how many disagree and their share (what a random order's precision
    would be). None when no scored face has votes.
    """
    rows = (LabelScore.objects.filter(run=run, face__ferplus_votes__isnull=False).order_by("quality", "face_id")
            .values_list("quality", "given_label", "face__ferplus_votes"))
    quality: list[float] = []
    disagrees: list[bool] = []
    for q, label, raw in rows.iterator(chunk_size=2000):
        counts = ferplus_counts(raw)
        if counts is not None:
            quality.append(q)
            disagrees.append(ferplus_disagrees(counts, label))
    if not quality:
        return None
    flags = np.array(disagrees, dtype=bool)
    n, hits = len(flags), int(flags.sum())
    report: dict = {"faces_with_votes": n, "disagreeing": hits, "disagreeing_share": hits / n}
    for k in PRECISION_AT:
        report[f"precision_at_{k}"] = float(flags[:k].mean()) if n >= k else None
    report["average_precision"] = (float(average_precision_score(flags, -np.array(quality, dtype=np.float64)))
                                   if hits else None)
    return report


def ferplus_majority_accuracy(*, version: ModelVersion, split: str = Split.PUBLIC_TEST) -> dict | None:
    """Accuracy of ``version``'s stored predictions on ``split`` against the FER+ majority (``ferplus_majority``).

    Faces reviewers marked "not a face" are not counted. ``n``: predicted faces with a majority emotion (what the
    accuracy is over); ``left_out``: predicted faces with votes but no majority emotion (tied, or contempt, unknown
    or NF on top); ``faces``: faces of the split with votes. ``accuracy`` is None when ``n`` is 0. None when no
    face of the split has FER+ votes (none imported: ``manage.py import_ferplus``).
    """
    faces = FaceImage.objects.filter(split=split, excluded=False, ferplus_votes__isnull=False)
    with_votes = faces.count()
    if not with_votes:
        return None
    correct = scored = left_out = 0
    rows = Prediction.objects.filter(model_version=version, face__in=faces).values_list("predicted_label",
                                                                                         "face__ferplus_votes")
    for predicted, raw in rows.iterator(chunk_size=2000):
        counts = ferplus_counts(raw)
        majority = None if counts is None else ferplus_majority(counts)
        if majority is None:
            left_out += 1
        else:
            scored += 1
            correct += int(predicted == majority)
    return {"split": split, "accuracy": correct / scored if scored else None, "n": scored, "left_out": left_out,
            "faces": with_votes}


def reviewer_votes_as_ferplus(*, faces: QuerySet[FaceImage], blind: BlindReview) -> dict[int, list[int]]:
    """Per face id, the current round's reviewer votes that ``blind`` lets its caller see, as 10 FER+ counts
    (``COLUMN_OF_CHOICE``). Faces without such votes are absent."""
    added: dict[int, list[int]] = {}
    for item in ReviewItem.objects.filter(face__in=faces).prefetch_related("votes"):
        for vote in blind.current_votes(item) or []:
            column = COLUMN_OF_CHOICE.get(vote.choice)
            if column is not None:
                added.setdefault(item.face_id, [0] * len(FERPLUS_COLUMNS))[column] += 1
    return added
