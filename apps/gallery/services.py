"""Writes for the galleries: faithfulness scores (ROAD) of CAM methods for a model version."""

from __future__ import annotations

import random

import numpy as np
from django.db import transaction

from apps.core.errors import Conflict
from apps.faces.models import FaceImage, Split
from apps.faces.selectors import face_pixels
from apps.inference import runtime
from apps.inference.models import ModelVersion
from apps.inference.services.predictions import cam_methods_validate
from ml import explain as ml_explain
from ml.cam_stats import ROAD_PERCENTILES, road_scores
from ml.evaluate import predict_proba

from .models import FaithfulnessScore
from .tasks import faithfulness_task


class NoFacesToScore(Conflict):
    """The split holds no face to measure faithfulness on."""

    code = "no_faces"


def faithfulness_enqueue(*, version: ModelVersion, methods: list[str], sample_size: int = 200,
                         split: str = Split.PUBLIC_TEST) -> list[str]:
    """Queue ``gallery.faithfulness`` (queue ``gpu``) once the current transaction commits; the validated methods."""
    methods = cam_methods_validate(methods)
    transaction.on_commit(lambda: faithfulness_task.delay(version.pk, methods, sample_size, str(split)))
    return methods


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
