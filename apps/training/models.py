"""Training runs: retraining on the current (corrected) labels, and the settings of the periodic trigger.

A run records who or what started it, its resolved configuration, the label snapshot it trained on (face ids and
labels, compressed, so that "labels changed since this version" is exact and a resumed run sees the same labels),
live progress, and the model version it produced together with the promotion gate's decision.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import WorkRow
from apps.inference.models import ModelVersion

SOFT_LABEL_MODES = ("majority", "probability", "crossentropy")


class TrainingRun(WorkRow):
    class Trigger(models.TextChoices):
        ADMIN = "admin"  # the training page
        API = "api"  # POST /api/training-runs/ with a token
        SCHEDULE = "schedule"  # the periodic check (django-celery-beat)

    class SoftLabelMode(models.TextChoices):
        MAJORITY = "majority", "majority (one label per face)"
        PROBABILITY = "probability", "probability (sample a label from the votes each epoch)"
        CROSSENTROPY = "crossentropy", "cross-entropy against the vote distribution"

    trigger = models.CharField(max_length=16, choices=Trigger.choices)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    # Configuration.
    recipe_name = models.CharField(max_length=64)
    recipe = models.JSONField(default=dict, help_text="The whole resolved ml recipe (overrides applied).")
    arch = models.CharField(max_length=50)
    epochs = models.PositiveSmallIntegerField()
    seed = models.IntegerField(default=0)
    soft_label_mode = models.CharField(max_length=16, choices=SoftLabelMode.choices, default=SoftLabelMode.MAJORITY)
    exclude_cross_split_duplicates = models.BooleanField(
        default=False, help_text="Leave out Training faces with a near-duplicate in PublicTest or PrivateTest (the "
                                 "latest succeeded near-duplicate search), so that test accuracy is not inflated.")
    init_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
                                     help_text="Warm-start recipes (finetune): the version whose weights it starts "
                                               "from, the active one when the run was created.")
    # Label snapshot (taken when the run starts training).
    snapshot_count = models.PositiveIntegerField(null=True, blank=True, help_text="Training faces trained on.")
    snapshot_fingerprint = models.CharField(max_length=64, blank=True,
                                            help_text="sha256 over the sorted (face id, label) pairs.")
    snapshot_labels = models.BinaryField(null=True, blank=True, editable=False,
                                         help_text="zlib-compressed int64 face ids then int64 labels.")
    labels_changed = models.PositiveIntegerField(null=True, blank=True,
                                                 help_text="Labels changed since the active version's snapshot.")
    soft_label_count = models.PositiveIntegerField(default=0, help_text="Faces with a vote distribution.")
    duplicates_left_out = models.PositiveIntegerField(null=True, blank=True,
                                                      help_text="Training faces left out as cross-split duplicates.")
    near_duplicate_run = models.ForeignKey("faces.NearDuplicateRun", null=True, blank=True, on_delete=models.SET_NULL,
                                           related_name="+", help_text="The search whose groups were left out.")
    # Lifecycle (status, times, progress: WorkRow) and the log.
    history = models.JSONField(default=list, blank=True, help_text="One entry per finished epoch.")
    log = models.TextField(blank=True)
    # Result.
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="training_runs")
    metrics = models.JSONField(default=dict, blank=True,
                               help_text="PublicTest vs current and original labels, and the previous version's.")
    promoted = models.BooleanField(null=True, blank=True, help_text="The gate's decision; empty until decided.")
    promotion_reason = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            # The database itself refuses a second running run.
            models.UniqueConstraint(fields=["status"], condition=models.Q(status="running"),
                                    name="training_one_running_run"),
        ]

    def __str__(self) -> str:
        return f"training run {self.pk} ({self.status})"


class TrainingSettings(models.Model):
    """One row (pk=1), edited in the admin: the periodic trigger's threshold and what it trains.

    Starting a run locks this row, so two requests arriving together cannot both start one.
    """

    auto_min_changed = models.PositiveIntegerField(
        null=True, blank=True, help_text="Labels changed since the active version before the periodic check starts a "
                                         "run; empty: TRAINING_AUTO_MIN_CHANGED (200).")
    auto_enabled = models.BooleanField(default=True, help_text="Let the periodic check start runs.")
    auto_recipe = models.CharField(max_length=64, default="finetune", help_text="finetune: minutes, from the active "
                                   "version's weights; default: a full retrain from scratch (hours on a CPU).")
    auto_epochs = models.PositiveSmallIntegerField(null=True, blank=True, help_text="Empty: the recipe's.")
    auto_soft_label_mode = models.CharField(max_length=16, choices=TrainingRun.SoftLabelMode.choices,
                                            default=TrainingRun.SoftLabelMode.MAJORITY)

    class Meta:
        verbose_name = "training settings"
        verbose_name_plural = "training settings"

    def __str__(self) -> str:
        return "training settings"

    @property
    def min_changed(self) -> int:
        return self.auto_min_changed or settings.TRAINING_AUTO_MIN_CHANGED
