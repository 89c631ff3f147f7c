"""Celery tasks of the inference app (``apps.core.work``): each names its kind, or the service a hint runs."""

from __future__ import annotations

from django.db import InterfaceError, OperationalError

from apps.core.work import QUEUE_INTERACTIVE, platform_task, work_task
from ml.models import DEFAULT_CAM_LAYER

from .models import ModelVersion
from .services.chunks import PREDICTION_CHUNK
from .services.explanations import explanation_make
from .services.jobs import SPLIT_JOB
from .services.predictions import EXPLAIN_ON_DEMAND_TASK, EXPLAIN_TASK, NoActiveModelVersion, explanations_compute

predict_chunk_task = work_task(PREDICTION_CHUNK)
predict_split_task = work_task(SPLIT_JOB)

# Hints, no row behind them: a lost one is sent again by the next page that needs it. Retried on transient errors.
HINT_RETRY = {"autoretry_for": (OperationalError, InterfaceError, ConnectionError, TimeoutError, NoActiveModelVersion),
              "max_retries": 3, "retry_backoff": 1, "retry_jitter": False}


@platform_task(EXPLAIN_TASK, queue=QUEUE_INTERACTIVE, **HINT_RETRY)
def explain_task(version_id: int, method: str, pairs: list[list[int]]) -> dict[str, int]:
    """Heatmaps of ``method`` by version ``version_id`` for (face id, target class) pairs (review overlays)."""
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        return {"computed": 0}  # the version was deleted meanwhile: nothing to explain with
    return {"computed": explanations_compute(version=version, method=method, pairs=[(f, t) for f, t in pairs])}


@platform_task(EXPLAIN_ON_DEMAND_TASK, queue=QUEUE_INTERACTIVE, **HINT_RETRY)
def explain_on_demand_task(face_id: int, version_id: int, method: str, target: int | None = None,
                           layer: str = DEFAULT_CAM_LAYER) -> dict[str, int]:
    """One heatmap a person asked for (``apps.inference.services.explanations``). ``target`` None: the predicted
    class, predicting the face first. ``layer`` defaults to the last one (messages sent before layers existed).
    Idempotent: what is stored by then is skipped."""
    return {"computed": explanation_make(face_id=face_id, version_id=version_id, method=method, target_label=target,
                                         layer=layer)}
