"""A heatmap of one face of an upload asked for on demand (the upload page's CAM switcher): the upload's own rules (it
has that face, and the face was predicted), then the one on-demand service, ``explanation_request``, which a worker
answers."""

from __future__ import annotations

from apps.core.errors import Conflict
from apps.inference.services.explanations import ExplanationRequest, explanation_request
from apps.inference.services.predictions import cam_method_validate, target_label_validate

from .models import Upload
from .selectors import upload_face_get, upload_results


class ExplanationUnavailable(Conflict):
    """A heatmap cannot be made for this upload yet (or ever: no face); the message says which."""

    code = "not_ready"


def upload_explanation_request(*, upload: Upload, method: str, target: int | str | None = None, face: int = 0,
                               wait: float = 0.0) -> ExplanationRequest:
    """The heatmap of ``method`` for ``target`` (default: the predicted class) of face ``face`` of the upload (0, the
    largest, by default) by the version that predicted it: stored, or sent to a worker and waited for up to ``wait``
    seconds (``pending`` after that).

    ``UnknownCamMethod`` / ``TargetInvalid`` for a bad method or class; ``ExplanationUnavailable`` before the
    prediction, or for an upload without a face; ``NotFound`` for a face index the upload does not have.
    """
    method = cam_method_validate(method)
    target_label = target_label_validate(target) if target not in (None, "") else None
    if upload.face_id is None:
        raise ExplanationUnavailable("this upload has no face (no face was found), so there is nothing to explain")
    upload_face = upload_face_get(upload=upload, index=face)
    (result,) = upload_results([upload])
    prediction = next((f.prediction for f in result.faces if f.upload_face.pk == upload_face.pk), None)
    if prediction is None:
        raise ExplanationUnavailable(f"the prediction for face {face} of this upload is not ready yet; try again "
                                     "shortly")
    if target_label is None:
        target_label = prediction.predicted_label
    return explanation_request(face=upload_face.face, version=prediction.model_version, method=method,
                               target_label=target_label, wait=wait)
