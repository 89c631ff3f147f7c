"""Faithfulness of each CAM method for a model version; everything else the gallery shows is read from inference."""

from __future__ import annotations

from django.db import models

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
