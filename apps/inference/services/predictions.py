"""Writes for the model registry, predictions and explanations.

The slow parts (loading the model, running it, encoding PNGs, writing files) happen outside transactions; each step
then records its rows in one short transaction. Predictions and explanations are keyed by (face, version[, method,
target]) and what already exists is never computed again.
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone
from PIL import Image

from apps.faces.labels import CLASSES, class_index
from apps.faces.models import Dataset, FaceImage
from ml import explain as ml_explain
from ml.checkpoint import CheckpointError, load_checkpoint
from ml.evaluate import predict_proba

from . import runtime
from .models import Explanation, InferenceJob, ModelVersion, Prediction, PredictionFailure, explanation_overlay_path
from .selectors import face_arrays, model_version_active

CAM_METHODS: tuple[str, ...] = tuple(ml_explain.METHODS)
DEFAULT_METHODS: list[str] = [ml_explain.DEFAULT_METHOD]
OVERLAY_SIZE = 192


class ModelVersionInvalid(ValueError):
    """A checkpoint that cannot become a model version (corrupt, foreign, wrong classes), or a refused transition."""


class UnknownCamMethod(ValueError):
    """A CAM method name that ``ml.explain`` does not provide; the message lists the choices."""


class NoActiveModelVersion(RuntimeError):
    """Nothing to predict with: no version is active."""


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


def target_label_validate(target: int | str) -> int:
    """0-6 or a class name (``happy``); ``ValueError`` naming the choices otherwise."""
    return class_index(target)


# --- model registry ------------------------------------------------------------------------------------------------

def _jsonable(value: object) -> object:
    """Checkpoint values as plain JSON (tuples become lists, anything exotic its string)."""
    return json.loads(json.dumps(value, default=str))


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _metrics_from_checkpoint(data: dict) -> dict:
    metrics = dict(data.get("metrics") or {}) if isinstance(data.get("metrics"), dict) else {}
    history = data.get("history") or []
    last = history[-1] if history and isinstance(history[-1], dict) else {}
    for key in ("val_accuracy", "val_macro_f1", "val_loss"):
        if key in last and key not in metrics:
            metrics[key] = last[key]
    if "epoch" in data:
        metrics.setdefault("epoch", data["epoch"])
    if history and all(isinstance(h, dict) for h in history):
        metrics.setdefault("history", history)  # per-epoch curves for the evaluation page
    return _jsonable(metrics)


def model_version_checkpoint_read(path: Path | str) -> dict:
    """Load ``path`` as a model (``weights_only=True``) to prove it is usable; its checkpoint dict, or
    ``ModelVersionInvalid`` saying why not."""
    path = Path(path)
    try:
        data = load_checkpoint(path, "cpu").data
    except CheckpointError as exc:
        raise ModelVersionInvalid(f"refused checkpoint: {exc}") from None
    if list(data.get("classes") or []) != list(CLASSES):
        raise ModelVersionInvalid(
            f"refused checkpoint: {path.name}: its classes {data.get('classes')} differ from {list(CLASSES)}"
        )
    return data


def model_version_register(*, checkpoint_path: Path | str, name: str, created_by=None,
                           activate: bool = False) -> ModelVersion:
    """Validate a checkpoint by loading it, copy it into storage and record a version (active if ``activate``)."""
    path = Path(checkpoint_path)
    data = model_version_checkpoint_read(path)
    recipe = data.get("recipe") if isinstance(data.get("recipe"), dict) else {}
    snapshot = data.get("data_snapshot") or {k: recipe[k] for k in ("n_train", "n_val", "csv", "seed") if k in recipe}
    stored = ""
    try:
        with open(path, "rb") as fh:
            stored = default_storage.save(f"models/{uuid.uuid4().hex}.pt", File(fh))
        with transaction.atomic():
            version = ModelVersion.objects.create(
                name=name,
                arch=str(data["arch"]),
                checkpoint=stored,
                checkpoint_sha256=_sha256_file(path),
                config=_jsonable({"recipe": recipe, "arch_kwargs": data.get("arch_kwargs") or {},
                                  "preprocessing": data.get("preprocessing"), "epoch": data.get("epoch"),
                                  "pretrained": data.get("pretrained", False)}),
                metrics=_metrics_from_checkpoint(data),
                data_snapshot=_jsonable(snapshot),
                created_by=created_by,
            )
            if activate:
                version = model_version_activate(version=version)
    except BaseException:
        if stored:
            default_storage.delete(stored)
        raise
    return version


@transaction.atomic
def model_version_activate(*, version: ModelVersion) -> ModelVersion:
    """Make ``version`` the one active version; the previously active one becomes archived."""
    # Lock the current active row and the target so that two activations run one after the other.
    rows = ModelVersion.objects.select_for_update().filter(Q(status=ModelVersion.Status.ACTIVE) | Q(pk=version.pk))
    locked = {v.pk: v for v in rows.order_by("pk")}
    target = locked.get(version.pk)
    if target is None:
        raise ModelVersion.DoesNotExist(f"model version {version.pk} does not exist")
    if target.status == ModelVersion.Status.REJECTED:
        raise ModelVersionInvalid(f"model version {target.pk} ({target.name}) was rejected and cannot be activated")
    if target.status != ModelVersion.Status.ACTIVE:
        ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exclude(pk=target.pk).update(
            status=ModelVersion.Status.ARCHIVED)
        target.status = ModelVersion.Status.ACTIVE
        target.activated_at = timezone.now()
        target.save(update_fields=["status", "activated_at"])
    version.status, version.activated_at = target.status, target.activated_at
    return target



# --- predictions and explanations ----------------------------------------------------------------------------------

def predictions_enqueue(*, face_ids: list[int], methods: list[str] | None = None) -> None:
    """Queue ``inference.predict_and_explain`` (queue ``gpu``) for ``face_ids`` once the current transaction commits."""
    methods = cam_methods_validate(methods)
    ids = [int(pk) for pk in face_ids]
    if not ids:
        return
    from .tasks import predict_and_explain_task  # tasks import services

    size = settings.INFERENCE_BATCH_SIZE
    for start in range(0, len(ids), size):
        chunk = ids[start:start + size]
        transaction.on_commit(lambda chunk=chunk: predict_and_explain_task.delay(chunk, methods))


def _overlay_png(overlay: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(overlay).save(buffer, format="PNG")
    return buffer.getvalue()


def _explanations_compute(*, version: ModelVersion, faces: Sequence[FaceImage], arrays: np.ndarray,
                          targets: Sequence[int], method: str) -> list[Explanation]:
    """Run ``method`` for each (face, target), store the overlay PNGs and return the unsaved rows."""
    model = runtime.loaded(version).model
    with runtime.cam_lock:
        result = ml_explain.explain(model, arrays, method=method, targets=[int(t) for t in targets],
                                    overlay_size=OVERLAY_SIZE)
    rows = []
    for face, target, cam, overlay in zip(faces, targets, result.maps, result.overlays, strict=True):
        row = Explanation(face=face, model_version=version, method=method, target_label=int(target),
                          raw_map=ml_explain.map_to_uint8(cam).tobytes())
        name = explanation_overlay_path(row, f"{uuid.uuid4().hex}.png")
        row.overlay.name = default_storage.save(name, ContentFile(_overlay_png(overlay)))
        rows.append(row)
    return rows


def _explanations_record(rows: list[Explanation]) -> None:
    """Insert ``rows`` in one transaction; a row another worker stored first wins, and our file is removed."""
    if not rows:
        return
    names = [row.overlay.name for row in rows]
    try:
        with transaction.atomic():
            Explanation.objects.bulk_create(rows, ignore_conflicts=True)
    except BaseException:
        for name in names:
            default_storage.delete(name)
        raise
    kept = set(Explanation.objects.filter(overlay__in=names).values_list("overlay", flat=True))
    for name in set(names) - kept:
        default_storage.delete(name)


def predict_and_explain(*, face_ids: list[int], methods: list[str], version: ModelVersion | None = None) -> None:
    """Predict ``face_ids`` with ``version`` (default: the active one) and explain the predicted class and the
    current label with each method. The model runs once for the whole batch; existing results are skipped."""
    methods = cam_methods_validate(methods)
    version = version or model_version_active()
    if version is None:
        raise NoActiveModelVersion("no active model version: register one (manage.py bootstrap) or activate one")
    faces = list(FaceImage.objects.filter(pk__in=face_ids).select_related("pixels").order_by("pk"))
    if not faces:
        return
    predictions = {p.face_id: p for p in Prediction.objects.filter(model_version=version, face__in=faces)}
    done = set(Explanation.objects.filter(model_version=version, face__in=faces, method__in=methods)
               .values_list("face_id", "method", "target_label"))
    arrays: dict[int, np.ndarray] = {}

    def pixels(batch: list[FaceImage]) -> np.ndarray:
        missing = [f for f in batch if f.pk not in arrays]
        arrays.update(zip([f.pk for f in missing], face_arrays(missing), strict=True))
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


def explanation_get_or_compute(*, face: FaceImage, version: ModelVersion | None, method: str,
                               target_label: int | str | None) -> Explanation:
    """The explanation of ``face`` by ``version`` (None: the active one) for ``target_label`` (None: the predicted
    class), computed now unless it is stored already."""
    method = cam_method_validate(method)
    version = version or model_version_active()
    if version is None:
        raise NoActiveModelVersion("no active model version")
    if target_label is None:
        predict_and_explain(face_ids=[face.pk], methods=[], version=version)
        target = Prediction.objects.get(face=face, model_version=version).predicted_label
    else:
        target = target_label_validate(target_label)
    key = {"face": face, "model_version": version, "method": method, "target_label": target}
    existing = Explanation.objects.filter(**key).first()
    if existing is not None:
        return existing
    face = FaceImage.objects.select_related("pixels").get(pk=face.pk)
    rows = _explanations_compute(version=version, faces=[face], arrays=face_arrays([face]), targets=[target],
                                 method=method)
    _explanations_record(rows)
    return Explanation.objects.get(**key)


def prediction_failures_record(*, face_ids: list[int], error: str, version: ModelVersion | None = None) -> None:
    """A prediction task gave up: say so for each face, so that pages waiting on it can show the error."""
    faces = FaceImage.objects.filter(pk__in=face_ids).values_list("pk", flat=True)
    PredictionFailure.objects.bulk_create(
        [PredictionFailure(face_id=pk, model_version=version, error=error[:2000]) for pk in faces])


# --- whole splits --------------------------------------------------------------------------------------------------

def inference_job_create(*, dataset: Dataset, split: str, methods: list[str] | None = None,
                         version: ModelVersion | None = None, created_by=None) -> InferenceJob:
    methods = cam_methods_validate(methods)
    total = FaceImage.objects.filter(dataset=dataset, split=split).count()
    return InferenceJob.objects.create(dataset=dataset, split=split, methods=methods, model_version=version,
                                       total=total, created_by=created_by)


def inference_job_enqueue(*, dataset: Dataset, split: str, methods: list[str] | None = None,
                          created_by=None) -> InferenceJob:
    """Create a job and queue ``inference.predict_split`` for it once the transaction commits."""
    from .tasks import predict_split_task

    job = inference_job_create(dataset=dataset, split=split, methods=methods, created_by=created_by)
    transaction.on_commit(lambda: predict_split_task.delay(dataset.pk, split, job.methods, job.pk))
    return job


def inference_job_run(*, job: InferenceJob, batch_size: int | None = None,
                      progress: Callable[[int], None] | None = None) -> InferenceJob:
    """Claim a queued job and predict its split batch by batch, counting progress on the row."""
    claimed = InferenceJob.objects.filter(pk=job.pk, status=InferenceJob.Status.QUEUED).update(
        status=InferenceJob.Status.RUNNING, started_at=timezone.now())
    if claimed != 1:
        job.refresh_from_db()
        return job  # another worker took it, or it already ran
    version = job.model_version or model_version_active()
    if version is None:
        raise NoActiveModelVersion("no active model version")
    ids = list(FaceImage.objects.filter(dataset_id=job.dataset_id, split=job.split).order_by("pk")
               .values_list("pk", flat=True))
    InferenceJob.objects.filter(pk=job.pk).update(model_version=version, total=len(ids), done=0)
    size = batch_size or settings.INFERENCE_BATCH_SIZE
    for start in range(0, len(ids), size):
        chunk = ids[start:start + size]
        predict_and_explain(face_ids=chunk, methods=job.methods, version=version)
        InferenceJob.objects.filter(pk=job.pk).update(done=F("done") + len(chunk))
        if progress is not None:
            progress(len(chunk))
    InferenceJob.objects.filter(pk=job.pk).update(status=InferenceJob.Status.DONE, finished_at=timezone.now())
    job.refresh_from_db()
    return job


def inference_job_fail(*, job_id: int, error: str) -> None:
    InferenceJob.objects.filter(pk=job_id).update(status=InferenceJob.Status.FAILED, error=error[:2000],
                                                  finished_at=timezone.now())

