"""Images that users upload for prediction: what was sent, where its faces were, and how far the work has got.

Files refused by validation leave no trace (no row, no media); each face of an accepted file (up to
``UPLOADS_MAX_FACES``, largest first) becomes a ``FaceImage`` in the ``uploads`` dataset (split ``Upload``) and an
``UploadFace`` through ``services.upload_create``. The upload's own ``face``, ``face_box`` and ``crop_box`` describe
the largest face (index 0), as they did when an upload held one face.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from apps.faces.models import FaceImage

UPLOADS_DATASET = "uploads"


class Upload(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"  # face stored, prediction queued
        PROCESSING = "processing"  # prediction stored, heatmaps still being made
        DONE = "done"
        FAILED = "failed"  # the prediction task gave up; see error
        NO_FACE = "no_face"  # no face found and the policy was to report it; nothing predicted

    class NoFace(models.TextChoices):
        USE_WHOLE = "use_whole", "use the whole image"
        REJECT = "reject", "report no face, predict nothing"

    FINISHED = (Status.DONE, Status.FAILED, Status.NO_FACE)

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="uploads")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    original_name = models.CharField(max_length=255, blank=True, help_text="As sent by the client; display only.")
    content_type = models.CharField(max_length=50, help_text="Sniffed from the bytes, not the declared type.")
    size = models.PositiveIntegerField(help_text="Bytes.")
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True)
    face = models.ForeignKey(FaceImage, null=True, blank=True, on_delete=models.SET_NULL, related_name="uploads",
                             help_text="The 48x48 crop of the largest face (index 0 of faces); empty when no face "
                                       "was found and none was used.")
    face_found = models.BooleanField(default=False)
    face_box = models.JSONField(null=True, blank=True,
                                help_text="x, y, w, h of the largest detected face in the EXIF-oriented image.")
    crop_box = models.JSONField(null=True, blank=True,
                                help_text="left, top, right, bottom actually cut out for the largest face.")
    photo = models.FileField(blank=True, max_length=255,
                             help_text="The photo as shown to people (EXIF-oriented JPEG, at most 1280 pixels a side), "
                                       "for drawing the face boxes on; empty for uploads made before photos were kept.")
    no_face = models.CharField(max_length=16, choices=NoFace.choices, help_text="Policy applied when no face is found.")
    methods = models.JSONField(default=list, help_text="CAM methods requested.")
    model_version = models.ForeignKey("inference.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="+", help_text="Active at upload time; the one that answered.")
    error = models.TextField(blank=True)
    chunk = models.ForeignKey("inference.PredictionChunk", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="uploads",
                              help_text="The unit of work that predicts this upload's largest face.")

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["user", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.original_name or self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class UploadFace(models.Model):
    """One face of an upload, predicted on its own: index 0 is the largest, then by size. An upload whose photo had no
    face but was used whole has one of these with no box."""

    upload = models.ForeignKey(Upload, on_delete=models.CASCADE, related_name="faces")
    index = models.PositiveSmallIntegerField(help_text="0 for the largest face, then by decreasing size.")
    face = models.ForeignKey(FaceImage, on_delete=models.CASCADE, related_name="upload_faces",
                             help_text="The 48x48 crop that is predicted and explained.")
    box = models.JSONField(null=True, blank=True,
                           help_text="x, y, w, h of the detected face in the EXIF-oriented image; null when the whole "
                                     "image was used.")
    crop_box = models.JSONField(help_text="left, top, right, bottom actually cut out, same coordinates.")
    chunk = models.ForeignKey("inference.PredictionChunk", null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="upload_faces", help_text="The unit of work that predicts this face.")

    class Meta:
        ordering = ["upload", "index"]
        constraints = [models.UniqueConstraint(fields=["upload", "index"], name="upload_face_index_unique")]

    def __str__(self) -> str:
        return f"{self.upload_id} face {self.index}"
