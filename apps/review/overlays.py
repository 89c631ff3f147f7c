"""The active model's view of a review item: its prediction and Grad-CAM overlays for the current label and
for the suggestion. Goes through ``apps.inference``'s public selectors and services only; without that app, or
without an active model version, it says so and the page shows the scoring run's suggestion alone."""

from __future__ import annotations

import logging

from django.apps import apps as django_apps

from apps.faces.labels import CLASSES

from .models import ReviewItem

logger = logging.getLogger(__name__)
CAM_METHOD = "gradcam"


def _no_model(reason: str) -> dict:
    return {"model_active": False, "reason": reason, "model_version": None, "prediction": None, "overlays": {}}


def review_item_model_view(*, item: ReviewItem, request=None) -> dict:
    if not django_apps.is_installed("apps.inference"):
        return _no_model("The inference app is not installed.")
    from apps.inference.selectors import model_version_active, prediction_for
    from apps.inference.services import explanation_get_or_compute

    version = model_version_active()
    if version is None:
        return _no_model("No model version is active.")
    face = item.face
    prediction = prediction_for(face=face, version=version)
    view = {"model_active": True, "reason": "", "model_version": {"id": version.pk, "name": version.name},
            "prediction": None, "overlays": {}}
    if prediction is not None:
        view["prediction"] = {"label": prediction.predicted_label, "label_name": CLASSES[prediction.predicted_label],
                              "confidence": prediction.confidence, "probabilities": prediction.probabilities}
    targets = {"current": face.current_label, "suggestion": item.suggested_label}
    if targets["suggestion"] is None and prediction is not None:
        targets["suggestion"] = prediction.predicted_label
    for role, target in targets.items():
        if target is None:
            continue
        try:
            explanation = explanation_get_or_compute(face=face, version=version, method=CAM_METHOD,
                                                     target_label=target)
        except Exception:  # a broken checkpoint must not take the review page down
            logger.exception("Grad-CAM for face %s, target %s failed", face.pk, target)
            continue
        url = explanation.overlay.url
        view["overlays"][role] = {"label": target, "label_name": CLASSES[target],
                                  "url": request.build_absolute_uri(url) if request is not None else url}
    return view
