"""Celery tasks (queue ``gpu``): thin wrappers that take ids, call a service, retry transient errors and record a
final failure. Services import these at module level; these import services inside the function."""

from __future__ import annotations

import logging

from celery import shared_task
from django.db import DatabaseError, InterfaceError, OperationalError

logger = logging.getLogger(__name__)

MAX_RETRIES = 3


def _transient(exc: Exception) -> bool:
    """Worth another try: the database or storage blinked, or the registry is still being filled at first start."""
    from .services.predictions import NoActiveModelVersion

    return isinstance(exc, (OperationalError, InterfaceError, ConnectionError, TimeoutError, NoActiveModelVersion))


def _retry_or_raise(task, exc: Exception, **kwargs) -> None:
    if _transient(exc) and task.request.retries < task.max_retries:
        raise task.retry(exc=exc, countdown=2 ** task.request.retries, **kwargs)


@shared_task(name="inference.predict_and_explain", bind=True, max_retries=MAX_RETRIES)
def predict_and_explain_task(self, face_ids: list[int], methods: list[str] | None = None) -> dict[str, int]:
    from .services.predictions import predict_and_explain, prediction_failures_record

    try:
        predict_and_explain(face_ids=face_ids, methods=methods if methods is not None else ["gradcam"])
    except Exception as exc:
        _retry_or_raise(self, exc)
        logger.exception("predict_and_explain failed for %d faces", len(face_ids))
        try:
            prediction_failures_record(face_ids=face_ids, error=f"{type(exc).__name__}: {exc}")
        except DatabaseError:
            logger.exception("could not record the failure")
        raise
    return {"faces": len(face_ids)}


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


@shared_task(name="inference.predict_split", bind=True, max_retries=MAX_RETRIES)
def predict_split_task(self, dataset_id: int, split: str, methods: list[str] | None = None,
                       job_id: int | None = None) -> dict[str, object]:
    from apps.faces.models import Dataset

    from .models import InferenceJob
    from .services.jobs import inference_job_create, inference_job_fail, inference_job_run

    if job_id is None:
        job = inference_job_create(dataset=Dataset.objects.get(pk=dataset_id), split=split, methods=methods)
    else:
        job = InferenceJob.objects.get(pk=job_id)
    try:
        job = inference_job_run(job=job)
    except Exception as exc:
        if _transient(exc) and self.request.retries < self.max_retries:
            # Put the job back so that the retry can claim it again.
            InferenceJob.objects.filter(pk=job.pk).update(status=InferenceJob.Status.QUEUED)
            raise self.retry(exc=exc, countdown=2 ** self.request.retries,
                             args=(dataset_id, split, methods, job.pk)) from exc
        inference_job_fail(job_id=job.pk, error=f"{type(exc).__name__}: {exc}")
        raise
    return {"job": job.pk, "status": job.status, "done": job.done, "total": job.total}
