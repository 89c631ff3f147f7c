"""Faithfulness of each CAM method for a model version; everything else the gallery shows is read from inference."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import WorkRow
from apps.faces.labels import Emotion
from apps.faces.models import FaceImage, Split
from apps.inference.models import CamLayer, ModelVersion


class FaithfulnessScore(models.Model):
    """ROAD (pytorch-grad-cam, combined MoRF/LeRF) of one CAM method on one layer, averaged over a sample of one
    split (higher is more faithful), next to uniform random maps measured the same way on the same faces: a mean
    means little without that baseline."""

    class Metric(models.TextChoices):
        ROAD = "road", "ROAD combined"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="faithfulness_scores")
    method = models.CharField(max_length=32)
    layer = models.CharField(max_length=8, choices=CamLayer.choices, default=CamLayer.LAST)
    metric = models.CharField(max_length=16, choices=Metric.choices, default=Metric.ROAD)
    split = models.CharField(max_length=16, choices=Split.choices, default=Split.PUBLIC_TEST)
    sample_size = models.PositiveIntegerField()
    percentiles = models.JSONField(default=list)
    mean = models.FloatField()
    std = models.FloatField()
    baseline_mean = models.FloatField(null=True, help_text="Mean ROAD of seeded uniform random maps, same faces.")
    beats_baseline = models.FloatField(null=True, help_text="Share of faces whose map beats the random map's.")
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_version_id", "-mean"]
        constraints = [
            models.UniqueConstraint(fields=["model_version", "method", "layer", "metric", "split"],
                                    name="gallery_one_faithfulness_score_per_layer"),
        ]

    def __str__(self) -> str:
        return (f"v{self.model_version_id} {self.method}/{self.layer} {self.metric}: {self.mean:.3f} "
                f"(n={self.sample_size})")


class FaithfulnessFaceScore(models.Model):
    """One face's ROAD for the map of its predicted class, and the random map's on the same face: what the gallery
    shows beside that heatmap."""

    score = models.ForeignKey(FaithfulnessScore, on_delete=models.CASCADE, related_name="faces")
    face = models.ForeignKey(FaceImage, on_delete=models.CASCADE, related_name="+")
    target_label = models.PositiveSmallIntegerField(choices=Emotion.choices, help_text="The class the map explains.")
    road = models.FloatField()
    baseline = models.FloatField()

    class Meta:
        ordering = ["score_id", "face_id"]
        constraints = [models.UniqueConstraint(fields=["score", "face"], name="gallery_one_faithfulness_per_face")]
        indexes = [models.Index(fields=["face", "score"], name="gallery_faith_face_score")]

    def __str__(self) -> str:
        return f"face {self.face_id} score {self.score_id}: {self.road:+.3f} (random {self.baseline:+.3f})"

    @property
    def beats_baseline(self) -> bool:
        return self.road > self.baseline


class FaithfulnessRun(WorkRow):
    """One request to measure the faithfulness of some CAM methods for a version: the unit of work behind the scores."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="faithfulness_runs")
    methods = models.JSONField(default=list)
    layers = models.JSONField(default=list, help_text="CAM layers measured for every method (empty: last).")
    sample_size = models.PositiveIntegerField(default=200)
    split = models.CharField(max_length=16, choices=Split.choices, default=Split.PUBLIC_TEST)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"faithfulness run {self.pk} v{self.model_version_id} {', '.join(self.methods)} ({self.status})"
