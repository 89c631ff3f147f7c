"""Prediction chunks: the units of interactive prediction work (an upload request's faces, a review page's faces).

A chunk row is created in the caller's transaction and sent to the ``interactive`` queue after it commits
(``apps.core.work``). The worker claims it, predicts and explains its faces (what is stored already is skipped, so a
redone chunk adds nothing twice), marks it done or failed, and announces ``prediction_chunk_finished`` so that
uploads record their state.
"""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from apps.core.work import work_claim, work_fail, work_heartbeat, work_send

from ..kinds import PREDICTION_CHUNK as KIND
from ..models import PredictionChunk
from ..signals import prediction_chunk_finished
from .predictions import cam_methods_validate, predict_and_explain, prediction_failures_record


def prediction_chunks_create(*, face_ids: list[int], methods: list[str] | None = None) -> list[PredictionChunk]:
    """Rows of up to ``INFERENCE_BATCH_SIZE`` faces each, sent to a worker once the current transaction commits."""
    methods = cam_methods_validate(methods)
    ids = [int(pk) for pk in face_ids]
    size = settings.INFERENCE_BATCH_SIZE
    chunks = [PredictionChunk.objects.create(face_ids=ids[start:start + size], methods=methods)
              for start in range(0, len(ids), size)]
    for chunk in chunks:
        work_send(KIND, chunk.pk)
    return chunks


def prediction_chunk_run(*, chunk_id: int) -> PredictionChunk | None:
    """The worker's part: claim the chunk (None if another delivery has it or it is finished), then predict."""
    if not work_claim(KIND, chunk_id, started_at=timezone.now()):
        return None
    chunk = PredictionChunk.objects.get(pk=chunk_id)
    with work_heartbeat(KIND, chunk_id):
        predict_and_explain(face_ids=chunk.face_ids, methods=chunk.methods)
    PredictionChunk.objects.filter(pk=chunk_id, status=PredictionChunk.Status.RUNNING).update(
        status=PredictionChunk.Status.DONE, finished_at=timezone.now(), error="")
    prediction_chunk_finished.send(sender=PredictionChunk, face_ids=chunk.face_ids)
    chunk.refresh_from_db()
    return chunk


def prediction_chunk_fail(*, chunk_id: int, error: str) -> bool:
    """The worker gave up on the chunk (an error that another try would not fix)."""
    return work_fail(KIND, chunk_id, error)


def prediction_chunk_failed(chunk_id: int, reason: str) -> None:
    """``on_failed`` hook: every face of the chunk gets its failure recorded, and the uploads hear of it."""
    chunk = PredictionChunk.objects.filter(pk=chunk_id).first()
    if chunk is None:
        return
    prediction_failures_record(face_ids=chunk.face_ids, error=reason)
    prediction_chunk_finished.send(sender=PredictionChunk, face_ids=chunk.face_ids)
