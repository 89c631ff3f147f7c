"""The inference app's units of work (``apps.core.work``), registered in ``InferenceConfig.ready``."""

from __future__ import annotations

from apps.core.work import WorkKind

PREDICTION_CHUNK = WorkKind(
    name="prediction_chunk", label="prediction chunks (uploads, review pages)", model="inference.PredictionChunk",
    task="inference.predict_chunk",
    on_failed="apps.inference.services.chunks.prediction_chunk_failed")
SPLIT_JOB = WorkKind(
    name="split_job", label="split prediction jobs", model="inference.InferenceJob", task="inference.predict_split")

KINDS = (PREDICTION_CHUNK, SPLIT_JOB)
