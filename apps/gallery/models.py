"""Faithfulness of each CAM method for a model version; everything else the gallery shows is read from inference."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from apps.core.models import WorkRow
from apps.faces.models import Split
from apps.inference.models import ModelVersion


class FaithfulnessScore(models.Model):
    """ROAD (pytorch-grad-cam, combined MoRF/LeRF) averaged over a sample of one split: higher is more faithful."""

    class Metric(models.TextChoices):
        ROAD = "road", "ROAD combined"

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="faithfulness_scores")
    method = models.CharField(max_length=32)
    metric = models.CharField(max_length=16, choices=Metric.choices, default=Metric.ROAD)
    split = models.CharField(max_length=16, choices=Split.choices, default=Split.PUBLIC_TEST)
    sample_size = models.PositiveIntegerField()
    percentiles = models.JSONField(default=list)
    mean = models.FloatField()
    std = models.FloatField()
    created_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["model_version_id", "-mean"]
        constraints = [
            models.UniqueConstraint(fields=["model_version", "method", "metric", "split"],
                                    name="gallery_one_faithfulness_score"),
        ]

    def __str__(self) -> str:
        return f"v{self.model_version_id} {self.method} {self.metric}: {self.mean:.3f} (n={self.sample_size})"


class FaithfulnessRun(WorkRow):
    """One request to measure the faithfulness of some CAM methods for a version: the unit of work behind the scores."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="faithfulness_runs")
    methods = models.JSONField(default=list)
    sample_size = models.PositiveIntegerField(default=200)
    split = models.CharField(max_length=16, choices=Split.choices, default=Split.PUBLIC_TEST)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"faithfulness run {self.pk} v{self.model_version_id} {', '.join(self.methods)} ({self.status})"
