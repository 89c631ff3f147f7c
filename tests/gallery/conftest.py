"""A small real data set for the gallery: faces in three splits, real predictions and Grad-CAM maps made by the tiny
test checkpoint (``predict_and_explain``), labels set so that both right and wrong predictions exist, review rows."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from apps.faces.models import FaceImage, Split
from apps.inference.models import ModelVersion, Prediction
from apps.inference.services.predictions import predict_and_explain
from apps.inference.services.registry import model_version_register
from apps.review.models import LabelHistory, LabelScore, ReviewItem, ScoringRun, Vote
from tests.faces.factories import FaceImageFactory

# tiny_checkpoint, tiny_checkpoint_v2 and active_version are the shared ones (tests/conftest.py).

VISIBLE = (Split.TRAINING, Split.PUBLIC_TEST)  # PrivateTest only for admins when enabled; uploads never


@dataclass
class GalleryData:
    version: ModelVersion
    faces: list[FaceImage]
    unexplained: FaceImage  # predicted, but no heatmap stored
    settled: FaceImage  # a settled review item with votes
    relabelled: FaceImage  # a label-history row only
    predictions: dict[int, Prediction] = field(default_factory=dict)

    def reload(self) -> None:
        self.predictions = {p.face_id: p for p in Prediction.objects.filter(model_version=self.version)}
        self.faces = [FaceImage.objects.get(pk=f.pk) for f in self.faces]

    def ids(self, keep=lambda f, p: True, splits=VISIBLE) -> set[int]:
        """Ids of the predicted faces in ``splits`` (by default those a researcher sees) for which
        ``keep(face, prediction)`` holds."""
        return {f.pk for f in self.faces
                if f.pk in self.predictions and f.split in splits and keep(f, self.predictions[f.pk])}

    @property
    def visible(self) -> set[int]:
        return self.ids()


def make_faces(splits: dict[str, int]) -> list[FaceImage]:
    faces = []
    for split, n in splits.items():
        faces += [FaceImageFactory(split=split, original_label=i % 7) for i in range(n)]
    return faces


def label_half_right(faces: list[FaceImage], version: ModelVersion) -> None:
    """Even positions: current label = the prediction (right); odd: another class (wrong)."""
    predicted = dict(Prediction.objects.filter(model_version=version).values_list("face_id", "predicted_label"))
    for i, face in enumerate(faces):
        if face.pk in predicted:
            face.current_label = predicted[face.pk] if i % 2 == 0 else (predicted[face.pk] + 1) % 7
            face.save(update_fields=["current_label"])


@pytest.fixture
def gallery_data(db, active_version, reviewer) -> GalleryData:
    faces = make_faces({Split.PUBLIC_TEST: 10, Split.TRAINING: 4, Split.PRIVATE_TEST: 2})
    upload = FaceImageFactory(split=Split.UPLOAD, original_label=None, current_label=None, source_row=None,
                              source_name="someone/upload.png")
    ids = [f.pk for f in faces]
    predict_and_explain(face_ids=ids, methods=[], version=active_version)  # predictions first
    label_half_right(faces, active_version)
    unexplained = faces[-3]  # a Training face
    predict_and_explain(face_ids=[pk for pk in ids if pk != unexplained.pk], methods=["gradcam"],
                        version=active_version)

    run = ScoringRun.objects.create(status=ScoringRun.Status.SUCCEEDED)
    for i, face in enumerate(faces):
        face.refresh_from_db()
        LabelScore.objects.create(run=run, face=face, given_label=face.current_label, quality=round(0.05 * (i + 1), 2),
                                  suggested_label=face.current_label, suggested_probability=0.5,
                                  probabilities=[1 / 7] * 7)
    settled, relabelled = faces[0], faces[3]
    item = ReviewItem.objects.create(face=settled, status=ReviewItem.Status.SETTLED,
                                     settled_label=settled.current_label)
    Vote.objects.create(item=item, reviewer=reviewer, choice=settled.current_label)
    ReviewItem.objects.create(face=faces[1])  # open: not reviewed
    LabelHistory.objects.create(face=relabelled, kind=LabelHistory.Kind.ADMIN, old_label=relabelled.original_label,
                                new_label=relabelled.current_label)
    predict_and_explain(face_ids=[upload.pk], methods=["gradcam"], version=active_version)  # someone's upload
    data = GalleryData(version=active_version, faces=[*faces, upload], unexplained=unexplained, settled=settled,
                       relabelled=relabelled)
    data.reload()
    return data


@pytest.fixture
def second_version(db, tiny_checkpoint_v2) -> ModelVersion:
    return model_version_register(checkpoint_path=tiny_checkpoint_v2, name="tiny-v2")
