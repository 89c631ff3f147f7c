"""Scoring runs: Training faces from the database -> ``ml.score_labels`` -> label scores and review items.

The slow part (k-fold cross-fitting) runs outside any transaction and keeps finished folds under
``REVIEW_SCORING_DIR/run-<id>``, so a crashed run executed again resumes at the fold it was in. The results
are then written in one short transaction.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.utils import timezone

from apps.core.errors import InvalidInput
from apps.core.work import work_claim, work_fail, work_heartbeat, work_release, work_send
from apps.faces.selectors import face_pixels, training_faces_labelled

from .kinds import SCORING_RUN
from .models import LabelScore, ReviewItem, ScoringRun

logger = logging.getLogger(__name__)
ProgressCallback = Callable[[dict], None]

EPOCHS_MAX = 200  # per fold; the shipped recipe trains 12
SEED_MAX = 2**31 - 1  # ScoringRun.seed is a signed 32-bit column, and numpy seeds are unsigned: 0..2**31-1 fits both


class ScoringRunError(InvalidInput):
    """A scoring run that cannot be created or executed; the message says why."""

    code = "scoring_run_invalid"


def scoring_run_create(*, folds: int = 4, epochs: int | None = None, ranking: str = "self_confidence",
                       filter_by: str = "prune_by_noise_rate", seed: int = 0, recipe_overrides: dict | None = None,
                       created_by=None) -> ScoringRun:
    from ml.scoring import FILTER_METHODS, RANKING_METHODS

    if folds < 2:
        raise ScoringRunError("folds must be at least 2")
    if epochs is not None and not 1 <= epochs <= EPOCHS_MAX:
        raise ScoringRunError(f"epochs must be 1-{EPOCHS_MAX}")
    if not 0 <= seed <= SEED_MAX:
        raise ScoringRunError(f"seed must be 0-{SEED_MAX}")
    if ranking not in RANKING_METHODS:
        raise ScoringRunError(f"unknown ranking {ranking!r}; available: {', '.join(RANKING_METHODS)}")
    if filter_by not in FILTER_METHODS:
        raise ScoringRunError(f"unknown filter {filter_by!r}; available: {', '.join(FILTER_METHODS)}")
    if recipe_overrides is not None:
        from ml.recipes import apply_overrides, get_recipe

        try:
            apply_overrides(get_recipe("scoring"), recipe_overrides)
        except ValueError as exc:
            raise ScoringRunError(f"recipe_overrides: {exc}") from None
    return ScoringRun.objects.create(folds=folds, epochs=epochs, ranking=ranking, filter_by=filter_by, seed=seed,
                                     recipe_overrides=recipe_overrides or {}, created_by=created_by)


def scoring_run_enqueue(**kwargs) -> ScoringRun:
    """Create a run and send ``review.score_labels`` (queue ``bulk``) once the row is committed."""
    with transaction.atomic():
        run = scoring_run_create(**kwargs)
        work_send(SCORING_RUN, run.pk)
    return run


def training_faces() -> tuple[list[int], np.ndarray, np.ndarray]:
    """Face ids, uint8 (N, 48, 48) pixels and current labels of every labelled Training face, by id."""
    rows = list(training_faces_labelled().order_by("pk").values_list("pk", "current_label"))
    ids = [r[0] for r in rows]
    return ids, face_pixels(ids), np.array([r[1] for r in rows], dtype=np.int64)


def scoring_run_fail(*, run_id: int, error: str) -> bool:
    return work_fail(SCORING_RUN, run_id, error, from_statuses=(ScoringRun.Status.QUEUED, ScoringRun.Status.RUNNING))


def _progress_recorder(run_id: int, echo: ProgressCallback | None) -> ProgressCallback:
    last = [0.0]

    def record(event: dict) -> None:
        if echo:
            echo(event)
        now = time.monotonic()
        if event.get("kind") == "fold" or now - last[0] > 2:  # at most one row update per 2 s, plus every fold
            last[0] = now
            clean = {k: (float(v) if isinstance(v, np.floating) else v) for k, v in event.items()
                     if isinstance(v, (int, float, str, bool, np.floating))}
            ScoringRun.objects.filter(pk=run_id).update(progress=clean)

    return record


class ScoringRunNotClaimed(ScoringRunError):
    """Another delivery has the run, or it is finished: nothing to do."""


def scoring_run_execute(run_id: int, *, progress: ProgressCallback | None = None,
                        from_statuses: tuple[str, ...] = (ScoringRun.Status.QUEUED, ScoringRun.Status.FAILED),
                        release_transient: bool = False) -> ScoringRun:
    """Run a queued (or failed) scoring run to the end, resuming from its finished folds. Failures are recorded on
    the run and re-raised; with ``release_transient`` (the task) a database error puts it back to queued instead."""
    # Conditional update: of two deliveries of the same run, one gets it.
    if not work_claim(SCORING_RUN, run_id, from_statuses=from_statuses, started_at=timezone.now(),
                      finished_at=None):
        run = ScoringRun.objects.get(pk=run_id)
        raise ScoringRunNotClaimed(f"scoring run {run_id} is {run.status}; only "
                                   f"{' or '.join(from_statuses)} runs execute")
    run = ScoringRun.objects.get(pk=run_id)
    work_dir = Path(settings.REVIEW_SCORING_DIR) / f"run-{run.pk}"
    try:
        with work_heartbeat(SCORING_RUN, run.pk):
            scores = _score(run, work_dir, _progress_recorder(run.pk, progress))
        with transaction.atomic():
            created, updated = _record(run, scores)
            ScoringRun.objects.filter(pk=run.pk).update(
                status=ScoringRun.Status.SUCCEEDED, finished_at=timezone.now(), error="", scored_count=len(scores.rows),
                issue_count=int(scores.is_issue.sum()), items_created=created, items_updated=updated,
            )
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if release_transient and isinstance(exc, (OperationalError, InterfaceError)) and \
                work_release(SCORING_RUN, run.pk, error, countdown=10) == ScoringRun.Status.QUEUED:
            return ScoringRun.objects.get(pk=run.pk)  # resumes from its finished folds
        logger.exception("scoring run %s failed", run.pk)
        scoring_run_fail(run_id=run.pk, error=error)
        raise
    shutil.rmtree(work_dir, ignore_errors=True)  # finished: nothing left to resume
    run.refresh_from_db()
    return run


def _score(run: ScoringRun, work_dir: Path, progress: ProgressCallback):
    from ml.data import FaceArrays
    from ml.recipes import apply_overrides, get_recipe
    from ml.scoring import score_labels

    face_ids, images, labels = training_faces()
    if len(face_ids) < 2 * run.folds:
        raise ScoringRunError(f"{len(face_ids)} labelled Training faces: too few for {run.folds} folds")
    data = FaceArrays.from_arrays(images, labels)
    data.rows = np.asarray(face_ids, dtype=np.int64)  # scores come back keyed by face id
    recipe = apply_overrides(get_recipe("scoring"), run.recipe_overrides or {})
    return score_labels(data, folds=run.folds, recipe=recipe, epochs=run.epochs, seed=run.seed, work_dir=work_dir,
                        ranking=run.ranking, filter_by=run.filter_by, progress=progress)


def _record(run: ScoringRun, scores) -> tuple[int, int]:
    """Store every score; create items for newly flagged faces; refresh the score of faces that have an item.

    Items are keyed by face, so a re-run never duplicates them, and votes hang off the item, so none are lost.
    """
    LabelScore.objects.bulk_create([
        LabelScore(run=run, face_id=int(scores.rows[i]), given_label=int(scores.given[i]),
                   quality=float(scores.quality[i]), is_issue=bool(scores.is_issue[i]),
                   suggested_label=int(scores.suggested[i]),
                   suggested_probability=float(scores.suggested_probability[i]),
                   probabilities=[round(float(p), 5) for p in scores.probabilities[i]])
        for i in range(len(scores.rows))
    ], batch_size=2000)
    by_face = dict(LabelScore.objects.filter(run=run).values_list("face_id", "pk"))
    index = {int(face): i for i, face in enumerate(scores.rows)}
    existing = {item.face_id: item for item in ReviewItem.objects.select_for_update().filter(face_id__in=index)}
    to_update, to_create = [], []
    now = timezone.now()
    for face_id, item in existing.items():
        i = index[face_id]
        item.score_id = by_face[face_id]
        item.priority = float(scores.quality[i])
        item.suggested_label = int(scores.suggested[i])
        item.suggested_probability = float(scores.suggested_probability[i])
        item.updated_at = now  # bulk_update skips auto_now
        to_update.append(item)
    for i in np.flatnonzero(scores.is_issue):
        face_id = int(scores.rows[i])
        if face_id in existing:
            continue
        to_create.append(ReviewItem(face_id=face_id, score_id=by_face[face_id], priority=float(scores.quality[i]),
                                    suggested_label=int(scores.suggested[i]),
                                    suggested_probability=float(scores.suggested_probability[i])))
    ReviewItem.objects.bulk_update(to_update, ["score", "priority", "suggested_label", "suggested_probability",
                                               "updated_at"], batch_size=2000)
    ReviewItem.objects.bulk_create(to_create, batch_size=2000, ignore_conflicts=True)
    return len(to_create), len(to_update)
