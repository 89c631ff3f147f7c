"""Writes for the galleries: faithfulness scores (ROAD) of CAM methods on each layer for a model version, next to a
random-map baseline measured the same way on the same faces."""

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
from apps.inference.services.predictions import cam_layer_validate, cam_methods_validate
from ml import explain as ml_explain
from ml.cam_stats import ROAD_PERCENTILES, compare_to_baseline, road_scores
from ml.evaluate import predict_proba
from ml.models import DEFAULT_CAM_LAYER

from .models import FaithfulnessFaceScore, FaithfulnessRun, FaithfulnessScore


class NoFacesToScore(Conflict):
    """The split holds no face to measure faithfulness on."""

    code = "no_faces"


def faithfulness_maps_validate(*, methods: list[str] | None,
                                layers: list[str] | None) -> tuple[list[str], list[str]]:
    """The methods and layers to measure (every method on every layer; no layers: ``last``): ``UnknownCamMethod`` or
    ``CamLayerInvalid`` (400) when a method is unknown or a layer does not suit one of them."""
    methods = cam_methods_validate(methods)
    layers = list(dict.fromkeys(str(layer).strip().lower() for layer in layers or [DEFAULT_CAM_LAYER]))
    for layer in layers:
        for method in methods:
            cam_layer_validate(layer, method=method)
    return methods, layers


def faithfulness_enqueue(*, version: ModelVersion, methods: list[str], layers: list[str] | None = None,
                         sample_size: int = 200, split: str = Split.PUBLIC_TEST, created_by=None) -> FaithfulnessRun:
    """Record a faithfulness run and send ``gallery.faithfulness`` (queue ``bulk``) once the transaction commits."""
    methods, layers = faithfulness_maps_validate(methods=methods, layers=layers)
    run = FaithfulnessRun.objects.create(model_version=version, methods=methods, layers=layers,
                                         sample_size=sample_size, split=str(split), created_by=created_by)
    work_send(FAITHFULNESS_RUN, run.pk)
    return run


def faithfulness_run_work(run: FaithfulnessRun, progress: WorkProgress) -> None:
    """The worker's part: measure the run's methods (each one's score replaces an older one, never duplicates it)."""
    faithfulness_compute(version=run.model_version, methods=run.methods, layers=run.layers or None,
                         sample_size=run.sample_size, split=run.split, progress=progress)


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


def faithfulness_compute(*, version: ModelVersion, methods: list[str], layers: list[str] | None = None,
                         sample_size: int = 200, split: str = Split.PUBLIC_TEST, seed: int = 0,
                         progress: WorkProgress | None = None) -> list[FaithfulnessScore]:
    """ROAD (combined, softmax scores) of each method on each layer for the predicted class, over a sample of
    ``split``, and of seeded uniform random maps on the same faces under the same imputation noise: each map is
    recorded per face beside the random map's figure, and the score holds the mean, the baseline's mean and the share
    of faces that beat it.

    The model and the CAM run outside transactions; each (method, layer) is then recorded in one transaction,
    replacing an older score and its per-face figures."""
    methods, layers = faithfulness_maps_validate(methods=methods, layers=layers)
    ids = faithfulness_sample(split=split, sample_size=sample_size, seed=seed)
    if not ids:
        raise NoFacesToScore(f"no faces in {split} to measure faithfulness on")
    faces = list(FaceImage.objects.filter(pk__in=ids).order_by("pk"))
    arrays = face_pixels([f.pk for f in faces])
    model = runtime.loaded(version).model
    targets = predict_proba(model, arrays).argmax(1).tolist()
    pairs = [(method, layer) for layer in layers for method in methods]
    # Under the lock: ROAD's forward passes would otherwise fire another thread's CAM hooks on the shared model.
    with runtime.cam_lock:
        baseline = road_scores(model, arrays, ml_explain.random_maps(len(faces), seed=seed), targets, seed=seed)
    rows = []
    for done, (method, layer) in enumerate(pairs):
        if progress is not None:
            progress({"kind": "method", "method": method, "layer": layer, "done": done, "total": len(pairs)},
                     force=True)
        with runtime.cam_lock:
            maps = ml_explain.explain(model, arrays, method=method, targets=targets, layer=layer).maps
            scores = road_scores(model, arrays, maps, targets, seed=seed)
        rows.append(_faithfulness_record(version=version, method=method, layer=layer, split=split, faces=faces,
                                         targets=targets, scores=scores, baseline=baseline))
    return rows


@transaction.atomic
def _faithfulness_record(*, version: ModelVersion, method: str, layer: str, split: str, faces: list[FaceImage],
                         targets: list[int], scores: np.ndarray, baseline: np.ndarray) -> FaithfulnessScore:
    summary = compare_to_baseline(scores, baseline, targets)
    row, _ = FaithfulnessScore.objects.update_or_create(
        model_version=version, method=method, layer=layer, metric=FaithfulnessScore.Metric.ROAD, split=split,
        defaults={"sample_size": len(scores), "percentiles": list(ROAD_PERCENTILES), "mean": summary.mean,
                  "std": summary.std, "baseline_mean": summary.baseline_mean, "beats_baseline": summary.beats})
    FaithfulnessFaceScore.objects.filter(score=row).delete()
    FaithfulnessFaceScore.objects.bulk_create([
        FaithfulnessFaceScore(score=row, face=face, target_label=int(t), road=float(s), baseline=float(b))
        for face, t, s, b in zip(faces, targets, scores, baseline, strict=True)])
    return row


FAITHFULNESS_RUN = WorkKind(name="faithfulness_run", label="faithfulness runs", model=FaithfulnessRun,
                            task="gallery.faithfulness", queue=QUEUE_BULK, work=faithfulness_run_work)
