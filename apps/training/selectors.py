"""Reads for training runs and the versions they produced."""

from __future__ import annotations

from django.db.models import QuerySet

from apps.core.errors import NotFound
from apps.inference.models import ModelVersion
from apps.inference.selectors import model_version_active

from .models import TrainingRun, TrainingSettings
from .snapshot import labels_changed_since


def training_run_list() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.select_related("created_by", "model_version").defer("snapshot_labels")


def training_run_get(*, pk: int) -> TrainingRun:
    """Run ``pk`` (as ``training_run_list`` reads it); ``NotFound`` when there is none."""
    run = training_run_list().filter(pk=pk).first()
    if run is None:
        raise NotFound(f"no training run {pk}")
    return run


def training_overview() -> dict:
    """What the training page shows above the runs: the active version, labels changed, the periodic threshold."""
    active = model_version_active()
    config = TrainingSettings.objects.filter(pk=1).first() or TrainingSettings()
    return {"active_version": active, "labels_changed": labels_changed_since(active),
            "auto_min_changed": config.min_changed, "auto_enabled": config.auto_enabled,
            "auto_recipe": config.auto_recipe}


def model_versions_compared() -> list[dict]:
    """Every version, newest first, with PublicTest figures against current and original labels and the change
    from the version before it (by creation)."""
    versions = list(ModelVersion.objects.order_by("created_at", "id"))
    runs = {r.model_version_id: r for r in TrainingRun.objects.filter(model_version__isnull=False)
            .defer("snapshot_labels", "log")}
    rows, before = [], None
    for version in versions:
        m = version.metrics or {}
        current = ({"accuracy": m["accuracy"], "macro_f1": m["macro_f1"]}
                   if "accuracy" in m and "macro_f1" in m else None)
        original = m.get("original_labels")
        original = {"accuracy": original["accuracy"], "macro_f1": original["macro_f1"]} if original else None
        delta = None
        if current and before:
            delta = {k: current[k] - before[k] for k in ("accuracy", "macro_f1")}
        run = runs.get(version.pk)
        rows.append({"version": version, "current": current, "original": original, "delta_previous": delta,
                     "confusion": m.get("confusion"), "training_run": run.pk if run else None,
                     "soft_label_mode": m.get("soft_label_mode"), "gate": run.promotion_reason if run else ""})
        if current:
            before = current
    return rows[::-1]
