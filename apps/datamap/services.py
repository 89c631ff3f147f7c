"""Writes for data maps: start a map of a split for a model version, and the worker's part that makes it (pooled
features of every face, a 2-D layout, one point per face)."""

from __future__ import annotations

import numpy as np
from django.db import IntegrityError, transaction

from apps.core.errors import Conflict, InvalidInput
from apps.core.models import WorkStatus
from apps.core.work import QUEUE_BULK, WorkKind, WorkProgress, work_run, work_send, work_still_mine
from apps.faces.models import FaceImage
from apps.faces.selectors import face_pixels, face_splits_visible_to
from apps.inference import runtime
from apps.inference.models import ModelVersion
from ml.embedding import METHODS, MIN_FACES, embed_2d
from ml.evaluate import predict_proba
from ml.scoring import pooled_features

from .models import DataMap, DataMapPoint

CHUNK = 1024  # faces decoded and run through the model at a time: bounds memory, paces the progress events
UNFINISHED = (WorkStatus.QUEUED, WorkStatus.RUNNING)


class DataMapParamError(InvalidInput):
    code = "bad_parameter"


class NotEnoughFaces(Conflict):
    """The split holds too few faces to lay out."""

    code = "not_enough_faces"


def data_map_method_validate(method: str) -> str:
    if method not in METHODS:
        raise DataMapParamError(f"method: choose one of {', '.join(METHODS)}, not {method!r}",
                                errors=[{"field": "method", "code": "invalid_choice",
                                         "detail": f"choose one of {', '.join(METHODS)}"}])
    return method


def data_map_split_validate(split: str, *, user) -> str:
    splits = face_splits_visible_to(user)
    if split not in splits:
        raise DataMapParamError(f"split: unknown or hidden split {split!r}; choose one of {', '.join(splits)}",
                                errors=[{"field": "split", "code": "invalid_choice",
                                         "detail": f"choose one of {', '.join(splits)}"}])
    return split


def _unfinished(*, version: ModelVersion, split: str, method: str) -> DataMap | None:
    return DataMap.objects.filter(model_version=version, split=split, method=method, status__in=UNFINISHED).first()


def data_map_start(*, version: ModelVersion, split: str, method: str, user, seed: int = 0) -> tuple[DataMap, bool]:
    """The map of ``split`` by ``version`` with ``method``, queued on the bulk worker once the transaction commits;
    ``(map, True)``. While one is queued or running already, that one and False: asking twice never makes two."""
    method = data_map_method_validate(method)
    split = data_map_split_validate(split, user=user)
    existing = _unfinished(version=version, split=split, method=method)
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            data_map = DataMap.objects.create(model_version=version, split=split, method=method, seed=seed,
                                              created_by=user if getattr(user, "is_authenticated", False) else None)
            work_send(DATA_MAP, data_map.pk)
    except IntegrityError:  # a second request made it between the look and the insert
        existing = _unfinished(version=version, split=split, method=method)
        if existing is None:
            raise
        return existing, False
    return data_map, True


def data_map_features(*, version: ModelVersion, face_ids: list[int],
                      progress: WorkProgress | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Pooled features (N, C) and class probabilities (N, 7) of ``face_ids`` by ``version``, a chunk at a time."""
    model = runtime.loaded(version).model
    features, probabilities = [], []
    for start in range(0, len(face_ids), CHUNK):
        pixels = face_pixels(face_ids[start:start + CHUNK])
        # Under the lock: another thread's CAM hooks on the shared model would fire on these forward passes.
        with runtime.cam_lock:
            features.append(pooled_features(model, pixels))
            probabilities.append(predict_proba(model, pixels))
        if progress is not None:
            progress({"stage": "features", "done": start + len(pixels), "total": len(face_ids)})
    return np.concatenate(features), np.concatenate(probabilities)


def data_map_work(data_map: DataMap, progress: WorkProgress) -> None:
    """The worker's part: features and predictions outside transactions, the layout, then every point and the face
    count in one short transaction, which also drops older finished maps of the same version, split and method."""
    faces = list(FaceImage.objects.filter(split=data_map.split).order_by("pk").values_list("pk", "current_label"))
    if len(faces) < MIN_FACES:
        raise NotEnoughFaces(f"{data_map.split} holds {len(faces)} face(s); a map needs at least {MIN_FACES}")
    ids = [pk for pk, _ in faces]
    progress({"stage": "features", "done": 0, "total": len(ids)}, force=True)
    features, probabilities = data_map_features(version=data_map.model_version, face_ids=ids, progress=progress)
    progress({"stage": "layout", "method": data_map.method, "done": len(ids), "total": len(ids)}, force=True)
    points = embed_2d(features, method=data_map.method, seed=data_map.seed)
    progress({"stage": "storing", "done": len(ids), "total": len(ids)}, force=True)
    predicted = probabilities.argmax(1)
    rows = [DataMapPoint(data_map=data_map, face_id=pk, x=float(points[i, 0]), y=float(points[i, 1]), label=label,
                         predicted_label=int(predicted[i]), confidence=float(probabilities[i, predicted[i]]))
            for i, (pk, label) in enumerate(faces)]
    with transaction.atomic():
        work_still_mine(DATA_MAP, data_map.pk)
        DataMapPoint.objects.bulk_create(rows, batch_size=2000)
        DataMap.objects.filter(pk=data_map.pk).update(face_count=len(rows))
        (DataMap.objects.filter(model_version=data_map.model_version, split=data_map.split, method=data_map.method,
                                status=WorkStatus.SUCCEEDED, pk__lt=data_map.pk).delete())


def data_map_execute(*, map_id: int) -> DataMap | None:
    """Run a queued map here (commands, tests): None when another delivery has it or it is finished; a failure is
    recorded on the row and raised."""
    return work_run(DATA_MAP, map_id, raise_errors=True)


DATA_MAP = WorkKind(name="data_map", label="data maps", model=DataMap, task="datamap.make", queue=QUEUE_BULK,
                    work=data_map_work)
