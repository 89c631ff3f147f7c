"""Model registry (versions of trained checkpoints), stored predictions and Grad-CAM explanations.

Every prediction and explanation is keyed by the face and the model version (and, for explanations, the CAM method
and the class explained), so nothing is computed twice.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import WorkRow
from apps.faces.labels import Emotion
from apps.faces.models import Dataset, FaceImage, Split

MAP_SIZE = 48


class CamLayer(models.TextChoices):
    """The named CAM layers of ``ml.models.CAM_LAYERS``."""

    LAST = "last", "last stage (6x6)"
    FINE = "fine", "fine stage (12x12)"


class ModelVersion(models.Model):
    class Status(models.TextChoices):
        READY = "ready"  # registered, may be activated
        ACTIVE = "active"  # the one that serves predictions (at most one)
        ARCHIVED = "archived"  # was active once; kept for comparison and rollback
        REJECTED = "rejected"  # set by an admin: never to be activated (a version failing the gate stays READY)

    name = models.CharField(max_length=100)
    arch = models.CharField(max_length=50)
    checkpoint = models.FileField(max_length=200)
    checkpoint_sha256 = models.CharField(max_length=64, db_index=True)
    dynamics = models.FileField(max_length=200, blank=True, help_text=(
        "How the training run saw each Training face's label along the run (ml.dynamics: margins per epoch, "
        "probabilities at a few epochs; rows are face ids). Empty for versions registered from a file."))
    config = models.JSONField(default=dict, blank=True, help_text="The training recipe saved in the checkpoint.")
    metrics = models.JSONField(default=dict, blank=True)
    data_snapshot = models.JSONField(default=dict, blank=True, help_text="What the version was trained on.")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.READY, db_index=True)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["status"], condition=models.Q(status="active"),
                                    name="inference_one_active_version"),
        ]

    def __str__(self) -> str:
        return f"{self.name} (#{self.pk}, {self.status})"


class Prediction(models.Model):
    face = models.ForeignKey(FaceImage, on_delete=models.CASCADE, related_name="predictions")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="predictions")
    probabilities = models.JSONField(help_text="7 class probabilities in labels.CLASSES order.")
    predicted_label = models.PositiveSmallIntegerField(choices=Emotion.choices)
    confidence = models.FloatField(help_text="Probability of the predicted class.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["face_id"]
        constraints = [models.UniqueConstraint(fields=["face", "model_version"], name="inference_one_prediction")]
        indexes = [models.Index(fields=["model_version", "predicted_label"])]

    def __str__(self) -> str:
        return f"face {self.face_id} v{self.model_version_id}: {self.get_predicted_label_display()}"


def explanation_overlay_path(instance: Explanation, filename: str) -> str:
    return f"explanations/v{instance.model_version_id}/{filename}"


class Explanation(models.Model):
    face = models.ForeignKey(FaceImage, on_delete=models.CASCADE, related_name="explanations")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="explanations")
    method = models.CharField(max_length=32)
    layer = models.CharField(max_length=8, choices=CamLayer.choices, default=CamLayer.LAST, help_text=(
        "The feature map the CAM hooked (ml.models.cam_layers): the last stage (6x6 on the 48px models) or the finer "
        "stage before it (12x12)."))
    target_label = models.PositiveSmallIntegerField(choices=Emotion.choices, help_text="The class the map explains.")
    overlay = models.ImageField(max_length=200, upload_to=explanation_overlay_path,
                                help_text="192px PNG: the face upscaled (nearest) with the coloured map over it.")
    raw_map = models.BinaryField(help_text="48x48 uint8 map, row-major (2,304 bytes).")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["face_id", "method", "layer", "target_label"]
        constraints = [
            models.UniqueConstraint(fields=["face", "model_version", "method", "layer", "target_label"],
                                    name="inference_one_explanation_per_layer"),
        ]
        indexes = [models.Index(fields=["model_version", "method", "layer"], name="inference_explanation_vml")]

    def __str__(self) -> str:
        return (f"face {self.face_id} v{self.model_version_id} {self.method}/{self.layer} -> "
                f"{self.get_target_label_display()}")


class PredictionFailure(models.Model):
    """A prediction task that gave up after its retries: what upload pages show instead of a result."""

    face = models.ForeignKey(FaceImage, on_delete=models.CASCADE, related_name="prediction_failures")
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    error = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]


class InferenceJob(WorkRow):
    """Prediction and explanation over a whole dataset split, with progress (batches done: a lost job resumes
    after them)."""

    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="inference_jobs")
    split = models.CharField(max_length=16, choices=Split.choices)
    methods = models.JSONField(default=list)
    model_version = models.ForeignKey(ModelVersion, null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="jobs", help_text="Empty: the version active when it starts.")
    total = models.PositiveIntegerField(default=0)
    done = models.PositiveIntegerField(default=0)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.dataset}/{self.split} {', '.join(self.methods)} ({self.status} {self.done}/{self.total})"

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else (100 if self.status == self.Status.SUCCEEDED else 0)


class PredictionChunk(WorkRow):
    """Prediction and heatmaps for up to ``INFERENCE_BATCH_SIZE`` faces of one upload request: one unit of work."""

    face_ids = models.JSONField(default=list)
    methods = models.JSONField(default=list)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)  # uploads' chunks by age

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"prediction chunk {self.pk} ({len(self.face_ids)} faces, {self.status})"
