"""Writes for the galleries: faithfulness scores (ROAD) of CAM methods for a model version."""

from __future__ import annotations

import random

import numpy as np
from django.db import transaction
from django.utils import timezone

from apps.core.errors import Conflict
from apps.core.work import work_claim, work_fail, work_heartbeat, work_send
from apps.faces.models import FaceImage, Split
from apps.faces.selectors import face_pixels
from apps.inference import runtime
from apps.inference.models import ModelVersion
from apps.inference.services.predictions import cam_methods_validate
from ml import explain as ml_explain
from ml.cam_stats import ROAD_PERCENTILES, road_scores
from ml.evaluate import predict_proba

from .kinds import FAITHFULNESS_RUN
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


def faithfulness_run_execute(*, run_id: int) -> FaithfulnessRun | None:
    """The worker's part: claim the run (None if another delivery has it or it is finished) and measure."""
    if not work_claim(FAITHFULNESS_RUN, run_id, started_at=timezone.now()):
        return None
    run = FaithfulnessRun.objects.select_related("model_version").get(pk=run_id)
    with work_heartbeat(FAITHFULNESS_RUN, run.pk):
        faithfulness_compute(version=run.model_version, methods=run.methods, sample_size=run.sample_size,
                             split=run.split)
    FaithfulnessRun.objects.filter(pk=run.pk, status=FaithfulnessRun.Status.RUNNING).update(
        status=FaithfulnessRun.Status.DONE, finished_at=timezone.now(), error="")
    run.refresh_from_db()
    return run


def faithfulness_run_fail(*, run_id: int, error: str) -> bool:
    return work_fail(FAITHFULNESS_RUN, run_id, error)


def faithfulness_sample(*, split: str, sample_size: int, seed: int = 0) -> list[int]:
    """A reproducible random sample of face ids from ``split`` (labelled or not, not excluded)."""
    ids = list(FaceImage.objects.filter(split=split, excluded=False).order_by("pk").values_list("pk", flat=True))
    if len(ids) > sample_size:
        ids = sorted(random.Random(seed).sample(ids, sample_size))
    return ids


def faithfulness_compute(*, version: ModelVersion, methods: list[str], sample_size: int = 200,
                         split: str = Split.PUBLIC_TEST, seed: int = 0) -> list[FaithfulnessScore]:
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
    for method in methods:
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
