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
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from apps.core.errors import Conflict, InvalidInput
from apps.core.work import (
    QUEUE_BULK,
    WorkKind,
    WorkProgress,
    WorkStatus,
    plain_event,
    task_send_after_commit,
    work_cancel,
    work_requeue,
    work_run,
    work_send,
    work_still_mine,
)
from apps.faces.selectors import face_pixels, training_faces_labelled
from apps.inference.selectors import model_version_active
from ml.scoring import DEFAULT_RANKING, SHORT_RUN_ACTIVE_WEIGHT

from .ferplus import scoring_ferplus_report
from .learning import review_queue_rerank
from .models import LabelHistory, LabelScore, ReviewItem, ScoringRun, Skip, Vote, VoteUndo

logger = logging.getLogger(__name__)
ProgressCallback = Callable[[dict], None]
OVERLAYS_PRECOMPUTE_TASK = "review.overlays_precompute"  # a hint: apps/review/tasks.py

EPOCHS_MAX = 200  # per fold; the shipped recipe trains 12
OUTLIERS_MAX = 5000  # outlier items one run may flag
SEED_MAX = 2**31 - 1  # ScoringRun.seed is a signed 32-bit column, and numpy seeds are unsigned: 0..2**31-1 fits both


class ScoringRunError(InvalidInput):
    """A scoring run that cannot be created or executed; the message says why."""

    code = "scoring_run_invalid"


class ScoringRunStateError(Conflict):
    """The run is not in a state that allows this (cancel a finished run, resume a running one)."""

    code = "scoring_run_state"


def scoring_run_create(*, method: str = ScoringRun.Method.OUT_OF_FOLD, folds: int = 4, epochs: int | None = None,
                       ranking: str = DEFAULT_RANKING, filter_by: str = "prune_by_noise_rate", seed: int = 0,
                       recipe_overrides: dict | None = None, blend_active: bool = False, outliers: int = 0,
                       outlier_min_score: float = 0.5, created_by=None) -> ScoringRun:
    """A queued run. ``in_sample`` ranks with the active version's own probabilities (folds, epochs and recipe
    overrides do not apply); ``out_of_fold`` cross-fits ``folds`` models of the scoring recipe; ``short_run`` trains
    one model of the scoring recipe on every face and ranks with its probability snapshots (``folds`` does not
    apply); ``dynamics`` ranks with the active version's own training dynamics (trains nothing). With
    ``blend_active``, the last three average their probabilities with the active version's in-sample ones.

    With ``outliers`` > 0 the run also scores every face for "not a face / outlier" (image statistics and the active
    version's penultimate features, ``ml.outliers``) and puts at most that many suspects scoring at least
    ``outlier_min_score`` in the queue as outlier items."""
    from ml.scoring import FILTER_METHODS, RANKING_METHODS

    if method not in ScoringRun.Method.values:
        raise ScoringRunError(f"unknown method {method!r}; available: {', '.join(ScoringRun.Method.values)}")
    if ranking not in RANKING_METHODS:
        raise ScoringRunError(f"unknown ranking {ranking!r}; available: {', '.join(RANKING_METHODS)}")
    if filter_by not in FILTER_METHODS:
        raise ScoringRunError(f"unknown filter {filter_by!r}; available: {', '.join(FILTER_METHODS)}")
    if not 0 <= seed <= SEED_MAX:
        raise ScoringRunError(f"seed must be 0-{SEED_MAX}")
    outlier_fields = _outlier_fields(outliers, outlier_min_score)
    version = None
    if method == ScoringRun.Method.DYNAMICS:
        version = model_version_active()
        if version is None or not version.dynamics:
            raise ScoringRunError("dynamics scoring ranks with the active version's training dynamics, and "
                                  + ("no version is active" if version is None else
                                     f"{version.name} has none (a version trained by the platform has them; one "
                                     "registered from a file does not): score with a short run instead"))
        if epochs is not None or recipe_overrides:
            raise ScoringRunError("epochs and recipe_overrides apply to runs that train: a dynamics run trains "
                                  "nothing")
        return ScoringRun.objects.create(method=method, model_version=version, blend_active=blend_active, folds=0,
                                         ranking=ranking, filter_by=filter_by, seed=seed, created_by=created_by,
                                         **outlier_fields)
    if method == ScoringRun.Method.IN_SAMPLE or blend_active:
        version = model_version_active()
        if version is None:
            raise ScoringRunError(f"{'in-sample scoring' if method == ScoringRun.Method.IN_SAMPLE else 'blending'} "
                                  "uses the active model version's probabilities, and no version is active; "
                                  "activate one or score out-of-fold alone")
    if method == ScoringRun.Method.IN_SAMPLE:
        if blend_active:
            raise ScoringRunError("blend_active applies to out-of-fold and short runs (an in-sample run is the "
                                  "active model's probabilities already)")
        if epochs is not None or recipe_overrides:
            raise ScoringRunError("epochs and recipe_overrides apply to runs that train: an in-sample run trains "
                                  "nothing")
        folds = 0
    else:
        if method == ScoringRun.Method.SHORT_RUN:
            folds = 1  # one model on every face
        elif folds < 2:
            raise ScoringRunError("folds must be at least 2")
        if epochs is not None and not 1 <= epochs <= EPOCHS_MAX:
            raise ScoringRunError(f"epochs must be 1-{EPOCHS_MAX}")
        if recipe_overrides is not None:
            from ml.recipes import apply_overrides, get_recipe

            try:
                apply_overrides(get_recipe("scoring"), recipe_overrides)
            except ValueError as exc:
                raise ScoringRunError(f"recipe_overrides: {exc}") from None
    return ScoringRun.objects.create(method=method, model_version=version, blend_active=blend_active, folds=folds,
                                     epochs=epochs, ranking=ranking, filter_by=filter_by, seed=seed,
                                     recipe_overrides=recipe_overrides or {}, created_by=created_by,
                                     **outlier_fields)


def _outlier_fields(outliers: int, min_score: float) -> dict:
    """The run's outlier settings, with the version whose features score them (the active one)."""
    if not 0 <= outliers <= OUTLIERS_MAX:
        raise ScoringRunError(f"outliers must be 0-{OUTLIERS_MAX}")
    if not 0.0 <= min_score <= 1.0:
        raise ScoringRunError("outlier_min_score must be 0-1")
    version = None
    if outliers:
        version = model_version_active()
        if version is None:
            raise ScoringRunError("outlier scoring uses the active model version's features, and no version is "
                                  "active; activate one or score without outliers")
    return {"outliers": outliers, "outlier_min_score": min_score, "outlier_model_version": version}


def scoring_run_enqueue(**kwargs) -> ScoringRun:
    """Create a run and send ``review.score_labels`` (queue ``bulk``) once the row is committed."""
    with transaction.atomic():
        run = scoring_run_create(**kwargs)
        work_send(SCORING_RUN, run.pk)
    return run


def scoring_queue_refresh(*, created_by=None) -> list[ScoringRun]:
    """Re-rank the queue in two steps on the bulk queue: an in-sample run of the active version first (minutes), so
    reviewers have a queue soon, then the refining run (``scoring_run_refine_enqueue``), blended with the active
    version, that replaces its ranking when it finishes. Used whenever a newly activated version replaces another;
    the first start queues the same two runs with the PublicTest predictions between them (``apps.core.bootstrap``)."""
    with transaction.atomic():
        runs = []
        if model_version_active() is not None:
            runs.append(scoring_run_enqueue(method=ScoringRun.Method.IN_SAMPLE, created_by=created_by))
        runs.append(scoring_run_refine_enqueue(created_by=created_by))
    return runs


REFINE_METHOD = ScoringRun.Method.SHORT_RUN


def scoring_run_refine_enqueue(*, created_by=None) -> ScoringRun:
    """The run that refines a provisional queue: a short run (one model of the scoring recipe on every face, ranked
    by its probability snapshots), blended with the active version when there is one. On FER-2013's real errors it
    ranks better than the in-sample queue it replaces, at a third of the out-of-fold run's training (12 epochs on
    every face against 4 x 12 on three quarters of them; docs/benchmarks.md, "Real relabels")."""
    return scoring_run_enqueue(method=REFINE_METHOD, blend_active=model_version_active() is not None,
                               created_by=created_by)


def training_faces() -> tuple[list[int], np.ndarray, np.ndarray]:
    """Face ids, uint8 (N, 48, 48) pixels and current labels of every labelled Training face, by id."""
    rows = list(training_faces_labelled().order_by("pk").values_list("pk", "current_label"))
    ids = [r[0] for r in rows]
    return ids, face_pixels(ids), np.array([r[1] for r in rows], dtype=np.int64)


BLEND_UNITS = 0.2  # a blended run's in-sample pass, in folds of work


class ScoringProgress(WorkProgress):
    """A scoring run's progress (``apps.core.work.WorkProgress``): the last event with the share done and an ETA (row
    updates at most every 2 s, plus every epoch and fold), and one history entry per finished epoch and fold."""

    def __init__(self, kind: WorkKind, run: ScoringRun, echo: ProgressCallback | None = None) -> None:
        super().__init__(kind, run, echo)
        self.method, self.folds, self.blend = run.method, max(run.folds, 1), run.blend_active
        self.history = list(run.history or [])
        self.started = time.monotonic()
        self.start_fraction: float | None = None  # resumed runs start part-way: the ETA counts this process only

    def fraction(self, event: dict) -> float | None:
        """Share of the run done. A blended run's in-sample pass after its folds counts as a fifth of a fold (about
        what it costs)."""
        predicted = event["done"] / max(event["total"], 1) if event.get("kind") == "predict" else None
        if self.method in (ScoringRun.Method.IN_SAMPLE, ScoringRun.Method.DYNAMICS):  # nothing trains
            return predicted
        units = self.folds + (BLEND_UNITS if self.blend else 0)
        if predicted is not None:
            return min(1.0, (self.folds + BLEND_UNITS * predicted) / units)
        fold = event.get("fold")
        if not fold:
            return None
        if event.get("kind") == "fold":
            within = 1.0
        elif event.get("kind") == "epoch":
            within = event["epoch"] / max(event.get("epochs") or 1, 1)
        elif event.get("kind") == "batch" and event.get("epochs"):
            within = (event["epoch"] - 1 + event["step"] / max(event["steps"], 1)) / event["epochs"]
        else:
            return None
        return min(1.0, (fold - 1 + within) / units)

    def __call__(self, event: dict, **_) -> None:
        if self.echo:
            self.echo(event)
        clean = plain_event(event)
        done = self.fraction(event)
        now = time.monotonic()
        if done is not None:
            if self.start_fraction is None:
                self.start_fraction, self.started = done, now
            clean["fraction"] = round(done, 4)
            rate = (done - self.start_fraction) / max(now - self.started, 1e-6)
            clean["eta_seconds"] = round((1 - done) / rate) if rate > 0 and now - self.started > 5 else None
        kind = event.get("kind")
        if kind == "epoch":
            self.history.append({k: clean.get(k) for k in ("fold", "folds", "epoch", "epochs", "train_loss",
                                                           "seconds", "images_per_s")})
        elif kind == "fold":
            self.history.append({"fold": clean.get("fold"), "folds": clean.get("folds"), "fold_done": True,
                                 "reused": bool(clean.get("reused"))})
        self.record(clean, force=kind in ("epoch", "fold") or done == 1.0, history=self.history)


class ScoringRunNotClaimed(ScoringRunError):
    """Another delivery has the run, or it is finished: nothing to do."""


def _work_dir(run: ScoringRun) -> Path:
    return Path(settings.REVIEW_SCORING_DIR) / f"run-{run.pk}"


def scoring_run_work(run: ScoringRun, progress: ScoringProgress) -> None:
    """The slow part outside any transaction (finished folds kept under the work dir, so an attempt after a lost
    one resumes at the fold it was in), then the scores, the queue and success in one short transaction."""
    run = ScoringRun.objects.select_related("model_version", "outlier_model_version").get(pk=run.pk)
    faces = training_faces()
    scores = _score(run, _work_dir(run), progress, faces)
    outliers = _outlier_scores(run, faces[1], progress) if run.outliers else None
    with transaction.atomic():
        work_still_mine(SCORING_RUN, run.pk)
        created, updated, retired = _record(run, scores)
        review_queue_rerank()  # with a fitted reviewer model, the new scores take their place by it
        outlier_report = None if outliers is None else _record_outliers(run, faces[0], outliers, scores)
        ferplus = scoring_ferplus_report(run=run)  # None unless FER+ votes were imported
        ScoringRun.objects.filter(pk=run.pk, status=WorkStatus.RUNNING).update(
            ferplus=ferplus, outlier_report=outlier_report,
            status=WorkStatus.SUCCEEDED, finished_at=timezone.now(), error="", scored_count=len(scores.rows),
            issue_count=int(scores.is_issue.sum()), items_created=created, items_updated=updated,
            items_retired=retired,
        )


def scoring_run_succeeded(run: ScoringRun) -> None:
    """Nothing left to resume; the bulk worker computes the head of the new queue's overlays ahead of the reviewers
    (a hint: leasing computes what is missing)."""
    shutil.rmtree(_work_dir(run), ignore_errors=True)
    if settings.REVIEW_OVERLAY_PRECOMPUTE:
        task_send_after_commit(OVERLAYS_PRECOMPUTE_TASK, ())


def scoring_run_execute(run_id: int, *, progress: ProgressCallback | None = None,
                        from_statuses: tuple[str, ...] = (WorkStatus.QUEUED, WorkStatus.FAILED)) -> ScoringRun:
    """Run a queued (or failed) scoring run here (the command, tests) to the end, resuming from its finished folds.
    A failure is recorded on the run and raised. A cancelled run keeps its finished folds (and the current fold's
    last epoch) for ``scoring_run_resume``."""
    run = work_run(SCORING_RUN, run_id, echo=progress, from_statuses=from_statuses, raise_errors=True)
    if run is None:
        status = ScoringRun.objects.filter(pk=run_id).values_list("status", flat=True).first()
        raise ScoringRunNotClaimed(f"scoring run {run_id} is {status or 'missing'}; only "
                                   f"{' or '.join(from_statuses)} runs execute")
    return run


def scoring_run_cancel(*, run_id: int) -> ScoringRun:
    """A queued run is cancelled at once; a running one at its next progress event (within a batch or two)."""
    return work_cancel(SCORING_RUN, run_id, state_error=ScoringRunStateError)


def scoring_run_requeue(*, run_id: int) -> ScoringRun:
    """A cancelled or failed run back to queued (the state change of ``scoring_run_resume``, without sending it)."""
    run = ScoringRun.objects.filter(pk=run_id).values("method", "model_version_id").first()
    if run and run["method"] == ScoringRun.Method.IN_SAMPLE and run["model_version_id"] is None:
        raise ScoringRunStateError(f"scoring run #{run_id} ranked with a model version that no longer exists; "
                                   "start a new run")
    return work_requeue(SCORING_RUN, run_id, from_statuses=(WorkStatus.CANCELLED, WorkStatus.FAILED),
                        state_error=ScoringRunStateError, refusal="only cancelled or failed runs resume")


def scoring_run_resume(*, run_id: int) -> ScoringRun:
    """Queue a cancelled or failed run again and send it to a worker; it resumes from its finished folds and its
    current fold's last epoch."""
    with transaction.atomic():
        run = scoring_run_requeue(run_id=run_id)
        work_send(SCORING_RUN, run.pk)
    return run


def _score(run: ScoringRun, work_dir: Path, progress: ProgressCallback,
           faces: tuple[list[int], np.ndarray, np.ndarray]):
    from ml.data import FaceArrays
    from ml.scoring import cross_fit_probabilities, score_from_probabilities

    face_ids, images, labels = faces
    if run.method == ScoringRun.Method.IN_SAMPLE:
        if not face_ids:
            raise ScoringRunError("no labelled Training faces to score")
        probs = _in_sample_probabilities(run, images, progress)
        return score_from_probabilities(labels, probs, np.asarray(face_ids, dtype=np.int64), ranking=run.ranking,
                                        filter_by=run.filter_by)
    from ml.recipes import apply_overrides
    from ml.scoring import scoring_recipe

    if run.method == ScoringRun.Method.DYNAMICS:
        return _dynamics_scores(run, face_ids, images, labels, progress)
    recipe = apply_overrides(scoring_recipe(), run.recipe_overrides or {})  # the default arch on a GPU worker
    if run.method == ScoringRun.Method.SHORT_RUN:
        from ml.scoring import short_run, short_run_probabilities

        if len(face_ids) < 2:
            raise ScoringRunError(f"{len(face_ids)} labelled Training faces: too few to train on")
        data = FaceArrays.from_arrays(images, labels)
        dynamics = short_run(data, recipe=recipe, epochs=run.epochs, seed=run.seed, work_dir=work_dir,
                             progress=progress)
        probs = short_run_probabilities(dynamics)
        if run.blend_active:
            in_sample = _in_sample_probabilities(run, images, progress)
            probs = (1 - SHORT_RUN_ACTIVE_WEIGHT) * probs + SHORT_RUN_ACTIVE_WEIGHT * in_sample
        scores = score_from_probabilities(labels, probs, np.asarray(face_ids, dtype=np.int64), ranking=run.ranking,
                                          filter_by=run.filter_by)
        scores.signals = dynamics.row_signals(scores.suggested)
        return scores
    if len(face_ids) < 2 * run.folds:
        raise ScoringRunError(f"{len(face_ids)} labelled Training faces: too few for {run.folds} folds")
    data = FaceArrays.from_arrays(images, labels)
    probs = cross_fit_probabilities(data, folds=run.folds, recipe=recipe, epochs=run.epochs, seed=run.seed,
                                    work_dir=work_dir, progress=progress)
    if run.blend_active:
        probs = (probs + _in_sample_probabilities(run, images, progress)) / 2
    return score_from_probabilities(labels, probs, np.asarray(face_ids, dtype=np.int64), ranking=run.ranking,
                                    filter_by=run.filter_by)


def _dynamics_scores(run: ScoringRun, face_ids: list[int], images: np.ndarray, labels: np.ndarray,
                     progress: ProgressCallback):
    """The active version's own training dynamics (``ModelVersion.dynamics``, rows as face ids): its snapshots'
    mean for the faces it trained on, the version's in-sample probabilities for faces added since (and for all of
    them when blended). Margins and snapshot counts become the score's signals where the label is still the one it
    trained on."""
    from ml.dynamics import DynamicsError, TrainingDynamics
    from ml.scoring import score_from_probabilities, short_run_probabilities

    version = run.model_version
    if version is None or not version.dynamics:
        raise ScoringRunError("the model version this run was to use, or its training dynamics, no longer exists; "
                              "start a new run")
    if not face_ids:
        raise ScoringRunError("no labelled Training faces to score")
    try:
        with version.dynamics.open("rb") as fh:
            dynamics = TrainingDynamics.load(fh)
    except (OSError, DynamicsError) as exc:
        raise ScoringRunError(f"cannot read {version.name}'s training dynamics: {exc}") from None
    position = {int(face): i for i, face in enumerate(dynamics.rows)}
    at = np.array([position.get(int(face), -1) for face in face_ids])
    known = at >= 0
    probs = np.empty((len(face_ids), 7), dtype=np.float32)
    probs[known] = short_run_probabilities(dynamics)[at[known]]
    progress({"kind": "dynamics", "faces": int(known.sum()), "new_faces": int((~known).sum())})
    if run.blend_active or not known.all():
        in_sample = _in_sample_probabilities(run, images, progress)
        probs[~known] = in_sample[~known]
        if run.blend_active:  # the short run's weight: the same kind of signal, not measured on its own yet
            probs = (1 - SHORT_RUN_ACTIVE_WEIGHT) * probs + SHORT_RUN_ACTIVE_WEIGHT * in_sample
    scores = score_from_probabilities(labels, probs, np.asarray(face_ids, dtype=np.int64), ranking=run.ranking,
                                      filter_by=run.filter_by)
    same_label = known & (dynamics.labels[np.where(known, at, 0)] == labels)
    signals = dynamics.row_signals(_by_dynamics_row(scores.suggested, at, len(dynamics.rows)))
    scores.signals = [signals[at[i]] if same_label[i] else {} for i in range(len(face_ids))]
    return scores


def _by_dynamics_row(values: np.ndarray, at: np.ndarray, n: int) -> np.ndarray:
    """``values`` per scored face, placed at their rows of the dynamics (rows no face maps to: -1)."""
    out = np.full(n, -1, dtype=np.int64)
    known = at >= 0
    out[at[known]] = values[known]
    return out


IN_SAMPLE_CHUNK = 1024  # faces per progress event


def _in_sample_probabilities(run: ScoringRun, images: np.ndarray, progress: ProgressCallback) -> np.ndarray:
    """The run's model version on every face, with flip TTA as the out-of-fold runs use, in bf16 where the CPU has it
    (a ranking does not need fp32's last digits, and the first start's queue comes sooner)."""
    from apps.inference import runtime
    from ml.evaluate import predict_proba

    if run.model_version is None:
        raise ScoringRunError("the model version this run was to use no longer exists; start a new run")
    model = runtime.loaded(run.model_version).model
    out = []
    for start in range(0, len(images), IN_SAMPLE_CHUNK):
        out.append(predict_proba(model, images[start:start + IN_SAMPLE_CHUNK], tta="flip", amp_bf16=True))
        progress({"kind": "predict", "done": min(start + IN_SAMPLE_CHUNK, len(images)), "total": len(images)})
    return np.concatenate(out)


def _record(run: ScoringRun, scores) -> tuple[int, int, int]:
    """Store every score, then make the queue this run's: refresh the score of faces that have an item, create items
    for newly flagged faces, and retire open items this run no longer flags that nobody has touched (no vote, skip or
    history in any round, not gold, not leased). Items are keyed by face, so nothing is duplicated, and items that
    carry votes stay with them. Returns (created, updated, retired)."""
    LabelScore.objects.bulk_create([
        LabelScore(run=run, face_id=int(scores.rows[i]), given_label=int(scores.given[i]),
                   quality=float(scores.quality[i]), is_issue=bool(scores.is_issue[i]),
                   suggested_label=int(scores.suggested[i]),
                   suggested_probability=float(scores.suggested_probability[i]),
                   probabilities=[round(float(p), 5) for p in scores.probabilities[i]],
                   signals=scores.signals[i] if scores.signals else {})
        for i in range(len(scores.rows))
    ], batch_size=2000)
    by_face = dict(LabelScore.objects.filter(run=run).values_list("face_id", "pk"))
    index = {int(face): i for i, face in enumerate(scores.rows)}
    flagged = {int(scores.rows[i]) for i in np.flatnonzero(scores.is_issue)}
    now = timezone.now()
    retired = _retire_untouched(keep=flagged, now=now)
    existing = {item.face_id: item for item in ReviewItem.objects.select_for_update().filter(face_id__in=index)}
    to_update, to_create = [], []
    for face_id, item in existing.items():
        i = index[face_id]
        item.score_id = by_face[face_id]
        if item.kind == ReviewItem.Kind.LABEL_ISSUE:  # an outlier or duplicate keeps the place its own reason gave it
            item.priority = float(scores.quality[i])
        item.suggested_label = int(scores.suggested[i])
        item.suggested_probability = float(scores.suggested_probability[i])
        item.updated_at = now  # bulk_update skips auto_now
        to_update.append(item)
    for face_id in sorted(flagged - set(existing)):
        i = index[face_id]
        to_create.append(ReviewItem(face_id=face_id, score_id=by_face[face_id], priority=float(scores.quality[i]),
                                    suggested_label=int(scores.suggested[i]),
                                    suggested_probability=float(scores.suggested_probability[i])))
    ReviewItem.objects.bulk_update(to_update, ["score", "priority", "suggested_label", "suggested_probability",
                                               "updated_at"], batch_size=2000)
    ReviewItem.objects.bulk_create(to_create, batch_size=2000, ignore_conflicts=True)
    return len(to_create), len(to_update), retired


def _untouched(*, keep: set[int], now, kind: str = ReviewItem.Kind.LABEL_ISSUE) -> QuerySet[ReviewItem]:
    """Open items of ``kind`` nobody has touched: round 1, no vote, undo, skip or history, not gold, not leased now,
    face not in ``keep``. (A label-scoring run retires label issues only: outliers and duplicate conflicts are not
    its to judge.)"""
    return (ReviewItem.objects.filter(status=ReviewItem.Status.OPEN, is_gold=False, round=1, kind=kind)
            .exclude(face_id__in=keep)
            .exclude(lease_expires_at__gt=now)
            .exclude(Exists(Vote.objects.filter(item=OuterRef("pk"))))
            .exclude(Exists(Skip.objects.filter(item=OuterRef("pk"))))
            .exclude(Exists(VoteUndo.objects.filter(item=OuterRef("pk"))))
            .exclude(Exists(LabelHistory.objects.filter(item=OuterRef("pk")))))


def _retire_untouched(*, keep: set[int], now, kind: str = ReviewItem.Kind.LABEL_ISSUE) -> int:
    """Delete the untouched open items (``_untouched``) whose face is not in ``keep``; how many. The rows are locked
    first, and the delete re-checks that they are still untouched, so a vote is never cascaded away: a vote locks
    its item row (and its insert needs a key-share lock on it), so it either landed before the check, which then
    keeps the item, or waits and then finds the item gone (404). Items a vote holds right now are skipped, not waited
    for: they are touched."""
    locked = list(_untouched(keep=keep, now=now, kind=kind).select_for_update(skip_locked=True)
                  .values_list("pk", flat=True))
    if not locked:
        return 0
    _, deleted = _untouched(keep=keep, now=now, kind=kind).filter(pk__in=locked).delete()
    return deleted.get(ReviewItem._meta.label, 0)


# --- outliers ---------------------------------------------------------------------------------------------------------

def _outlier_scores(run: ScoringRun, images: np.ndarray, progress: ProgressCallback):
    """``ml.outliers.outlier_scores`` of every face, with the outlier version's pooled features (the slow part: one
    forward pass, outside any transaction)."""
    from apps.inference import runtime
    from ml.outliers import outlier_scores
    from ml.scoring import pooled_features

    if run.outlier_model_version is None:
        raise ScoringRunError("the model version this run was to score outliers with no longer exists; start a new "
                              "run")
    model = runtime.loaded(run.outlier_model_version).model
    features = []
    for start in range(0, len(images), IN_SAMPLE_CHUNK):
        features.append(pooled_features(model, images[start:start + IN_SAMPLE_CHUNK]))
        progress({"kind": "outliers", "done": min(start + IN_SAMPLE_CHUNK, len(images)), "total": len(images)})
    return outlier_scores(images, np.concatenate(features) if features else None)


def _record_outliers(run: ScoringRun, face_ids: list[int], outliers, scores) -> dict:
    """Put the run's outlier suspects in the queue (``review_item_flag``, kind outlier), and take out the untouched
    outlier items of earlier runs that are no longer suspects: back to a label issue when this run flagged the label,
    removed otherwise. Returns the report stored on the run."""
    from apps.faces.models import FaceImage

    from .services import review_item_flag

    top = outliers.top(run.outliers, min_score=run.outlier_min_score)
    chosen = {int(face_ids[i]): int(i) for i in top}
    now = timezone.now()
    label_flagged = {int(scores.rows[i]) for i in np.flatnonzero(scores.is_issue)}
    back = list(_untouched(keep=set(chosen), now=now, kind=ReviewItem.Kind.OUTLIER)
                .filter(face_id__in=label_flagged).select_for_update(skip_locked=True))
    quality = {int(face): float(scores.quality[i]) for i, face in enumerate(scores.rows)}
    for item in back:
        item.kind, item.kind_detail, item.priority, item.updated_at = ReviewItem.Kind.LABEL_ISSUE, {}, \
            quality[item.face_id], now
    ReviewItem.objects.bulk_update(back, ["kind", "kind_detail", "priority", "updated_at"])
    retired = _retire_untouched(keep=set(chosen) | label_flagged, now=now, kind=ReviewItem.Kind.OUTLIER)
    had = dict(ReviewItem.objects.filter(face_id__in=chosen).values_list("face_id", "status"))
    decided = {f for f, status in had.items() if status not in (ReviewItem.Status.OPEN, ReviewItem.Status.REOPENED)}
    faces = FaceImage.objects.in_bulk(list(chosen))
    version = run.outlier_model_version.name if run.outlier_model_version else None
    for face_id, i in chosen.items():
        review_item_flag(face=faces[face_id], kind=ReviewItem.Kind.OUTLIER,
                         detail={**outliers.detail(i), "run": run.pk, "model_version": version},
                         priority=1.0 - float(outliers.score[i]))
    fired = {}
    for i in top:
        for signal in outliers.fired(int(i))[:1]:
            fired[signal] = fired.get(signal, 0) + 1
    return {"model_version": version, "scored": len(face_ids), "suspects": len(chosen),
            "above_min_score": int((outliers.score >= run.outlier_min_score).sum()),
            "items_created": len(set(chosen) - set(had)), "items_updated": len(set(had) - decided),
            "already_decided": len(decided), "items_retired": retired, "back_to_label_issue": len(back),
            "by_reason": fired}


SCORING_RUN = WorkKind(name="scoring_run", label="label-scoring runs", model=ScoringRun, task="review.score_labels",
                       queue=QUEUE_BULK, work=scoring_run_work, retry_countdown=10, progress_class=ScoringProgress,
                       on_succeeded=scoring_run_succeeded)
