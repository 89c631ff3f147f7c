"""Prediction chunks: the units of interactive prediction work (an upload request's faces, a review page's faces).

A chunk row is created in the caller's transaction and sent to the ``interactive`` queue after it commits
(``apps.core.work``). The runner claims it, the worker predicts and explains its faces (what is stored already is
skipped, so a redone chunk adds nothing twice), and either way the outcome announces ``prediction_chunk_finished`` so
that uploads record their state.
"""

from __future__ import annotations

from django.conf import settings
from django.db import InterfaceError, OperationalError

from apps.core.work import QUEUE_INTERACTIVE, WorkKind, WorkProgress, work_send

from ..models import PredictionChunk
from ..signals import prediction_chunk_finished
from .predictions import NoActiveModelVersion, cam_methods_validate, predict_and_explain, prediction_failures_record


def prediction_chunks_create(*, face_ids: list[int], methods: list[str] | None = None) -> list[PredictionChunk]:
    """Rows of up to ``INFERENCE_BATCH_SIZE`` faces each, sent to a worker once the current transaction commits."""
    methods = cam_methods_validate(methods)
    ids = [int(pk) for pk in face_ids]
    size = settings.INFERENCE_BATCH_SIZE
    chunks = [PredictionChunk.objects.create(face_ids=ids[start:start + size], methods=methods)
              for start in range(0, len(ids), size)]
    for chunk in chunks:
        work_send(PREDICTION_CHUNK, chunk.pk)
    return chunks


def prediction_chunk_work(chunk: PredictionChunk, progress: WorkProgress) -> None:
    """The worker's part: predict and explain the chunk's faces (what is stored already is skipped)."""
    predict_and_explain(face_ids=chunk.face_ids, methods=chunk.methods)


def prediction_chunk_succeeded(chunk: PredictionChunk) -> None:
    """The uploads hear that their faces are predicted."""
    prediction_chunk_finished.send(sender=PredictionChunk, face_ids=chunk.face_ids)


def prediction_chunk_failed(chunk_id: int, reason: str) -> None:
    """Every face of the chunk gets its failure recorded, and the uploads hear of it."""
    chunk = PredictionChunk.objects.filter(pk=chunk_id).first()
    if chunk is None:
        return
    prediction_failures_record(face_ids=chunk.face_ids, error=reason)
    prediction_chunk_finished.send(sender=PredictionChunk, face_ids=chunk.face_ids)


PREDICTION_CHUNK = WorkKind(
    name="prediction_chunk", label="prediction chunks (uploads, review pages)", model=PredictionChunk,
    task="inference.predict_chunk", queue=QUEUE_INTERACTIVE, work=prediction_chunk_work, retry_countdown=2,
    # the registry may still be filling at first start: another try finds the active version
    transient=(OperationalError, InterfaceError, ConnectionError, TimeoutError, NoActiveModelVersion),
    on_succeeded=prediction_chunk_succeeded, on_failed=prediction_chunk_failed)
