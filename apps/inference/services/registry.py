"""The model registry: checkpoints become model versions, and the one way a version becomes the active one.

``model_version_activate`` is what every entry point calls (the activate and promote APIs, the admin action, a
training run that passes its gate, ``manage.py bootstrap``, rollback), so that a version activated any way gets the
same follow-up work: its PublicTest predictions and heatmaps (for the galleries and the evaluation page) and, when it
replaces another version, a label-scoring run over the current labels.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from apps.core.errors import InvalidInput, NotFound
from apps.core.files import storage_save_atomic
from apps.faces.models import Dataset, FaceImage, Split
from apps.review.scoring import scoring_queue_refresh
from ml.checkpoint import CheckpointError, load_checkpoint
from ml.labels import CLASSES

from ..models import InferenceJob, ModelVersion
from ..selectors import model_version_active
from .jobs import inference_job_enqueue

REFRESH_METHODS = ["gradcam"]  # heatmaps computed for the PublicTest faces of a newly active version


class ModelVersionInvalid(InvalidInput):
    """A checkpoint that cannot become a model version (corrupt, foreign, wrong classes), or a refused transition."""

    code = "model_version_invalid"


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
                           activate: bool = False, refresh: bool = True,
                           dynamics_path: Path | str | None = None) -> ModelVersion:
    """Validate a checkpoint by loading it, copy it into storage and record a version (active if ``activate``;
    ``refresh`` as for ``model_version_activate``). ``dynamics_path``: the training run's dynamics file
    (``ml.dynamics``, rows as face ids), kept with the version."""
    path = Path(checkpoint_path)
    data = model_version_checkpoint_read(path)
    recipe = data.get("recipe") if isinstance(data.get("recipe"), dict) else {}
    snapshot = data.get("data_snapshot") or {k: recipe[k] for k in ("n_train", "n_val", "csv", "seed") if k in recipe}
    stored, stored_dynamics = "", ""
    try:
        stem = uuid.uuid4().hex
        with open(path, "rb") as fh:
            stored = storage_save_atomic(f"models/{stem}.pt", fh, what="a model checkpoint")
        if dynamics_path is not None and Path(dynamics_path).is_file():
            with open(dynamics_path, "rb") as fh:
                stored_dynamics = storage_save_atomic(f"models/{stem}.dynamics.npz", fh, what="training dynamics")
        with transaction.atomic():
            version = ModelVersion.objects.create(
                name=name,
                arch=str(data["arch"]),
                checkpoint=stored,
                dynamics=stored_dynamics,
                checkpoint_sha256=_sha256_file(path),
                config=_jsonable({"recipe": recipe, "arch_kwargs": data.get("arch_kwargs") or {},
                                  "preprocessing": data.get("preprocessing"), "epoch": data.get("epoch"),
                                  "pretrained": data.get("pretrained", False)}),
                metrics=_metrics_from_checkpoint(data),
                data_snapshot=_jsonable(snapshot),
                created_by=created_by,
            )
            if activate:
                version = model_version_activate(version=version, actor=created_by, refresh=refresh)
    except BaseException:
        for saved in (stored, stored_dynamics):
            if saved:
                default_storage.delete(saved)
        raise
    return version


def model_version_activate(*, version: ModelVersion, actor=None, refresh: bool = True) -> ModelVersion:
    """Make ``version`` the one active version (the previously active one becomes archived), then, once this
    commits and only if the active version changed: queue its PublicTest predictions and heatmaps, and, when it
    replaced another version, a re-ranking of the review queue (in-sample, then the refining short run; both unless
    ``INFERENCE_REFRESH_ON_ACTIVATE`` is off, or ``refresh`` is false: the first start queues them itself, in the
    order it wants them done)."""
    with transaction.atomic():
        # Lock the current active row and the target so that two activations run one after the other.
        rows = ModelVersion.objects.select_for_update().filter(Q(status=ModelVersion.Status.ACTIVE) | Q(pk=version.pk))
        locked = {v.pk: v for v in rows.order_by("pk")}
        target = locked.get(version.pk)
        if target is None:
            raise NotFound(f"model version {version.pk} does not exist")
        if target.status == ModelVersion.Status.REJECTED:
            raise ModelVersionInvalid(f"model version {target.pk} ({target.name}) was rejected and cannot be "
                                      "activated")
        previous = next((v for v in locked.values() if v.status == ModelVersion.Status.ACTIVE), None)
        if target.status != ModelVersion.Status.ACTIVE:
            ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exclude(pk=target.pk).update(
                status=ModelVersion.Status.ARCHIVED)
            target.status = ModelVersion.Status.ACTIVE
            target.activated_at = timezone.now()
            target.save(update_fields=["status", "activated_at"])
            if settings.INFERENCE_REFRESH_ON_ACTIVATE and refresh:
                _refresh_after_activation(version=target, replaced=previous, actor=actor)
    version.status, version.activated_at = target.status, target.activated_at
    return target


def _refresh_after_activation(*, version: ModelVersion, replaced: ModelVersion | None, actor) -> None:
    """PublicTest predictions of ``version`` for every dataset that has PublicTest faces (unless a job for it is
    pending already), and a re-scoring of the labels when a version was replaced. Sent after commit."""
    datasets = Dataset.objects.filter(pk__in=FaceImage.objects.filter(split=Split.PUBLIC_TEST).values("dataset"))
    pending = InferenceJob.objects.filter(split=Split.PUBLIC_TEST, model_version=version,
                                          status__in=[InferenceJob.Status.QUEUED, InferenceJob.Status.RUNNING])
    busy = set(pending.values_list("dataset_id", flat=True))
    for dataset in datasets:
        if dataset.pk not in busy:
            inference_job_enqueue(dataset=dataset, split=Split.PUBLIC_TEST, methods=REFRESH_METHODS,
                                  version=version, created_by=actor)
    if replaced is not None:
        scoring_queue_refresh(created_by=actor)


def model_version_rollback(*, actor=None) -> ModelVersion:
    """Activate the version that was active before the current one."""
    active = model_version_active()
    previous = (ModelVersion.objects.filter(status=ModelVersion.Status.ARCHIVED, activated_at__isnull=False)
                .order_by("-activated_at", "-pk").first())
    if previous is None or (active is not None and active.activated_at and previous.activated_at > active.activated_at):
        raise ModelVersionInvalid("no earlier active version to roll back to")
    return model_version_activate(version=previous, actor=actor)
