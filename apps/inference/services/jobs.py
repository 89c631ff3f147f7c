"""A whole dataset split predicted and explained as one job whose row counts progress."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from apps.faces.models import Dataset, FaceImage

from ..models import InferenceJob, ModelVersion
from ..selectors import model_version_active
from ..tasks import predict_split_task
from .predictions import NoActiveModelVersion, cam_methods_validate, predict_and_explain


def inference_job_create(*, dataset: Dataset, split: str, methods: list[str] | None = None,
                         version: ModelVersion | None = None, created_by=None) -> InferenceJob:
    methods = cam_methods_validate(methods)
    total = FaceImage.objects.filter(dataset=dataset, split=split).count()
    return InferenceJob.objects.create(dataset=dataset, split=split, methods=methods, model_version=version,
                                       total=total, created_by=created_by)


def inference_job_enqueue(*, dataset: Dataset, split: str, methods: list[str] | None = None,
                          version: ModelVersion | None = None, created_by=None) -> InferenceJob:
    """Create a job and queue ``inference.predict_split`` for it once the transaction commits."""
    job = inference_job_create(dataset=dataset, split=split, methods=methods, version=version,
                               created_by=created_by)
    transaction.on_commit(lambda: predict_split_task.delay(dataset.pk, split, job.methods, job.pk))
    return job


def inference_job_run(*, job: InferenceJob, batch_size: int | None = None,
                      progress: Callable[[int], None] | None = None) -> InferenceJob:
    """Claim a queued job and predict its split batch by batch, counting progress on the row."""
    claimed = InferenceJob.objects.filter(pk=job.pk, status=InferenceJob.Status.QUEUED).update(
        status=InferenceJob.Status.RUNNING, started_at=timezone.now())
    if claimed != 1:
        job.refresh_from_db()
        return job  # another worker took it, or it already ran
    version = job.model_version or model_version_active()
    if version is None:
        raise NoActiveModelVersion("no active model version")
    ids = list(FaceImage.objects.filter(dataset_id=job.dataset_id, split=job.split).order_by("pk")
               .values_list("pk", flat=True))
    InferenceJob.objects.filter(pk=job.pk).update(model_version=version, total=len(ids), done=0)
    size = batch_size or settings.INFERENCE_BATCH_SIZE
    for start in range(0, len(ids), size):
        chunk = ids[start:start + size]
        predict_and_explain(face_ids=chunk, methods=job.methods, version=version)
        InferenceJob.objects.filter(pk=job.pk).update(done=F("done") + len(chunk))
        if progress is not None:
            progress(len(chunk))
    InferenceJob.objects.filter(pk=job.pk).update(status=InferenceJob.Status.DONE, finished_at=timezone.now())
    job.refresh_from_db()
    return job


def inference_job_fail(*, job_id: int, error: str) -> None:
    InferenceJob.objects.filter(pk=job_id).update(status=InferenceJob.Status.FAILED, error=error[:2000],
                                                  finished_at=timezone.now())

