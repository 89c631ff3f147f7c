"""A heatmap of one upload asked for on demand (the upload page's CAM switcher): the upload's own rules (it has a face,
and the face was predicted), then the one on-demand service, ``explanation_request``, which a worker answers."""

from __future__ import annotations

from apps.core.errors import Conflict
from apps.inference.services.explanations import ExplanationRequest, explanation_request
from apps.inference.services.predictions import cam_method_validate, target_label_validate

from .models import Upload
from .selectors import upload_results


class ExplanationUnavailable(Conflict):
    """A heatmap cannot be made for this upload yet (or ever: no face); the message says which."""

    code = "not_ready"


def upload_explanation_request(*, upload: Upload, method: str, target: int | str | None = None,
                               wait: float = 0.0) -> ExplanationRequest:
    """The heatmap of ``method`` for ``target`` (default: the predicted class) by the version that predicted the
    upload: stored, or sent to a worker and waited for up to ``wait`` seconds (``pending`` after that).

    ``UnknownCamMethod`` / ``TargetInvalid`` for a bad method or class; ``ExplanationUnavailable`` before the
    prediction, or for an upload without a face.
    """
    method = cam_method_validate(method)
    target_label = target_label_validate(target) if target not in (None, "") else None
    if upload.face_id is None:
        raise ExplanationUnavailable("this upload has no face (no face was found), so there is nothing to explain")
    (result,) = upload_results([upload])
    if result.prediction is None:
        raise ExplanationUnavailable("the prediction for this upload is not ready yet; try again shortly")
    if target_label is None:
        target_label = result.prediction.predicted_label
    return explanation_request(face=upload.face, version=result.prediction.model_version, method=method,
                               target_label=target_label, wait=wait)
