"""The near-duplicate search as a job over faces in the database (the tiny model's features), its page and API."""

from __future__ import annotations

import numpy as np
import pytest
from django.core.management import call_command
from django.test import Client
from rest_framework.test import APIClient

from apps.faces.models import FaceImage, NearDuplicateGroup, NearDuplicateRun, Split
from apps.faces.near_duplicates import (
    NearDuplicateRunBusy,
    NoActiveModel,
    near_duplicate_run_execute,
    near_duplicate_run_start,
)
from apps.faces.selectors import near_duplicate_run_latest, training_faces_with_test_near_duplicates
from apps.faces.services import FaceRecord, FaceWriter, dataset_get_or_create
from apps.review.models import ReviewItem

from .neardup_data import brightened, rescaled, smooth_face

pytestmark = pytest.mark.django_db


def store(faces: list[tuple[str, np.ndarray, str, int]]) -> dict[str, FaceImage]:
    """Faces by name: (name, pixels, split, label)."""
    writer = FaceWriter(dataset_get_or_create(name="fer2013"))
    with writer.scope():
        writer.write([FaceRecord(raw=pixels.tobytes(), split=split, label=label, source_row=row)
                      for row, (_, pixels, split, label) in enumerate(faces)])
    by_row = {face.source_row: face for face in FaceImage.objects.all()}
    return {name: by_row[row] for row, (name, *_rest) in enumerate(faces)}


@pytest.fixture
def faces(db):
    a, b = smooth_face(1), smooth_face(2)
    return store([
        ("a", a, Split.TRAINING, 3), ("a_test", brightened(a, 30), Split.PUBLIC_TEST, 3),  # leakage, same label
        ("b", b, Split.TRAINING, 1), ("b_copy", rescaled(b), Split.TRAINING, 4),  # conflicting labels
        ("c", smooth_face(3), Split.TRAINING, 0), ("d", smooth_face(4), Split.PUBLIC_TEST, 5),
        ("e", smooth_face(5), Split.PRIVATE_TEST, 6),
    ])


def _search(user=None) -> NearDuplicateRun:
    run = near_duplicate_run_start(created_by=user)
    return near_duplicate_run_execute(run_id=run.pk)


def test_a_search_stores_groups_counts_leakage_and_flags_conflicts(active_version, faces):
    run = _search()
    assert run.status == NearDuplicateRun.Status.SUCCEEDED, run.error
    assert run.model_version == active_version and run.faces_searched == 7
    groups = {frozenset(g.members.values_list("face_id", flat=True)): g for g in run.groups.all()}
    leak, conflict = frozenset({faces["a"].pk, faces["a_test"].pk}), frozenset({faces["b"].pk, faces["b_copy"].pk})
    assert set(groups) == {leak, conflict}
    assert groups[leak].cross_split and not groups[leak].conflicting
    assert groups[leak].splits == ["PublicTest", "Training"]
    assert groups[conflict].conflicting and not groups[conflict].cross_split
    face_a, face_b, distance, cosine = groups[leak].pairs[0]
    assert {face_a, face_b} == leak and 0 <= distance <= run.hash_alone and -1 <= cosine <= 1.0001
    assert (run.group_count, run.cross_split_groups, run.conflicting_groups, run.public_test_with_training) == \
        (2, 1, 1, 1)
    # Both faces of the conflicting group are in the queue as duplicate conflicts, with the other's label.
    items = {item.face_id: item for item in ReviewItem.objects.all()}
    assert set(items) == set(conflict) and run.flagged == 2
    item = items[faces["b"].pk]
    assert item.kind == ReviewItem.Kind.DUPLICATE_CONFLICT
    assert item.kind_detail["group"] == groups[conflict].pk
    assert item.kind_detail["others"] == [{"face": faces["b_copy"].pk, "split": "Training", "label": 4}]
    # What a training run that leaves out cross-split duplicates does not train on.
    assert near_duplicate_run_latest() == run
    assert training_faces_with_test_near_duplicates() == {faces["a"].pk}


def test_a_conflict_across_splits_queues_only_the_training_face(active_version, db):
    face = smooth_face(7)
    stored = store([("train", face, Split.TRAINING, 0), ("test", brightened(face, 30), Split.PUBLIC_TEST, 5)])
    run = _search()
    assert (run.conflicting_groups, run.cross_split_groups, run.flagged) == (1, 1, 1)
    item = ReviewItem.objects.get()
    assert item.face_id == stored["train"].pk and item.kind == ReviewItem.Kind.DUPLICATE_CONFLICT
    assert item.kind_detail["others"] == [{"face": stored["test"].pk, "split": "PublicTest", "label": 5}]


def test_a_second_search_replaces_what_the_page_shows(active_version, faces):
    first = _search()
    FaceImage.objects.filter(pk=faces["b_copy"].pk).update(excluded=True)  # reviewers: "not a face"
    second = _search()
    assert near_duplicate_run_latest() == second and second.group_count == 1
    assert NearDuplicateGroup.objects.filter(run=first).count() == 2


def test_starting_needs_an_active_version_and_one_search_at_a_time(faces, active_version):
    near_duplicate_run_start()
    with pytest.raises(NearDuplicateRunBusy):
        near_duplicate_run_start()


def test_no_active_version_is_a_conflict(faces):
    with pytest.raises(NoActiveModel):
        near_duplicate_run_start()


def test_the_command_runs_a_search(active_version, faces, capsys):
    call_command("find_near_duplicates")
    assert "1 PublicTest faces have a near-duplicate in Training" in capsys.readouterr().out


def test_api_reads_for_researchers_and_starts_for_admins(active_version, faces, researcher, admin_user, reviewer):
    client = APIClient()
    client.force_login(researcher)
    body = client.get("/api/faces/near-duplicates/").json()
    assert body["state"] == "none" and body["groups"] == []
    assert client.post("/api/faces/near-duplicates/runs").status_code == 403
    client.force_login(admin_user)
    started = client.post("/api/faces/near-duplicates/runs")
    assert started.status_code == 202 and started.json()["status"] == "queued"
    assert client.get("/api/faces/near-duplicates/").json()["state"] == "pending"
    again = client.post("/api/faces/near-duplicates/runs")
    assert again.status_code == 409 and again.json()["code"] == "near_duplicate_run_busy"
    near_duplicate_run_execute(run_id=started.json()["id"])

    client.force_login(researcher)
    body = client.get("/api/faces/near-duplicates/").json()
    assert body["state"] == "ready" and body["run"]["public_test_with_training"] == 1 and body["total"] == 2
    assert body["groups"][0]["conflicting"] and body["groups"][1]["cross_split"]
    only = client.get("/api/faces/near-duplicates/", {"cross_split": "true"}).json()
    assert [sorted(m["split"] for m in g["members"]) for g in only["groups"]] == [["PublicTest", "Training"]]
    assert client.get("/api/faces/near-duplicates/", {"limit": 0}).status_code == 400
    client.force_login(reviewer)
    assert client.get("/api/faces/near-duplicates/").status_code == 403


def test_the_page_shows_groups_labels_splits_and_the_leakage_count(active_version, faces, researcher):
    _search()
    client = Client()
    client.force_login(researcher)
    page = client.get("/faces/near-duplicates/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'id="leakage"><strong>1</strong> PublicTest faces' in html
    assert "conflicting labels</span>" in html and "disgust" in html and "sad" in html
    assert "Search now" not in html  # admins only
    filtered = client.get("/faces/near-duplicates/?conflicting=true").content.decode()
    assert f'data-face="{faces["b"].pk}"' in filtered and f'data-face="{faces["a"].pk}"' not in filtered
    assert client.get("/faces/near-duplicates/?offset=-1").status_code == 400
