from __future__ import annotations

import numpy as np
import pytest

from apps.faces.models import FaceImage
from apps.faces.selectors import face_counts_by_split_and_label, face_pixels, training_faces_labelled

from .factories import FaceImageFactory, random_pixels

pytestmark = pytest.mark.django_db


def test_counts_per_split_and_label():
    FaceImageFactory.create_batch(2, split="Training", original_label=3)
    FaceImageFactory(split="Training", original_label=0, excluded=True)
    FaceImageFactory(split="PublicTest", original_label=6)
    FaceImageFactory(split="Upload", original_label=None)

    counts = face_counts_by_split_and_label(faces=FaceImage.objects.all())

    rows = {split: (cells, total) for split, cells, total in counts.rows}
    assert rows["Training"] == ([1, 0, 0, 2, 0, 0, 0, 0], 3)
    assert rows["PublicTest"][0][6] == 1
    assert rows["Upload"][0][-1] == 1  # unlabelled column
    assert "PrivateTest" not in rows
    assert counts.total == 5 and counts.excluded == 1
    assert counts.columns[-1] == "unlabelled"


def test_every_choice_set_is_built_from_the_one_class_list():
    from apps.faces.labels import Emotion
    from apps.review.choices import NOT_A_FACE, UNSURE, Choice
    from ml.labels import CLASSES

    assert list(Emotion.values) == list(range(7)) and tuple(Emotion.labels) == CLASSES
    assert tuple(Choice.labels[:7]) == CLASSES and list(Choice.values[:7]) == list(range(7))
    assert (Choice(NOT_A_FACE).label, Choice(UNSURE).label) == ("not a face", "unsure") and UNSURE == 8


@pytest.mark.parametrize("value, expected", [("happy", 3), (" Happy ", 3), ("3", 3), (3, 3), (0, 0), ("neutral", 6)])
def test_class_index_accepts_names_and_indices(value, expected):
    from ml.labels import class_index

    assert class_index(value) == expected


@pytest.mark.parametrize("value", [7, -1, "7", "3.0", "bored", "", True, None])
def test_class_index_refuses_anything_else(value):
    from ml.labels import class_index

    with pytest.raises(ValueError, match="expected 0-6"):
        class_index(value)


def test_training_faces_labelled_leaves_out_other_splits_unlabelled_and_excluded():
    keep = FaceImageFactory.create_batch(2, split="Training", original_label=1)
    FaceImageFactory(split="Training", original_label=2, excluded=True)
    FaceImageFactory(split="Training", original_label=None)
    FaceImageFactory(split="PublicTest", original_label=3)
    assert sorted(training_faces_labelled().values_list("pk", flat=True)) == sorted(f.pk for f in keep)


def test_face_pixels_reads_stored_pngs_in_the_order_asked_and_decodes_a_shared_png_once(monkeypatch):
    from apps.faces.models import FacePixels

    a = FaceImageFactory(pixels__raw=random_pixels(7))
    b = FaceImageFactory(pixels__raw=random_pixels(8))
    twin = FaceImageFactory(pixels=a.pixels)  # an exact duplicate shares the PNG
    storage = FacePixels._meta.get_field("png").storage
    opened = []
    real_open = storage.open
    monkeypatch.setattr(storage, "open", lambda name, mode="rb": opened.append(name) or real_open(name, mode))

    arrays = face_pixels([b.pk, a.pk, twin.pk])

    assert arrays.shape == (3, 48, 48) and arrays.dtype == np.uint8
    assert [arrays[i].tobytes() for i in range(3)] == [random_pixels(8), random_pixels(7), random_pixels(7)]
    assert len(opened) == 2


def test_face_pixels_names_a_missing_face():
    with pytest.raises(ValueError, match="do not exist"):
        face_pixels([999999])
