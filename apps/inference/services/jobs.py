"""A whole dataset split predicted and explained as one job whose row counts progress."""

from __future__ import annotations

from django.conf import settings
from django.db import InterfaceError, OperationalError

from apps.core.work import QUEUE_BULK, WorkKind, WorkProgress, work_run, work_send
from apps.faces.models import Dataset, FaceImage

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


def inference_job_work(job: InferenceJob, progress: WorkProgress, *, batch_size: int | None = None) -> None:
    """Predict the job's split batch by batch, counting progress on the row. A job queued again after a lost attempt
    resumes after its ``done`` faces (the batch that was interrupted is redone; what it had stored is skipped)."""
    version = job.model_version or model_version_active()
    if version is None:
        raise NoActiveModelVersion("no active model version")
    ids = list(FaceImage.objects.filter(dataset_id=job.dataset_id, split=job.split).order_by("pk")
               .values_list("pk", flat=True))
    InferenceJob.objects.filter(pk=job.pk).update(model_version=version, total=len(ids))
    size = batch_size or settings.INFERENCE_BATCH_SIZE
    for start in range(min(job.done, len(ids)), len(ids), size):
        chunk = ids[start:start + size]
        predict_and_explain(face_ids=chunk, methods=job.methods, version=version)
        done = start + len(chunk)
        progress({"kind": "predict", "done": done, "total": len(ids)}, force=True, done=done)


def inference_job_run(*, job_id: int, batch_size: int | None = None, echo=None) -> InferenceJob | None:
    """Run a queued job here (the command, tests): None when another delivery has it or it is finished; a failure is
    recorded on the row and raised."""
    return work_run(SPLIT_JOB, job_id, echo=echo, raise_errors=True,
                    **({"batch_size": batch_size} if batch_size else {}))


SPLIT_JOB = WorkKind(
    name="split_job", label="split prediction jobs", model=InferenceJob, task="inference.predict_split",
    queue=QUEUE_BULK, work=inference_job_work,
    transient=(OperationalError, InterfaceError, ConnectionError, TimeoutError, NoActiveModelVersion))
