"""A run that leaves out Training faces with a near-duplicate in a test split (the latest near-duplicate search)."""

from __future__ import annotations

import numpy as np
import pytest
from rest_framework.test import APIClient

from apps.faces.models import FaceImage, Split
from apps.faces.near_duplicates import near_duplicate_run_execute, near_duplicate_run_start
from apps.faces.selectors import training_faces_with_test_near_duplicates
from apps.faces.services import FaceRecord, FaceWriter, dataset_get_or_create
from apps.training.execution import training_run_execute
from apps.training.models import TrainingRun
from apps.training.services import TrainingRunInvalid, training_run_create
from apps.training.snapshot import LabelSnapshot
from tests.faces.neardup_data import brightened, smooth_face

from .conftest import run_kwargs

pytestmark = pytest.mark.django_db


@pytest.fixture
def leaked(faces):
    """Two PublicTest faces that are brightened copies of Training faces (stored after the synthetic ones)."""
    originals = [smooth_face(41), smooth_face(42)]
    writer = FaceWriter(dataset_get_or_create(name="fer2013"))
    with writer.scope():
        writer.write([FaceRecord(raw=image.tobytes(), split=Split.TRAINING, label=2, source_row=1000 + i)
                      for i, image in enumerate(originals)]
                     + [FaceRecord(raw=brightened(image, 25).tobytes(), split=Split.PUBLIC_TEST, label=2,
                                   source_row=2000 + i) for i, image in enumerate(originals)])
    return set(FaceImage.objects.filter(source_row__in=[1000, 1001]).values_list("pk", flat=True))


def test_a_run_leaves_out_training_faces_with_a_test_near_duplicate(random_active_version, leaked, admin_user):
    with pytest.raises(TrainingRunInvalid, match="no near-duplicate search"):
        training_run_create(**run_kwargs(exclude_cross_split_duplicates=True))
    search = near_duplicate_run_execute(run_id=near_duplicate_run_start().pk)
    left_out = training_faces_with_test_near_duplicates()
    assert leaked <= left_out

    run = training_run_execute(run_id=training_run_create(**run_kwargs(exclude_cross_split_duplicates=True)).pk)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    trained_on = set(LabelSnapshot.decode(run.snapshot_labels).face_ids.tolist())
    training = set(FaceImage.objects.filter(split=Split.TRAINING).values_list("pk", flat=True))
    assert trained_on == training - left_out
    assert run.duplicates_left_out == len(left_out) and run.near_duplicate_run == search
    assert "left out" in run.log

    plain = training_run_execute(run_id=training_run_create(**run_kwargs()).pk)
    assert not plain.exclude_cross_split_duplicates and plain.duplicates_left_out is None
    assert set(np.asarray(LabelSnapshot.decode(plain.snapshot_labels).face_ids).tolist()) == training


def test_the_api_takes_the_option(random_active_version, leaked, admin_user):
    near_duplicate_run_execute(run_id=near_duplicate_run_start().pk)
    client = APIClient()
    client.force_login(admin_user)
    answer = client.post("/api/training-runs/", {"recipe": "scoring", "epochs": 1,
                                                 "exclude_cross_split_duplicates": True}, format="json")
    assert answer.status_code == 202, answer.json()
    assert answer.json()["exclude_cross_split_duplicates"] is True
