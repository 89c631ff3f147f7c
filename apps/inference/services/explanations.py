"""One heatmap asked for on demand (the face pages' "show heatmap", the upload page's CAM switcher, the API).

The web process never runs the model, not for the heatmap and not for the prediction that picks the default class:
a stored heatmap is returned at once; a missing one is sent to a worker (``inference.explain_on_demand``) and waited
for, polling the database, for up to ``wait`` seconds; after that the answer is "pending" and the client asks again.
Identical requests within ``WORK_RESEND_AFTER`` seconds (the one resend window, as for job rows) send one task
between them; one after that sends it again, since a message is only a hint (lost with a broker restart, or sent
while the broker was down) and the worker skips what is stored by then.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db import transaction

from apps.core.waiting import wait_until
from apps.core.work import task_send, tasks_eager
from apps.faces.models import FaceImage
from ml.models import DEFAULT_CAM_LAYER

from ..models import Explanation, ModelVersion, Prediction
from ..selectors import model_version_active
from .predictions import (
    EXPLAIN_ON_DEMAND_TASK,
    NoActiveModelVersion,
    cam_layer_validate,
    cam_method_validate,
    explanations_compute,
    predict_and_explain,
    target_label_validate,
)

logger = logging.getLogger(__name__)



@dataclass(frozen=True)
class ExplanationRequest:
    """What a request for one heatmap found: the stored row, or nothing yet (``pending``: a worker has it)."""

    face: FaceImage
    version: ModelVersion
    method: str
    target_label: int | None  # None: the predicted class, unknown until a worker has predicted the face
    explanation: Explanation | None
    layer: str = DEFAULT_CAM_LAYER

    @property
    def pending(self) -> bool:
        return self.explanation is None


def explanation_max_wait() -> float:
    """The longest a request may wait for a heatmap (the setting ``INFERENCE_EXPLAIN_MAX_WAIT_SECONDS``)."""
    return float(settings.INFERENCE_EXPLAIN_MAX_WAIT_SECONDS)


def explanation_request(*, face: FaceImage, version: ModelVersion | None, method: str,
                        target_label: int | str | None, wait: float = 0.0,
                        layer: str = DEFAULT_CAM_LAYER) -> ExplanationRequest:
    """The heatmap of ``face`` by ``version`` (None: the active one) with ``method`` on ``layer`` for
    ``target_label`` (None: the predicted class): the stored one, else sent to a worker and waited for up to ``wait``
    seconds (bounded by ``explanation_max_wait``). ``UnknownCamMethod``/``CamLayerInvalid``/``TargetInvalid`` for bad
    input, ``NoActiveModelVersion``."""
    method = cam_method_validate(method)
    layer = cam_layer_validate(layer, method=method)
    asked = None if target_label is None else target_label_validate(target_label)
    version = version or model_version_active()
    if version is None:
        raise NoActiveModelVersion("no active model version")
    target, explanation = _stored(face_id=face.pk, version=version, method=method, layer=layer, target_label=asked)
    if explanation is None:
        _send(face_id=face.pk, version_id=version.pk, method=method, layer=layer, target_label=target,
              key=_sent_key(face_id=face.pk, version_id=version.pk, method=method, layer=layer, target_label=asked))
        target, explanation = _wait(face_id=face.pk, version=version, method=method, layer=layer, target_label=asked,
                                    seconds=min(max(0.0, float(wait)), explanation_max_wait()))
    return ExplanationRequest(face=face, version=version, method=method, target_label=target,
                              explanation=explanation, layer=layer)


def explanation_make(*, face_id: int, version_id: int, method: str, target_label: int | None,
                     layer: str = DEFAULT_CAM_LAYER) -> int:
    """The worker's side of ``explanation_request``: predict the face first when ``target_label`` is None (its
    predicted class is the target), then store the heatmap unless it is stored already; how many were computed.
    A face or version deleted meanwhile is nothing to do."""
    version = ModelVersion.objects.filter(pk=version_id).first()
    if version is None or not FaceImage.objects.filter(pk=face_id).exists():
        return 0
    if target_label is None:
        predict_and_explain(face_ids=[face_id], methods=[], version=version)  # skipped when already predicted
        target_label = Prediction.objects.get(face_id=face_id, model_version=version).predicted_label
    return explanations_compute(version=version, method=method, pairs=[(face_id, target_label)], layer=layer)


def _stored(*, face_id: int, version: ModelVersion, method: str, layer: str,
            target_label: int | None) -> tuple[int | None, Explanation | None]:
    """(target, stored explanation or None); the predicted class stands for a None target once it is known."""
    if target_label is None:
        target_label = (Prediction.objects.filter(face_id=face_id, model_version=version)
                        .values_list("predicted_label", flat=True).first())
        if target_label is None:
            return None, None
    explanation = Explanation.objects.filter(face_id=face_id, model_version=version, method=method, layer=layer,
                                             target_label=target_label).first()
    return target_label, explanation


def _wait(*, face_id: int, version: ModelVersion, method: str, layer: str, target_label: int | None,
          seconds: float) -> tuple[int | None, Explanation | None]:
    if transaction.get_connection().in_atomic_block:
        seconds = 0.0  # the task is sent when the caller's transaction commits: nothing can land before
    return wait_until(lambda: _stored(face_id=face_id, version=version, method=method, layer=layer,
                                      target_label=target_label),
                      done=lambda found: found[1] is not None, seconds=seconds)


def _sent_key(*, face_id: int, version_id: int, method: str, layer: str, target_label: int | None) -> str:
    target = "predicted" if target_label is None else target_label
    return f"explain-on-demand:{version_id}:{face_id}:{method}:{layer}:{target}"


def _send(*, face_id: int, version_id: int, method: str, layer: str, target_label: int | None, key: str) -> None:
    """Send the task once the current transaction commits (at once outside one), unless an identical request sent
    it within ``WORK_RESEND_AFTER`` seconds. A broker that is down never fails the request: the mark is dropped again,
    so that the client's next request sends it."""
    if not cache.add(key, 1, timeout=settings.WORK_RESEND_AFTER):
        return
    eager = tasks_eager()

    def send() -> None:
        try:
            # The last layer keeps the message of before layers existed (workers of either age take it).
            extra = () if layer == DEFAULT_CAM_LAYER else (layer,)
            task_send(EXPLAIN_ON_DEMAND_TASK, (face_id, version_id, method, target_label, *extra))
        except Exception as exc:
            cache.delete(key)
            if eager:
                raise  # inline execution (tests): the task's own error, not the broker's
            logger.warning("inference.explain_on_demand for face %s not sent (the next request sends it again): "
                           "%s: %s", face_id, type(exc).__name__, exc)

    transaction.on_commit(send, robust=not eager)
