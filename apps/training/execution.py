"""Executing a run (the ``work`` of ``TRAINING_RUN``, run by ``apps.core.work.work_run``): snapshot -> arrays ->
``ml.train.fit`` -> evaluation -> model version -> promotion gate.

Training and evaluation run outside transactions; the run row gets short updates (progress at most every
``PROGRESS_INTERVAL`` seconds and at every epoch). Cancellation and a sweep by another process are noticed at the
next progress event. A failed run keeps its work dir (``TRAINING_DIR/run-<id>``, with ml's per-epoch state file), so
a retry resumes at its last finished epoch.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from apps.core.work import (
    QUEUE_BULK,
    WorkCancelled,
    WorkKind,
    WorkProgress,
    WorkStatus,
    plain_event,
    work_run,
    work_still_mine,
)
from apps.faces.selectors import face_pixels, near_duplicate_run_latest, training_faces_with_test_near_duplicates
from apps.inference import runtime
from apps.inference.models import ModelVersion
from apps.inference.selectors import model_version_active
from apps.inference.services.registry import model_version_activate, model_version_register

from .gate import promotion_gate_decide
from .models import TrainingRun
from .snapshot import (
    LabelSnapshot,
    TestSet,
    label_snapshot_current,
    label_snapshot_of,
    labels_changed_since,
    public_test_set,
    vote_distributions,
)

logger = logging.getLogger(__name__)
PROGRESS_INTERVAL = 2.0  # seconds between row updates on batch events
Echo = Callable[[dict], None]


class TrainingRunStartError(Exception):
    """A run that cannot start (its starting weights are gone); the message says why."""


def run_dir(run: TrainingRun) -> Path:
    """The run's work dir; its creation time is in the name, so a reused id (a fresh database) never resumes a
    stranger's state file."""
    return Path(settings.TRAINING_DIR) / f"run-{run.pk}-{run.created_at:%Y%m%dT%H%M%S%f}"


def epoch_entry(event: dict) -> dict:
    """What the run keeps of one epoch (ml's epoch event or a history entry of its state file)."""
    plain = plain_event(event)
    return {k: plain.get(k) for k in ("epoch", "train_loss", "train_accuracy", "val_accuracy", "val_macro_f1",
                                              "val_loss", "seconds", "lr")}


class TrainingProgress(WorkProgress):
    """A training run's progress (``apps.core.work.WorkProgress``): the latest event, one history entry per finished
    epoch and a log, written at most every ``PROGRESS_INTERVAL`` seconds and at every epoch."""

    every = PROGRESS_INTERVAL

    def __init__(self, kind: WorkKind, run: TrainingRun, echo: Echo | None = None) -> None:
        super().__init__(kind, run, echo)
        self.epochs = run.epochs
        self.history = list(run.history)
        self.log = run.log

    def note(self, line: str) -> None:
        self.log += f"{timezone.now():%H:%M:%S} {line}\n"
        self.write(force=True)

    def write(self, *, force: bool = False, current: dict | None = None) -> None:
        self.record(current, force=force, history=self.history, log=self.log[-50_000:])

    def stopped(self) -> None:
        try:
            super().stopped()
        except WorkCancelled:  # keep the epochs and log lines this write carried
            TrainingRun.objects.filter(pk=self.pk, status=WorkStatus.RUNNING).update(history=self.history,
                                                                                    log=self.log[-50_000:])
            raise

    def __call__(self, event: dict, **_) -> None:
        if self.echo:
            self.echo(event)
        clean = plain_event(event)
        if event.get("kind") != "epoch":
            self.write(current=clean)
            return
        epoch = clean["epoch"]
        entry = epoch_entry(clean)
        self.history = [p for p in self.history if p["epoch"] < epoch] + [entry]
        acc = entry["val_accuracy"]
        self.log += (f"{timezone.now():%H:%M:%S} epoch {epoch}/{self.epochs}: loss {entry['train_loss']:.4f}"
                     + (f", PublicTest accuracy {100 * acc:.2f}%, macro-F1 {100 * entry['val_macro_f1']:.2f}"
                        if acc is not None else "") + f" ({entry['seconds']:.1f} s)\n")
        self.write(force=True, current=clean)


def _snapshot_for(run: TrainingRun, recorder: TrainingProgress) -> LabelSnapshot:
    """The run's own snapshot when it is resumed, else the current labels (recorded on the run)."""
    if run.snapshot_labels is not None:
        snapshot = LabelSnapshot.decode(run.snapshot_labels)
        recorder.note(f"resuming on its snapshot of {len(snapshot)} labels ({snapshot.fingerprint[:12]})")
        return snapshot
    snapshot = label_snapshot_current()
    if run.exclude_cross_split_duplicates:
        snapshot = _without_cross_split_duplicates(run, snapshot, recorder)
    active = model_version_active()
    base = label_snapshot_of(active)
    changed = snapshot.changed_against(base) if base is not None else labels_changed_since(active, snapshot)
    TrainingRun.objects.filter(pk=run.pk).update(
        snapshot_count=len(snapshot), snapshot_fingerprint=snapshot.fingerprint, snapshot_labels=snapshot.encode(),
        labels_changed=changed)
    recorder.note(f"label snapshot: {len(snapshot)} Training faces ({snapshot.fingerprint[:12]}), "
                  f"{changed} changed since {active.name if active else 'the original labels'}")
    return snapshot


def _without_cross_split_duplicates(run: TrainingRun, snapshot: LabelSnapshot,
                                    recorder: TrainingProgress) -> LabelSnapshot:
    """The snapshot less the Training faces that the latest near-duplicate search put in a group with a test face
    (recorded on the run: how many, and which search)."""
    search = near_duplicate_run_latest()
    if search is None:
        raise TrainingRunStartError("no near-duplicate search has succeeded yet: run one (Faces, near-duplicates) or "
                                 "start the run without leaving out cross-split duplicates")
    left_out = training_faces_with_test_near_duplicates(search)
    keep = ~np.isin(snapshot.face_ids, np.fromiter(left_out, dtype=np.int64, count=len(left_out)))
    TrainingRun.objects.filter(pk=run.pk).update(duplicates_left_out=int((~keep).sum()), near_duplicate_run=search)
    recorder.note(f"left out {int((~keep).sum())} Training faces with a near-duplicate in a test split "
                  f"(near-duplicate search #{search.pk})")
    return LabelSnapshot(snapshot.face_ids[keep].copy(), snapshot.labels[keep].copy())


def _measure(model, test: TestSet) -> dict:
    """PublicTest metrics against the current (corrected) and the original labels, from one pass of the model."""
    from ml.evaluate import classification_metrics, predict_proba

    probs = predict_proba(model, test.images)
    keep = ("n", "accuracy", "macro_f1", "per_class", "confusion")
    return {side: {k: v for k, v in classification_metrics(labels, probs).items() if k in keep}
            for side, labels in (("current", test.current), ("original", test.original))}


def _summary(measured: dict | None) -> dict | None:
    if not measured:
        return None
    return {side: {"accuracy": measured[side]["accuracy"], "macro_f1": measured[side]["macro_f1"]}
            for side in ("current", "original")}


def training_run_work(run: TrainingRun, recorder: TrainingProgress, *, device: str | None = None) -> None:
    """Train the claimed run, register its version (the run succeeds with it), then apply the promotion gate."""
    run = TrainingRun.objects.select_related("init_version").get(pk=run.pk)
    recorder.note(f"started on {run.worker}: recipe {run.recipe_name}, {run.arch}, {run.epochs} epoch(s), "
                  f"seed {run.seed}, soft labels {run.soft_label_mode}")
    version = _train_and_register(run, recorder, device)
    try:  # the run has succeeded: the gate can no longer fail it
        _gate(run.pk, version, recorder)
    except Exception as exc:  # the version exists but stays inactive; say why on the run
        logger.exception("training run %s: promotion gate failed", run.pk)
        TrainingRun.objects.filter(pk=run.pk).update(
            promoted=False, promotion_reason=f"kept inactive: the gate failed ({type(exc).__name__}: {exc})")


def training_run_describe(exc: BaseException) -> str | None:
    from ml.train import TrainingError

    if isinstance(exc, (TrainingError, TrainingRunStartError)):
        return f"training failed: {exc}"
    if isinstance(exc, MemoryError):
        return "out of memory"
    return None


def _log_line(run_id: int, line: str) -> None:
    log = TrainingRun.objects.filter(pk=run_id).values_list("log", flat=True).first() or ""
    TrainingRun.objects.filter(pk=run_id).update(log=(log + f"{timezone.now():%H:%M:%S} {line}\n")[-50_000:])


def training_run_failed(run_id: int, reason: str) -> None:
    """The log ends with why (its work dir stays: a retry resumes from the last epoch)."""
    _log_line(run_id, f"failed: {reason}")


def training_run_cancelled(run: TrainingRun) -> None:
    _log_line(run.pk, f"cancelled: {run.error}")
    shutil.rmtree(run_dir(run), ignore_errors=True)  # nothing left to resume


def training_run_succeeded(run: TrainingRun) -> None:
    shutil.rmtree(run_dir(run), ignore_errors=True)  # nothing left to resume


def training_run_conflict(run_id: int) -> str:
    other = TrainingRun.objects.filter(status=WorkStatus.RUNNING).exclude(pk=run_id).first()
    return f"another run (#{other.pk if other else '?'}) was training; only one run trains at a time"


def training_run_execute(*, run_id: int, echo: Echo | None = None, device: str | None = None) -> TrainingRun:
    """Claim and train a queued run here (the command, tests). Failures and cancellation are recorded on the run,
    not raised; a run that was not claimed is returned as it is."""
    return work_run(TRAINING_RUN, run_id, echo=echo, device=device) or TrainingRun.objects.get(pk=run_id)


def _train_and_register(run: TrainingRun, recorder: TrainingProgress, device: str | None) -> ModelVersion:
    from ml.checkpoint import load_checkpoint
    from ml.data import FaceArrays
    from ml.dynamics import dynamics_path
    from ml.recipes import Recipe
    from ml.train import fit

    snapshot = _snapshot_for(run, recorder)
    train = FaceArrays.from_arrays(face_pixels(snapshot.face_ids.tolist()), snapshot.labels)
    train.rows = np.asarray(snapshot.face_ids, dtype=np.int64)  # the training dynamics' rows are face ids
    if run.soft_label_mode != TrainingRun.SoftLabelMode.MAJORITY:
        train.soft_labels, with_votes = vote_distributions(snapshot)
        TrainingRun.objects.filter(pk=run.pk).update(soft_label_count=with_votes)
        recorder.note(f"soft labels ({run.soft_label_mode}): {with_votes} face(s) with vote distributions")
    test = public_test_set()
    val = FaceArrays.from_arrays(test.images, test.current, usage="PublicTest") if len(test) else None
    recorder.note(f"data: {len(train)} Training faces, {len(test)} PublicTest faces")

    recipe_dict = dict(run.recipe)
    recipe_dict["arch_kwargs"] = {k: tuple(v) if isinstance(v, list) else v
                                  for k, v in (recipe_dict.get("arch_kwargs") or {}).items()}
    recipe = Recipe.from_dict(recipe_dict)
    out = run_dir(run) / "model.pt"
    state = out.with_name(out.name + ".state")
    if state.is_file():  # a retried run: ml resumes after the last epoch its state file holds
        from ml.checkpoint import read_checkpoint

        recorder.history = [epoch_entry(h) for h in read_checkpoint(state).get("history", [])]
        recorder.note(f"resuming after epoch {len(recorder.history)} from its checkpoint")
    with _initial_weights(run, recipe, recorder) as init_from:
        fit(train, val, recipe, out, epochs=run.epochs, seed=run.seed, resume=True, progress=recorder,
            device=device, extra={"training_run": run.pk, "label_fingerprint": snapshot.fingerprint},
            init_from=init_from)

    candidate, previous = None, None
    active = model_version_active()
    if len(test):
        candidate = _measure(load_checkpoint(out).model, test)
        if active is not None:
            previous = _measure(runtime.loaded(active).model, test)
    recorder.note("evaluated on PublicTest" if candidate else "no PublicTest faces: nothing to evaluate on")
    recorder.check()  # still this run's (not taken back by the sweeper) before a version is registered
    version = model_version_register(checkpoint_path=out, name=f"run {run.pk} ({run.recipe_name})",
                                     created_by=run.created_by, dynamics_path=dynamics_path(out))
    summary = {"candidate": _summary(candidate), "previous": None, "delta": None}
    if previous is not None:
        summary["previous"] = {"version": active.pk, "name": active.name, **_summary(previous)}
        summary["delta"] = {side: {k: summary["candidate"][side][k] - summary["previous"][side][k]
                                   for k in ("accuracy", "macro_f1")} for side in ("current", "original")}
    with transaction.atomic():
        work_still_mine(TRAINING_RUN, run.pk)
        metrics = dict(version.metrics)
        if candidate:
            metrics.update(candidate["current"])
            metrics["labels"] = "current"
            metrics["original_labels"] = candidate["original"]
        metrics["comparison"] = summary
        metrics["soft_label_mode"] = run.soft_label_mode
        version.metrics = metrics
        version.data_snapshot = {"training_run": run.pk, "labels": len(snapshot), "fingerprint": snapshot.fingerprint,
                                 "soft_label_mode": run.soft_label_mode, "seed": run.seed, "epochs": run.epochs}
        version.save(update_fields=["metrics", "data_snapshot"])
        recorder.log += f"{timezone.now():%H:%M:%S} registered model version #{version.pk}\n"
        TrainingRun.objects.filter(pk=run.pk, status=WorkStatus.RUNNING).update(
            status=WorkStatus.SUCCEEDED, finished_at=timezone.now(), error="", model_version=version,
            metrics=summary, history=recorder.history, log=recorder.log[-50_000:], heartbeat_at=timezone.now())
    return version


@contextmanager
def _initial_weights(run: TrainingRun, recipe, recorder: TrainingProgress) -> Iterator[Path | None]:
    """The checkpoint a warm-start run starts from (its ``init_version``); None for runs from scratch."""
    if not recipe.warm_start:
        yield None
        return
    if run.init_version is None:
        raise TrainingRunStartError("the version this run was to start from no longer exists; start a new run")
    recorder.note(f"warm start from version #{run.init_version.pk} ({run.init_version.name})")
    with runtime.local_checkpoint(run.init_version.checkpoint.name) as path:
        yield path


def _gate(run_id: int, version: ModelVersion, recorder: TrainingProgress) -> None:
    summary = TrainingRun.objects.values_list("metrics", flat=True).get(pk=run_id)
    candidate = (summary.get("candidate") or {}).get("current")
    previous = summary.get("previous")
    if model_version_active() is None:
        promote, reason = True, "promoted: no active version to compare with"
    elif candidate is None or previous is None:
        promote, reason = False, "kept inactive: no PublicTest faces to compare on; promote it by hand if wanted"
    else:
        promote, reason = promotion_gate_decide(candidate=candidate, previous=previous["current"],
                                                previous_name=f"version #{previous['version']}")
    if promote:
        try:
            model_version_activate(version=version)
        except Exception as exc:  # the run did succeed; say why its version is not active
            logger.exception("training run %s: promotion failed", run_id)
            promote, reason = False, f"promotion failed: {type(exc).__name__}: {exc}"
    recorder.log += f"{timezone.now():%H:%M:%S} gate: {reason}\n"
    TrainingRun.objects.filter(pk=run_id).update(promoted=promote, promotion_reason=reason,
                                                 log=recorder.log[-50_000:])


TRAINING_RUN = WorkKind(
    name="training_run", label="training runs", model=TrainingRun, task="training.run", queue=QUEUE_BULK,
    work=training_run_work, progress_class=TrainingProgress, describe=training_run_describe,
    claim_conflict=training_run_conflict, on_failed=training_run_failed, on_cancelled=training_run_cancelled,
    on_succeeded=training_run_succeeded)
