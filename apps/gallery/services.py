"""Writes for the galleries: faithfulness scores (ROAD) of CAM methods for a model version."""

from __future__ import annotations

import random

import numpy as np
from django.db import transaction

from apps.core.errors import Conflict
from apps.core.work import QUEUE_BULK, WorkKind, WorkProgress, work_run, work_send
from apps.faces.models import FaceImage, Split
from apps.faces.selectors import face_pixels
from apps.inference import runtime
from apps.inference.models import ModelVersion
from apps.inference.services.predictions import cam_methods_validate
from ml import explain as ml_explain
from ml.cam_stats import ROAD_PERCENTILES, road_scores
from ml.evaluate import predict_proba

from .models import FaithfulnessRun, FaithfulnessScore


class NoFacesToScore(Conflict):
    """The split holds no face to measure faithfulness on."""

    code = "no_faces"


def faithfulness_enqueue(*, version: ModelVersion, methods: list[str], sample_size: int = 200,
                         split: str = Split.PUBLIC_TEST, created_by=None) -> FaithfulnessRun:
    """Record a faithfulness run and send ``gallery.faithfulness`` (queue ``bulk``) once the transaction commits."""
    methods = cam_methods_validate(methods)
    run = FaithfulnessRun.objects.create(model_version=version, methods=methods, sample_size=sample_size,
                                         split=str(split), created_by=created_by)
    work_send(FAITHFULNESS_RUN, run.pk)
    return run


def faithfulness_run_work(run: FaithfulnessRun, progress: WorkProgress) -> None:
    """The worker's part: measure the run's methods (each one's score replaces an older one, never duplicates it)."""
    faithfulness_compute(version=run.model_version, methods=run.methods, sample_size=run.sample_size,
                         split=run.split, progress=progress)


def faithfulness_run_execute(*, run_id: int) -> FaithfulnessRun | None:
    """Run a queued run here (tests): None when another delivery has it or it is finished; a failure is recorded on
    the row and raised."""
    return work_run(FAITHFULNESS_RUN, run_id, raise_errors=True)


def faithfulness_sample(*, split: str, sample_size: int, seed: int = 0) -> list[int]:
    """A reproducible random sample of face ids from ``split`` (labelled or not, not excluded)."""
    ids = list(FaceImage.objects.filter(split=split, excluded=False).order_by("pk").values_list("pk", flat=True))
    if len(ids) > sample_size:
        ids = sorted(random.Random(seed).sample(ids, sample_size))
    return ids


def faithfulness_compute(*, version: ModelVersion, methods: list[str], sample_size: int = 200,
                         split: str = Split.PUBLIC_TEST, seed: int = 0,
                         progress: WorkProgress | None = None) -> list[FaithfulnessScore]:
    """ROAD (combined, softmax scores) of each method for the predicted class, averaged over a sample of ``split``.

    The model and the CAM run outside transactions; each method's score is then recorded (replacing an older one)."""
    methods = cam_methods_validate(methods)
    ids = faithfulness_sample(split=split, sample_size=sample_size, seed=seed)
    if not ids:
        raise NoFacesToScore(f"no faces in {split} to measure faithfulness on")
    faces = list(FaceImage.objects.filter(pk__in=ids).order_by("pk"))
    arrays = face_pixels([f.pk for f in faces])
    model = runtime.loaded(version).model
    targets = predict_proba(model, arrays).argmax(1).tolist()
    rows = []
    for done, method in enumerate(methods):
        if progress is not None:
            progress({"kind": "method", "method": method, "done": done, "total": len(methods)}, force=True)
        # Under the lock: ROAD's forward passes would otherwise fire another thread's CAM hooks on the shared model.
        with runtime.cam_lock:
            maps = ml_explain.explain(model, arrays, method=method, targets=targets).maps
            scores = road_scores(model, arrays, maps, targets)
        with transaction.atomic():
            row, _ = FaithfulnessScore.objects.update_or_create(
                model_version=version, method=method, metric=FaithfulnessScore.Metric.ROAD, split=split,
                defaults={"sample_size": len(scores), "percentiles": list(ROAD_PERCENTILES),
                          "mean": float(np.mean(scores)), "std": float(np.std(scores))})
        rows.append(row)
    return rows


FAITHFULNESS_RUN = WorkKind(name="faithfulness_run", label="faithfulness runs", model=FaithfulnessRun,
                            task="gallery.faithfulness", queue=QUEUE_BULK, work=faithfulness_run_work)
