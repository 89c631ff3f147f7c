"""The active model's view of a review item: its prediction and the stored Grad-CAM overlays for the current label
and for the suggestion.

Reading it never runs the model: an overlay that is not stored yet is listed as ``pending``, and
``review_item_overlays_enqueue`` sends it to a worker (``inference.explain``). Leasing items queues their overlays
too, so they are usually stored before the reviewer reaches them. After a scoring run, the bulk worker computes them
ahead for the head of the queue (``review_overlays_precompute``, ``REVIEW_OVERLAY_PRECOMPUTE`` items).
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.core.cache import cache

from apps.inference.models import Explanation, ModelVersion
from apps.inference.selectors import model_version_active, prediction_for
from apps.inference.services.chunks import prediction_chunks_create
from apps.inference.services.predictions import explanations_compute, explanations_enqueue, predict_and_explain
from ml.labels import CLASSES

from .models import ReviewItem
from .services import OPEN_STATUSES

CAM_METHOD = "gradcam"
PRECOMPUTE_BATCH = 128  # faces per model batch when computing ahead


def _no_model(reason: str) -> dict:
    return {"model_active": False, "reason": reason, "model_version": None, "prediction": None, "overlays": {},
            "pending": []}


def _targets(item: ReviewItem, predicted: int | None) -> dict[str, int | None]:
    suggestion = item.suggested_label if item.suggested_label is not None else predicted
    return {"current": item.face.current_label, "suggestion": suggestion}


def review_item_model_view(*, item: ReviewItem, request=None) -> dict:
    """Prediction and stored overlays of the active version; ``pending`` names the roles not stored yet."""
    version = model_version_active()
    if version is None:
        return _no_model("No model version is active.")
    face = item.face
    prediction = prediction_for(face=face, version=version)
    view = {"model_active": True, "reason": "", "model_version": {"id": version.pk, "name": version.name},
            "prediction": None, "overlays": {}, "pending": []}
    if prediction is not None:
        view["prediction"] = {"label": prediction.predicted_label, "label_name": CLASSES[prediction.predicted_label],
                              "confidence": prediction.confidence, "probabilities": prediction.probabilities}
    targets = _targets(item, prediction.predicted_label if prediction else None)
    stored = {e.target_label: e for e in Explanation.objects.filter(
        face=face, model_version=version, method=CAM_METHOD,
        target_label__in=[t for t in targets.values() if t is not None])}
    for role, target in targets.items():
        if target is None:
            if prediction is None:  # the suggestion is the prediction, which is not there yet
                view["pending"].append(role)
            continue
        explanation = stored.get(target)
        if explanation is None:
            view["pending"].append(role)
            continue
        url = explanation.overlay.url
        view["overlays"][role] = {"label": target, "label_name": CLASSES[target],
                                  "url": request.build_absolute_uri(url) if request is not None else url}
    return view


def review_item_overlays_enqueue(*, items: Iterable[ReviewItem], version: ModelVersion | None = None) -> int:
    """Queue the missing overlays (and the missing prediction) of ``items`` for the active version; how many faces
    were sent. A face sent less than ``WORK_RESEND_AFTER`` seconds ago is not sent again (a lost message is only a
    hint: the next lease sends it again after that)."""
    version = version or model_version_active()
    if version is None:
        return 0
    items = list(items)
    faces = {item.face_id for item in items}
    predicted = dict(version.predictions.filter(face_id__in=faces).values_list("face_id", "predicted_label"))
    stored = set(Explanation.objects.filter(model_version=version, method=CAM_METHOD, face_id__in=faces)
                 .values_list("face_id", "target_label"))
    pairs, unpredicted = [], []
    for item in items:
        if item.face_id not in predicted:
            unpredicted.append(item.face_id)  # the worker predicts, then explains the predicted and current class
        for target in _targets(item, predicted.get(item.face_id)).values():
            if target is not None and (item.face_id, target) not in stored:
                pairs.append((item.face_id, target))
    sent = {f for f in unpredicted + [f for f, _ in pairs]
            if cache.add(f"review-overlays:{version.pk}:{f}", 1, timeout=settings.WORK_RESEND_AFTER)}
    unpredicted = [f for f in unpredicted if f in sent]
    pairs = [(f, t) for f, t in pairs if f in sent]
    if unpredicted:
        prediction_chunks_create(face_ids=unpredicted, methods=[CAM_METHOD])
    if pairs:
        explanations_enqueue(version=version, method=CAM_METHOD, pairs=pairs)
    return len(sent)


def review_overlays_precompute(*, limit: int, version: ModelVersion | None = None) -> dict[str, int]:
    """Compute, in this process, what the review page shows for the first ``limit`` open items in queue order: the
    active version's prediction and the Grad-CAM overlays for the current label and the suggestion. What is stored
    already is skipped. For the bulk worker after a scoring run; leasing still queues whatever is missing."""
    version = version or model_version_active()
    if version is None or limit <= 0:
        return {"items": 0, "predicted": 0, "overlays": 0}
    items = list(ReviewItem.objects.filter(status__in=OPEN_STATUSES).select_related("face")
                 .order_by("priority", "pk")[:limit])
    predicted_before = version.predictions.filter(face_id__in=[i.face_id for i in items]).count()
    overlays = 0
    for start in range(0, len(items), PRECOMPUTE_BATCH):
        batch = items[start:start + PRECOMPUTE_BATCH]
        face_ids = [item.face_id for item in batch]
        predict_and_explain(face_ids=face_ids, methods=[], version=version)  # predictions only
        predicted = dict(version.predictions.filter(face_id__in=face_ids).values_list("face_id", "predicted_label"))
        pairs = [(item.face_id, target) for item in batch
                 for target in _targets(item, predicted.get(item.face_id)).values() if target is not None]
        overlays += explanations_compute(version=version, method=CAM_METHOD, pairs=pairs)
    predicted_after = version.predictions.filter(face_id__in=[i.face_id for i in items]).count()
    return {"items": len(items), "predicted": predicted_after - predicted_before, "overlays": overlays}
