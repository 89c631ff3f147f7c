"""A whole dataset split predicted and explained as one job whose row counts progress."""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.utils import timezone

from apps.core.work import work_claim, work_fail, work_heartbeat, work_send
from apps.faces.models import Dataset, FaceImage

from ..kinds import SPLIT_JOB
from ..models import InferenceJob, ModelVersion
from ..selectors import model_version_active
from .predictions import NoActiveModelVersion, cam_methods_validate, predict_and_explain


def inference_job_create(*, dataset: Dataset, split: str, methods: list[str] | None = None,
                         version: ModelVersion | None = None, created_by=None) -> InferenceJob:
    methods = cam_methods_validate(methods)
    total = FaceImage.objects.filter(dataset=dataset, split=split).count()
    return InferenceJob.objects.create(dataset=dataset, split=split, methods=methods, model_version=version,
                                       total=total, created_by=created_by)


def inference_job_enqueue(*, dataset: Dataset, split: str, methods: list[str] | None = None,
                          version: ModelVersion | None = None, created_by=None) -> InferenceJob:
    """Create a job and send ``inference.predict_split`` (queue ``bulk``) for it once the transaction commits."""
    job = inference_job_create(dataset=dataset, split=split, methods=methods, version=version,
                               created_by=created_by)
    work_send(SPLIT_JOB, job.pk)
    return job


def inference_job_run(*, job_id: int, batch_size: int | None = None,
                      progress: Callable[[int], None] | None = None) -> InferenceJob | None:
    """Claim a queued job and predict its split batch by batch, counting progress on the row; None when another
    delivery has it or it is finished. A job queued again after a lost attempt resumes after its ``done`` faces
    (the batch that was interrupted is redone; what it had stored already is skipped)."""
    if not work_claim(SPLIT_JOB, job_id, started_at=timezone.now()):
        return None
    job = InferenceJob.objects.get(pk=job_id)
    version = job.model_version or model_version_active()
    if version is None:
        raise NoActiveModelVersion("no active model version")
    ids = list(FaceImage.objects.filter(dataset_id=job.dataset_id, split=job.split).order_by("pk")
               .values_list("pk", flat=True))
    InferenceJob.objects.filter(pk=job.pk).update(model_version=version, total=len(ids))
    size = batch_size or settings.INFERENCE_BATCH_SIZE
    with work_heartbeat(SPLIT_JOB, job.pk):
        for start in range(min(job.done, len(ids)), len(ids), size):
            chunk = ids[start:start + size]
            predict_and_explain(face_ids=chunk, methods=job.methods, version=version)
            InferenceJob.objects.filter(pk=job.pk).update(done=start + len(chunk), heartbeat_at=timezone.now())
            if progress is not None:
                progress(len(chunk))
    InferenceJob.objects.filter(pk=job.pk, status=InferenceJob.Status.RUNNING).update(
        status=InferenceJob.Status.DONE, finished_at=timezone.now(), error="")
    job.refresh_from_db()
    return job


def inference_job_fail(*, job_id: int, error: str) -> bool:
    return work_fail(SPLIT_JOB, job_id, error, from_statuses=(InferenceJob.Status.QUEUED, InferenceJob.Status.RUNNING))
