"""Writes for near-duplicates: start a search, the worker's part (``NEAR_DUPLICATE_RUN``), and conflicting groups
into the review queue. The search itself is ``ml.neardup``; the reads are in ``selectors.py``.

The search reads every face of every dataset split (not uploads, not faces reviewers marked "not a face"), computes
pHash bits and the active model version's pooled features outside any transaction, and records the groups in one
short transaction; its faces of groups whose labels differ are then flagged for review (``duplicate_conflict``).
"""

from __future__ import annotations

from collections import Counter

import numpy as np
from django.db import transaction

from apps.core.errors import Conflict
from apps.core.work import QUEUE_BULK, WorkKind, WorkProgress, work_run, work_send, work_still_mine
from ml import neardup

from .models import FaceImage, NearDuplicateGroup, NearDuplicateMember, NearDuplicateRun, Split
from .selectors import face_pixels

FEATURE_CHUNK = 2048  # faces per progress event while features are computed


class NoActiveModel(Conflict):
    """Features come from the active model version, and none is active."""

    code = "no_active_model"


class NearDuplicateRunBusy(Conflict):
    """A search is queued or running already."""

    code = "near_duplicate_run_busy"


def near_duplicate_run_start(*, created_by=None, thresholds: neardup.Thresholds | None = None) -> NearDuplicateRun:
    """Record a queued search with the active version and send ``faces.near_duplicates`` (queue ``bulk``) once the
    transaction commits. Refused while another search is queued or running, or when no version is active."""
    from apps.inference.selectors import model_version_active

    thresholds = thresholds or neardup.Thresholds()
    version = model_version_active()
    if version is None:
        raise NoActiveModel("no model version is active: the search compares the active version's features")
    with transaction.atomic():
        busy = (NearDuplicateRun.objects.select_for_update()
                .filter(status__in=[NearDuplicateRun.Status.QUEUED, NearDuplicateRun.Status.RUNNING]).first())
        if busy is not None:
            raise NearDuplicateRunBusy(f"near-duplicate run #{busy.pk} is {busy.status}; wait for it or cancel it")
        run = NearDuplicateRun.objects.create(model_version=version, created_by=created_by,
                                              hash_alone=thresholds.hash_alone, cosine=thresholds.cosine,
                                              hash_with_cosine=thresholds.hash_with_cosine)
        work_send(NEAR_DUPLICATE_RUN, run.pk)
    return run


def near_duplicate_run_execute(*, run_id: int) -> NearDuplicateRun | None:
    """Run a queued search here (command, tests): a failure is recorded on the row and raised."""
    return work_run(NEAR_DUPLICATE_RUN, run_id, raise_errors=True)


def near_duplicate_run_work(run: NearDuplicateRun, progress: WorkProgress) -> None:
    """The worker's part: hashes and features, pairs and groups, then one transaction that records them."""
    from apps.inference import runtime
    from ml.scoring import pooled_features

    if run.model_version is None:
        raise NoActiveModel("the run's model version was deleted")
    faces = list(FaceImage.objects.exclude(split=Split.UPLOAD).filter(excluded=False).order_by("pk")
                 .values_list("pk", "split", "current_label"))
    total = len(faces)
    progress({"stage": "pixels", "done": 0, "total": total}, force=True)
    images = face_pixels([pk for pk, _, _ in faces])
    model = runtime.loaded(run.model_version).model
    chunks = []
    for start in range(0, total, FEATURE_CHUNK):
        progress({"stage": "features", "done": start, "total": total})
        chunks.append(pooled_features(model, images[start:start + FEATURE_CHUNK]))
    progress({"stage": "hashes", "done": total, "total": total}, force=True)
    bits = neardup.perceptual_hashes(images)
    thresholds = neardup.Thresholds(hash_alone=run.hash_alone, cosine=run.cosine,
                                    hash_with_cosine=run.hash_with_cosine)
    features = np.concatenate(chunks) if chunks else np.zeros((0, 1), np.float32)
    pairs = neardup.near_duplicate_pairs(bits, features, thresholds) if total > 1 else []
    groups = neardup.groups_from_pairs(total, pairs)
    progress({"stage": "recording", "done": total, "total": total, "groups": len(groups)}, force=True)
    conflicting = _record(run, faces, pairs, groups)
    near_duplicate_conflicts_flag(run=run, groups=conflicting)


@transaction.atomic
def _record(run: NearDuplicateRun, faces: list[tuple[int, str, int | None]], pairs: list[neardup.Pair],
            groups: list[list[int]]) -> list[NearDuplicateGroup]:
    work_still_mine(NEAR_DUPLICATE_RUN, run.pk)
    group_of = {row: g for g, rows in enumerate(groups) for row in rows}
    pairs_by_group: dict[int, list] = {}
    for pair in pairs:
        pairs_by_group.setdefault(group_of[pair.a], []).append(
            [faces[pair.a][0], faces[pair.b][0], pair.hash_distance, round(pair.cosine, 4)])
    made, public_with_training = [], set()
    for g, rows in enumerate(groups):
        splits = sorted({faces[row][1] for row in rows})
        labels = {faces[row][2] for row in rows if faces[row][2] is not None}
        made.append(NearDuplicateGroup(run=run, size=len(rows), splits=splits, cross_split=len(splits) > 1,
                                       conflicting=len(labels) > 1, pairs=pairs_by_group.get(g, [])))
    NearDuplicateGroup.objects.bulk_create(made)
    NearDuplicateMember.objects.bulk_create([
        NearDuplicateMember(group=made[g], face_id=faces[row][0], split=faces[row][1], label=faces[row][2])
        for g, rows in enumerate(groups) for row in rows])
    split_of = {pk: split for pk, split, _ in faces}
    for group in made:  # a PublicTest face paired directly with a Training face
        for a, b, _, _ in group.pairs:
            if {split_of[a], split_of[b]} == {Split.TRAINING, Split.PUBLIC_TEST}:
                public_with_training.add(a if split_of[a] == Split.PUBLIC_TEST else b)
    NearDuplicateRun.objects.filter(pk=run.pk).update(
        faces_searched=len(faces), pair_count=len(pairs), group_count=len(made),
        cross_split_groups=sum(g.cross_split for g in made), conflicting_groups=sum(g.conflicting for g in made),
        public_test_with_training=len(public_with_training))
    return [g for g in made if g.conflicting]


def near_duplicate_conflicts_flag(*, run: NearDuplicateRun, groups: list[NearDuplicateGroup]) -> int:
    """Every Training face of a group whose labels differ goes to the review queue as ``duplicate_conflict``, with
    the group and the other members' labels; the closest pairs first (priority: the group's smallest hash distance /
    64). Test faces are only named: their labels measure models, and relabelling them would move every figure."""
    from apps.review.services import review_item_flag

    flagged = 0
    for group in groups:
        members = list(group.members.select_related("face"))
        priority = min((p[2] for p in group.pairs), default=neardup.HASH_BITS) / neardup.HASH_BITS
        for member in members:
            if member.split != Split.TRAINING:
                continue
            others = [{"face": m.face_id, "split": m.split, "label": m.label} for m in members if m.pk != member.pk]
            with transaction.atomic():
                review_item_flag(face=member.face, kind="duplicate_conflict", priority=priority,
                                 detail={"near_duplicate_run": run.pk, "group": group.pk, "others": others,
                                         "labels": dict(Counter(str(m.label) for m in members))})
            flagged += 1
    NearDuplicateRun.objects.filter(pk=run.pk).update(flagged=flagged)
    return flagged


NEAR_DUPLICATE_RUN = WorkKind(name="near_duplicate_run", label="near-duplicate searches", model=NearDuplicateRun,
                              task="faces.near_duplicates", queue=QUEUE_BULK, work=near_duplicate_run_work)
