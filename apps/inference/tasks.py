"""Celery tasks (queues ``interactive`` and ``bulk``, see CELERY_TASK_ROUTES): thin wrappers that take ids, call a
service, put a row back on transient errors and record a final failure. They import services inside the function."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import InterfaceError, OperationalError

logger = logging.getLogger(__name__)

MAX_RETRIES = 3


def _transient(exc: Exception) -> bool:
    """Worth another try: the database or storage blinked, or the registry is still being filled at first start."""
    from .services.predictions import NoActiveModelVersion

    return isinstance(exc, (OperationalError, InterfaceError, ConnectionError, TimeoutError, NoActiveModelVersion))


def _retry_or_raise(task, exc: Exception, **kwargs) -> None:
    if _transient(exc) and task.request.retries < task.max_retries:
        raise task.retry(exc=exc, countdown=2 ** task.request.retries, **kwargs)


def _run_row(kind: str, pk: int, run, fail, *, countdown: float) -> dict[str, object]:
    """Run a unit of work; a transient error puts the row back to queued (sent again after ``countdown`` s) while
    attempts are left, any other error fails it with the reason and is re-raised."""
    from apps.core.work import work_release

    try:
        row = run(pk)
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
        if _transient(exc) and work_release(kind, pk, error, countdown=countdown) == "queued":
            return {kind: pk, "status": "released"}
        logger.exception("%s %s failed", kind, pk)
        fail(pk, error)
        raise
    return {kind: pk, "status": row.status if row else "not claimed"}


@shared_task(name="inference.predict_chunk")
def predict_chunk_task(chunk_id: int) -> dict[str, object]:
    """Predict and explain one chunk of uploaded faces (queue ``interactive``); its row is the truth."""
    from .services.chunks import prediction_chunk_fail, prediction_chunk_run

    return _run_row("prediction_chunk", chunk_id, lambda pk: prediction_chunk_run(chunk_id=pk),
                    lambda pk, error: prediction_chunk_fail(chunk_id=pk, error=error), countdown=2)


@shared_task(name="inference.explain", bind=True, max_retries=MAX_RETRIES)
def explain_task(self, version_id: int, method: str, pairs: list[list[int]]) -> dict[str, int]:
    """Heatmaps of ``method`` by version ``version_id`` for (face id, target class) pairs (review overlays)."""
    from .models import ModelVersion
    from .services.predictions import explanations_compute

    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None:
        return {"computed": 0}  # the version was deleted meanwhile: nothing to explain with
    try:
        computed = explanations_compute(version=version, method=method, pairs=[(f, t) for f, t in pairs])
    except Exception as exc:
        _retry_or_raise(self, exc)
        logger.exception("explain failed for %d pairs", len(pairs))
        raise
    return {"computed": computed}


@shared_task(name="inference.predict_split")
def predict_split_task(job_id: int) -> dict[str, object]:
    """Predict and explain a whole split (queue ``bulk``); a job put back after a transient error or a lost worker
    resumes after its finished batches."""
    from .services.jobs import inference_job_fail, inference_job_run

    return _run_row("split_job", job_id, lambda pk: inference_job_run(job_id=pk),
                    lambda pk, error: inference_job_fail(job_id=pk, error=error), countdown=5)


@shared_task(name="inference.explain_on_demand", bind=True, max_retries=MAX_RETRIES)
def explain_on_demand_task(self, face_id: int, version_id: int, method: str,
                           target: int | None = None) -> dict[str, int]:
    """One heatmap a person asked for (queue ``interactive``; ``apps.inference.services.explanations``). ``target``
    None: the predicted class, predicting the face first. Idempotent: what is stored by then is skipped."""
    from .services.explanations import explanation_make

    try:
        computed = explanation_make(face_id=face_id, version_id=version_id, method=method, target_label=target)
    except Exception as exc:
        _retry_or_raise(self, exc)
        logger.exception("on-demand %s heatmap of face %s failed", method, face_id)
        raise
    return {"computed": computed}
