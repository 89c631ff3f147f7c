"""A small real data set for data maps: random faces in three splits, the tiny test checkpoint active, a succeeded
scoring run with label scores for the Training faces and review items in two states."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from apps.faces.models import FaceImage, Split
from apps.inference.models import ModelVersion
from apps.review.models import LabelScore, ReviewItem, ScoringRun
from tests.faces.factories import FaceImageFactory


@dataclass
class MapData:
    version: ModelVersion
    public: list[FaceImage]
    training: list[FaceImage]
    private: list[FaceImage]


@pytest.fixture
def map_data(db, active_version) -> MapData:
    public = [FaceImageFactory(split=Split.PUBLIC_TEST, original_label=i % 7) for i in range(12)]
    training = [FaceImageFactory(split=Split.TRAINING, original_label=i % 7) for i in range(8)]
    private = [FaceImageFactory(split=Split.PRIVATE_TEST, original_label=i % 7) for i in range(6)]
    public[-1].current_label = None  # an unlabelled face
    public[-1].save(update_fields=["current_label"])
    old = ScoringRun.objects.create(status=ScoringRun.Status.SUCCEEDED)
    run = ScoringRun.objects.create(status=ScoringRun.Status.SUCCEEDED)
    for i, face in enumerate(training):
        for r, quality in ((old, 0.99), (run, round(0.1 * i, 2))):
            LabelScore.objects.create(run=r, face=face, given_label=face.current_label, quality=quality,
                                      suggested_label=face.current_label, suggested_probability=0.5,
                                      probabilities=[1 / 7] * 7)
    ReviewItem.objects.create(face=training[0], status=ReviewItem.Status.SETTLED, settled_label=0)
    ReviewItem.objects.create(face=training[1])
    return MapData(version=active_version, public=public, training=training, private=private)
