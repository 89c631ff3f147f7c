"""Predictions and stored heatmaps: validation of CAM methods and classes, what is queued for workers, and the
batch work the workers do.

The slow parts (loading the model, running it, encoding PNGs, writing files) happen outside transactions; each step
then records its rows in one short transaction. Predictions and explanations are keyed by (face, version[, method,
target]) and what already exists is never computed again.
"""

from __future__ import annotations

import io
import logging
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np
from django.core.files.storage import default_storage
from django.db import DatabaseError, transaction
from PIL import Image

from apps.core.errors import InvalidInput, Unavailable
from apps.core.files import storage_save_atomic
from apps.core.work import task_send_after_commit
from apps.faces.models import FaceImage
from apps.faces.selectors import face_pixels
from ml import explain as ml_explain
from ml.evaluate import predict_proba
from ml.labels import class_index
from ml.models import CAM_LAYERS as CAM_LAYER_NAMES
from ml.models import DEFAULT_CAM_LAYER

from .. import runtime
from ..models import Explanation, ModelVersion, Prediction, PredictionFailure, explanation_overlay_path
from ..selectors import model_version_active

CAM_METHODS: tuple[str, ...] = tuple(ml_explain.METHODS)
CAM_LAYERS: tuple[str, ...] = CAM_LAYER_NAMES
FINE_LAYER_METHODS: tuple[str, ...] = tuple(sorted(ml_explain.LAYER_METHODS["fine"]))
DEFAULT_METHODS: list[str] = [ml_explain.DEFAULT_METHOD]
OVERLAY_SIZE = 192
OVERLAY_NAMESPACE = uuid.UUID("5d0c8a52-4b0e-4d8e-9a37-6f2f3c1e8b11")  # of the overlay names (uuid5)
logger = logging.getLogger(__name__)

# Hint tasks (no row behind them) of this app's services, sent by name: services never import a tasks module.
EXPLAIN_TASK = "inference.explain"  # review overlays: heatmaps for (face, target) pairs
EXPLAIN_ON_DEMAND_TASK = "inference.explain_on_demand"  # one heatmap a person asked for


class UnknownCamMethod(InvalidInput):
    """A CAM method name that ``ml.explain`` does not provide; the message lists the choices."""

    code = "unknown_method"


class CamLayerInvalid(InvalidInput):
    """An unknown CAM layer, or one the method does not suit (only HiResCAM and LayerCAM take the fine layer)."""

    code = "bad_layer"


class TargetInvalid(InvalidInput):
    """Not one of the seven classes."""

    code = "bad_target"


class NoActiveModelVersion(Unavailable):
    """Nothing to predict with: no version is active."""

    code = "no_active_model"


# --- validation ----------------------------------------------------------------------------------------------------

def cam_method_validate(method: str) -> str:
    name = str(method).strip().lower()
    if name not in ml_explain.METHODS:
        raise UnknownCamMethod(f"unknown CAM method {method!r}; choose one of: {', '.join(CAM_METHODS)}")
    return name


def cam_methods_validate(methods: Iterable[str] | None) -> list[str]:
    """None means the default (GradCAM); an empty list means predictions only. Duplicates are dropped."""
    if methods is None:
        return list(DEFAULT_METHODS)
    if isinstance(methods, str):
        methods = [methods]
    return list(dict.fromkeys(cam_method_validate(m) for m in methods))


def cam_layer_validate(layer: str | None, *, method: str) -> str:
    """``layer`` (None or empty: ``last``) if it suits ``method`` (``ml.explain.LAYER_METHODS``); ``CamLayerInvalid``
    naming the choices otherwise."""
    name = str(layer or DEFAULT_CAM_LAYER).strip().lower()
    try:
        ml_explain.layer_check(method, name)
    except ValueError as exc:
        raise CamLayerInvalid(str(exc)) from None
    return name


def target_label_validate(target: int | str) -> int:
    """0-6 or a class name (``happy``); ``TargetInvalid`` naming the choices otherwise."""
    try:
        return class_index(target)
    except ValueError as exc:
        raise TargetInvalid(str(exc)) from None


# --- predictions and explanations ----------------------------------------------------------------------------------

def _overlay_png(overlay: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(overlay).save(buffer, format="PNG")
    return buffer.getvalue()


def _overlay_name(row: Explanation) -> str:
    """The overlay's storage name, derived from the row's unique key (face, version, method, layer, target): a batch
    redone after a killed worker writes the same files again instead of leaving the first attempt's behind. The last
    layer keeps the names it had before layers existed."""
    layer = "" if row.layer == DEFAULT_CAM_LAYER else f"/{row.layer}"
    key = uuid.uuid5(OVERLAY_NAMESPACE, f"{row.face_id}/{row.model_version_id}/{row.method}{layer}/{row.target_label}")
    return explanation_overlay_path(row, f"{key.hex}.png")


def _explanations_compute(*, version: ModelVersion, faces: Sequence[FaceImage], arrays: np.ndarray,
                          targets: Sequence[int], method: str, layer: str = DEFAULT_CAM_LAYER) -> list[Explanation]:
    """Run ``method`` for each (face, target), store the overlay PNGs and return the unsaved rows. A failed write (a
    full disk) raises ``FileWriteError`` and removes the overlays this call stored that no row references."""
    model = runtime.loaded(version).model
    with runtime.cam_lock:
        result = ml_explain.explain(model, arrays, method=method, targets=[int(t) for t in targets], layer=layer,
                                    overlay_size=OVERLAY_SIZE)
    rows = []
    try:
        for face, target, cam, overlay in zip(faces, targets, result.maps, result.overlays, strict=True):
            row = Explanation(face=face, model_version=version, method=method, layer=layer, target_label=int(target),
                              raw_map=ml_explain.map_to_uint8(cam).tobytes())
            row.overlay.name = storage_save_atomic(_overlay_name(row), _overlay_png(overlay), what="heatmaps")
            rows.append(row)
    except BaseException:
        _overlays_discard_unreferenced([row.overlay.name for row in rows])
        raise
    return rows


def _overlays_discard_unreferenced(names: list[str]) -> None:
    """Delete the stored overlays among ``names`` that no row references (names are per key, so another worker's row
    may hold one). Best effort: with the database unreachable, an orphan is better than a row without its file."""
    if not names:
        return
    try:
        kept = set(Explanation.objects.filter(overlay__in=names).values_list("overlay", flat=True))
    except DatabaseError:
        logger.warning("could not check %d overlay file(s) against the database; left in place", len(names))
        return
    for name in set(names) - kept:
        default_storage.delete(name)


def _explanations_record(rows: list[Explanation]) -> None:
    """Insert ``rows`` in one transaction; a row another worker stored first wins, and a file of ours that no row
    references is removed."""
    if not rows:
        return
    try:
        with transaction.atomic():
            Explanation.objects.bulk_create(rows, ignore_conflicts=True)
    finally:
        _overlays_discard_unreferenced([row.overlay.name for row in rows])


def predict_and_explain(*, face_ids: list[int], methods: list[str], version: ModelVersion | None = None) -> None:
    """Predict ``face_ids`` with ``version`` (default: the active one) and explain the predicted class and the
    current label with each method. The model runs once for the whole batch; existing results are skipped."""
    methods = cam_methods_validate(methods)
    version = version or model_version_active()
    if version is None:
        raise NoActiveModelVersion("no active model version: register one (manage.py bootstrap) or activate one")
    faces = list(FaceImage.objects.filter(pk__in=face_ids).order_by("pk"))
    if not faces:
        return
    predictions = {p.face_id: p for p in Prediction.objects.filter(model_version=version, face__in=faces)}
    done = set(Explanation.objects.filter(model_version=version, face__in=faces, method__in=methods,
                                          layer=DEFAULT_CAM_LAYER)
               .values_list("face_id", "method", "target_label"))
    arrays: dict[int, np.ndarray] = {}

    def pixels(batch: list[FaceImage]) -> np.ndarray:
        missing = [f for f in batch if f.pk not in arrays]
        arrays.update(zip([f.pk for f in missing], face_pixels([f.pk for f in missing]), strict=True))
        return np.stack([arrays[f.pk] for f in batch])

    unpredicted = [f for f in faces if f.pk not in predictions]
    if unpredicted:
        probs = predict_proba(runtime.loaded(version).model, pixels(unpredicted))
        new = [_prediction_row(face, version, p) for face, p in zip(unpredicted, probs, strict=True)]
        with transaction.atomic():
            Prediction.objects.bulk_create(new, ignore_conflicts=True)
        predictions.update(
            (p.face_id, p) for p in Prediction.objects.filter(model_version=version, face__in=unpredicted))

    todo: dict[str, list[tuple[FaceImage, int]]] = defaultdict(list)
    for face in faces:
        targets = dict.fromkeys([predictions[face.pk].predicted_label, face.current_label])
        for method in methods:
            todo[method] += [(face, t) for t in targets if t is not None and (face.pk, method, t) not in done]
    for method, items in todo.items():
        if items:
            batch = [face for face, _ in items]
            rows = _explanations_compute(version=version, faces=batch, arrays=pixels(batch),
                                         targets=[t for _, t in items], method=method)
            _explanations_record(rows)


def _prediction_row(face: FaceImage, version: ModelVersion, probs: np.ndarray) -> Prediction:
    label = int(np.argmax(probs))
    return Prediction(face=face, model_version=version, probabilities=[round(float(p), 6) for p in probs],
                      predicted_label=label, confidence=float(probs[label]))


def explanations_compute(*, version: ModelVersion, method: str, pairs: Sequence[tuple[int, int]],
                         layer: str = DEFAULT_CAM_LAYER) -> int:
    """Store the heatmaps of ``method`` on ``layer`` for each (face id, target class) that ``version`` has not
    explained yet, in one batch; how many were computed. Faces that no longer exist are skipped."""
    method = cam_method_validate(method)
    layer = cam_layer_validate(layer, method=method)
    wanted = list(dict.fromkeys((int(face_id), target_label_validate(t)) for face_id, t in pairs))
    done = set(Explanation.objects.filter(model_version=version, method=method, layer=layer,
                                          face_id__in={f for f, _ in wanted})
               .values_list("face_id", "target_label"))
    faces = FaceImage.objects.in_bulk([f for f, _ in wanted])
    todo = [(faces[f], t) for f, t in wanted if (f, t) not in done and f in faces]
    if todo:
        rows = _explanations_compute(version=version, faces=[f for f, _ in todo],
                                     arrays=face_pixels([f.pk for f, _ in todo]), targets=[t for _, t in todo],
                                     method=method, layer=layer)
        _explanations_record(rows)
    return len(todo)


def explanations_enqueue(*, version: ModelVersion, method: str, pairs: Sequence[tuple[int, int]]) -> None:
    """Queue ``inference.explain`` for the (face id, target class) pairs once the current transaction commits (the
    worker skips what is stored by then)."""
    method = cam_method_validate(method)
    wanted = [[int(f), target_label_validate(t)] for f, t in pairs]
    if wanted:
        task_send_after_commit(EXPLAIN_TASK, (version.pk, method, wanted))


def prediction_failures_record(*, face_ids: list[int], error: str, version: ModelVersion | None = None) -> None:
    """A prediction task gave up: say so for each face, so that pages waiting on it can show the error."""
    faces = FaceImage.objects.filter(pk__in=face_ids).values_list("pk", flat=True)
    PredictionFailure.objects.bulk_create(
        [PredictionFailure(face_id=pk, model_version=version, error=error[:2000]) for pk in faces])


