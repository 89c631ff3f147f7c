"""Reads for the model registry, predictions and explanations."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.faces.models import FaceImage

from .models import Explanation, InferenceJob, ModelVersion, Prediction, PredictionFailure


def model_version_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("created_by").order_by("-created_at", "-id")


def _version_or_active(version: ModelVersion | None) -> ModelVersion | None:
    return version if version is not None else model_version_active()


def prediction_for(*, face: FaceImage, version: ModelVersion | None = None) -> Prediction | None:
    """The prediction of ``version`` (default: the active version) for ``face``, or None."""
    version = _version_or_active(version)
    if version is None:
        return None
    return Prediction.objects.filter(face=face, model_version=version).select_related("model_version").first()


def explanations_for(*, face: FaceImage, version: ModelVersion | None = None) -> QuerySet[Explanation]:
    """Stored explanations of ``face`` by ``version`` (default: the active one), by method then target class."""
    version = _version_or_active(version)
    if version is None:
        return Explanation.objects.none()
    return Explanation.objects.filter(face=face, model_version=version).order_by("method", "target_label")


def prediction_failure_for(*, face: FaceImage) -> PredictionFailure | None:
    """The latest recorded failure for ``face`` (a task that gave up after its retries), or None."""
    return PredictionFailure.objects.filter(face=face).first()


def inference_job_list() -> QuerySet[InferenceJob]:
    return InferenceJob.objects.select_related("dataset", "model_version")
