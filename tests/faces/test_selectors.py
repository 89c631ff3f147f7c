from __future__ import annotations

import pytest

from apps.faces.selectors import face_counts_by_split_and_label

from .factories import FaceImageFactory

pytestmark = pytest.mark.django_db


def test_counts_per_split_and_label():
    FaceImageFactory.create_batch(2, split="Training", original_label=3)
    FaceImageFactory(split="Training", original_label=0, excluded=True)
    FaceImageFactory(split="PublicTest", original_label=6)
    FaceImageFactory(split="Upload", original_label=None)

    counts = face_counts_by_split_and_label()

    rows = {split: (cells, total) for split, cells, total in counts.rows}
    assert rows["Training"] == ([1, 0, 0, 2, 0, 0, 0, 0], 3)
    assert rows["PublicTest"][0][6] == 1
    assert rows["Upload"][0][-1] == 1  # unlabelled column
    assert "PrivateTest" not in rows
    assert counts.total == 5 and counts.excluded == 1
    assert counts.columns[-1] == "unlabelled"


def test_labels_match_the_ml_package():
    ml_labels = pytest.importorskip("ml.labels")
    from apps.faces.labels import CLASSES

    assert tuple(ml_labels.CLASSES) == CLASSES
