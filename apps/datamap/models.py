"""A 2-D map of one split's faces for one model version: the job row and the point of each face it placed."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from apps.core.models import WorkRow, WorkStatus
from apps.faces.labels import Emotion
from apps.faces.models import FaceImage, Split
from apps.inference.models import ModelVersion
from ml.embedding import DEFAULT_METHOD, METHODS

METHOD_LABELS = {"umap": "UMAP", "tsne": "t-SNE"}
METHOD_CHOICES = [(method, METHOD_LABELS[method]) for method in METHODS]  # ml's list of methods, named


class DataMap(WorkRow):
    """One request to lay out a split's pooled features in 2-D (UMAP or t-SNE): the unit of work and, once it
    succeeded, the map its points belong to. At most one unfinished map per (version, split, method)."""

    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="data_maps")
    split = models.CharField(max_length=16, choices=Split.choices, default=Split.PUBLIC_TEST)
    method = models.CharField(max_length=8, choices=METHOD_CHOICES, default=DEFAULT_METHOD)
    seed = models.IntegerField(default=0, help_text="Fixes the layout.")
    face_count = models.PositiveIntegerField(default=0, help_text="Faces placed (set when the map succeeds).")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["model_version", "split", "method"],
                                    condition=Q(status__in=[WorkStatus.QUEUED, WorkStatus.RUNNING]),
                                    name="datamap_one_unfinished_map"),
        ]

    def __str__(self) -> str:
        return f"data map {self.pk} v{self.model_version_id} {self.split} {self.method} ({self.status})"


class DataMapPoint(models.Model):
    """Where one face landed, with what the version said of it then. Label quality and review state are read live."""

    data_map = models.ForeignKey(DataMap, on_delete=models.CASCADE, related_name="points")
    face = models.ForeignKey(FaceImage, on_delete=models.CASCADE, related_name="+")
    x = models.FloatField()
    y = models.FloatField()
    label = models.PositiveSmallIntegerField(choices=Emotion.choices, null=True, blank=True,
                                             help_text="The face's current label when the map was made.")
    predicted_label = models.PositiveSmallIntegerField(choices=Emotion.choices)
    confidence = models.FloatField()

    class Meta:
        ordering = ["data_map_id", "face_id"]
        constraints = [models.UniqueConstraint(fields=["data_map", "face"], name="datamap_one_point_per_face")]

    def __str__(self) -> str:
        return f"map {self.data_map_id} face {self.face_id} ({self.x:.3f}, {self.y:.3f})"
