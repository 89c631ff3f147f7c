"""Datasets and face images.

Exact duplicates: the pixels of a face live in ``FacePixels``, keyed by the sha256 of the raw 48x48 grey
values and holding the PNG once. Every ``FaceImage`` (one per source row or file) points at its pixels, so
two rows with identical pixels share one PNG, and "the duplicates of X" is ``FaceImage.objects.filter(
pixels=x.pixels)``. Labels, splits and FER+ votes stay per image, because duplicates in FER-2013 often
carry different labels — which is exactly what the review work wants to see.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models

from apps.core.models import WorkRow

from .labels import Emotion

FACE_SIZE = 48


class Dataset(models.Model):
    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def face_png_path(sha256: str) -> str:
    """Storage name of a face's PNG: a keyed digest (HMAC with ``SECRET_KEY``) of its pixels' sha256, so the name
    is stable (an importer that crashed finds and replaces its half-written file) but nobody who holds a crop can
    compute it and test whether it was stored. Two levels of fan-out keep directories small."""
    key = hmac.new(settings.SECRET_KEY.encode(), b"ferplatform face png", hashlib.sha256).digest()
    name = hmac.new(key, sha256.encode(), hashlib.sha256).hexdigest()
    return f"faces/{name[:2]}/{name[2:4]}/{name}.png"


class FacePixels(models.Model):
    """One distinct 48x48 grey image, stored once as PNG."""

    sha256 = models.CharField(max_length=64, primary_key=True, help_text="sha256 of the 2,304 raw grey bytes")
    png = models.FileField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "face pixels"

    def __str__(self) -> str:
        return self.sha256[:12]


class Split(models.TextChoices):
    TRAINING = "Training"
    PUBLIC_TEST = "PublicTest"
    PRIVATE_TEST = "PrivateTest"
    UPLOAD = "Upload"


class FaceImage(models.Model):
    dataset = models.ForeignKey(Dataset, on_delete=models.CASCADE, related_name="images")
    pixels = models.ForeignKey(FacePixels, on_delete=models.PROTECT, related_name="images")
    split = models.CharField(max_length=16, choices=Split.choices, db_index=True)
    original_label = models.PositiveSmallIntegerField(
        choices=Emotion.choices, null=True, blank=True, help_text="As imported; never overwritten."
    )
    current_label = models.PositiveSmallIntegerField(
        choices=Emotion.choices, null=True, blank=True, help_text="After review; null for unlabelled uploads."
    )
    ferplus_votes = models.JSONField(
        null=True, blank=True, help_text="10 FER+ vote counts in labels.FERPLUS_COLUMNS order (neutral ... NF)."
    )
    source_row = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(0), MaxValueValidator(10**9)],
        help_text="0-based data row in the source CSV (file line = row + 2).",
    )
    source_name = models.CharField(max_length=500, blank=True, help_text="Relative path for folder imports.")
    excluded = models.BooleanField(default=False, help_text='Reviewers said "not a face".')
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["dataset_id", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["dataset", "source_row"], condition=models.Q(source_row__isnull=False),
                name="faces_unique_source_row",
            ),
            models.UniqueConstraint(
                fields=["dataset", "source_name"], condition=~models.Q(source_name=""),
                name="faces_unique_source_name",
            ),
        ]
        indexes = [models.Index(fields=["dataset", "split", "current_label"])]

    def __str__(self) -> str:
        return f"{self.dataset_id}:{self.source_row if self.source_row is not None else self.source_name or self.pk}"

    @property
    def sha256(self) -> str:
        return self.pixels_id

    @property
    def is_duplicate(self) -> bool:
        """True when another image in any dataset has exactly the same pixels."""
        return FaceImage.objects.filter(pixels_id=self.pixels_id).exclude(pk=self.pk).exists()


class NearDuplicateRun(WorkRow):
    """One search for near-duplicate faces (``ml.neardup``) over every split, with the active model's features: the
    unit of work behind the groups it stores. The latest succeeded run is what the page shows and training excludes."""

    model_version = models.ForeignKey("inference.ModelVersion", null=True, blank=True, on_delete=models.SET_NULL,
                                      related_name="near_duplicate_runs", help_text="Whose features were compared.")
    hash_alone = models.PositiveSmallIntegerField(help_text="pHash distance (of 64 bits) that makes a pair alone.")
    cosine = models.FloatField(help_text="Feature cosine that makes a pair with a hash distance of at most ...")
    hash_with_cosine = models.PositiveSmallIntegerField(help_text="... this many bits.")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                   related_name="+")
    # Results, recorded with the groups.
    faces_searched = models.PositiveIntegerField(null=True, blank=True)
    pair_count = models.PositiveIntegerField(null=True, blank=True)
    group_count = models.PositiveIntegerField(null=True, blank=True)
    cross_split_groups = models.PositiveIntegerField(null=True, blank=True)
    conflicting_groups = models.PositiveIntegerField(null=True, blank=True)
    public_test_with_training = models.PositiveIntegerField(
        null=True, blank=True, help_text="PublicTest faces with a near-duplicate in Training.")
    flagged = models.PositiveIntegerField(default=0, help_text="Faces of conflicting groups sent to the review queue.")

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"near-duplicate run {self.pk} ({self.status})"


class NearDuplicateGroup(models.Model):
    """Faces that are one photo (joined through pairs), as a run found them; labels and splits as they were then."""

    run = models.ForeignKey(NearDuplicateRun, on_delete=models.CASCADE, related_name="groups")
    size = models.PositiveIntegerField()
    splits = models.JSONField(default=list, help_text="Distinct splits of the members, sorted.")
    cross_split = models.BooleanField(db_index=True)
    conflicting = models.BooleanField(db_index=True, help_text="Members carried different current labels.")
    pairs = models.JSONField(default=list, help_text="[face a, face b, hash distance, cosine] of each pair found.")

    class Meta:
        ordering = ["run_id", "-conflicting", "-cross_split", "-size", "id"]

    def __str__(self) -> str:
        return f"near-duplicate group {self.pk} ({self.size} faces)"


class NearDuplicateMember(models.Model):
    group = models.ForeignKey(NearDuplicateGroup, on_delete=models.CASCADE, related_name="members")
    face = models.ForeignKey(FaceImage, on_delete=models.CASCADE, related_name="near_duplicate_memberships")
    split = models.CharField(max_length=16, choices=Split.choices)
    label = models.PositiveSmallIntegerField(choices=Emotion.choices, null=True, blank=True,
                                             help_text="The face's current label when the run searched.")

    class Meta:
        ordering = ["group_id", "face_id"]
        constraints = [models.UniqueConstraint(fields=["group", "face"], name="faces_one_membership_per_group")]
