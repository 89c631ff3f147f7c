"""Reads for the model registry, predictions and explanations."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.faces.models import FaceImage

from .models import Explanation, InferenceJob, ModelVersion, Prediction


def model_version_active() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()


def model_version_list() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("created_by").order_by("-created_at", "-id")


def model_version_get(*, pk: int) -> ModelVersion:
    """The version ``pk``; ``NotFound`` when there is none."""
    version = ModelVersion.objects.filter(pk=pk).first()
    if version is None:
        raise NotFound(f"no model version {pk}")
    return version


def _version_or_active(version: ModelVersion | None) -> ModelVersion | None:
    return version if version is not None else model_version_active()


def prediction_for(*, face: FaceImage, version: ModelVersion | None = None) -> Prediction | None:
    """The prediction of ``version`` (default: the active version) for ``face``, or None."""
    version = _version_or_active(version)
    if version is None:
        return None
    return Prediction.objects.filter(face=face, model_version=version).select_related("model_version").first()


def prediction_active_get(*, face: FaceImage) -> Prediction:
    """The active version's prediction for ``face``; ``NotFound`` saying why there is none (no active version, or
    not predicted by it yet)."""
    version = model_version_active()
    if version is None:
        raise NotFound("no active model version")
    prediction = prediction_for(face=face, version=version)
    if prediction is None:
        raise NotFound("not predicted by the active version yet")
    return prediction


def explanations_for(*, face: FaceImage, version: ModelVersion | None = None) -> QuerySet[Explanation]:
    """Stored explanations of ``face`` by ``version`` (default: the active one), by method then target class."""
    version = _version_or_active(version)
    if version is None:
        return Explanation.objects.none()
    return Explanation.objects.filter(face=face, model_version=version).order_by("method", "target_label")


def inference_job_list() -> QuerySet[InferenceJob]:
    return InferenceJob.objects.select_related("dataset", "model_version")
