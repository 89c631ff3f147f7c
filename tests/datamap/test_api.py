"""The data map API and page: start (researchers and admins), read state and points, who sees which map."""

from __future__ import annotations

import time

import pytest

from apps.core.models import WorkStatus
from apps.datamap.models import DataMap
from apps.datamap.services import data_map_execute, data_map_start
from apps.faces.models import Split

pytestmark = pytest.mark.django_db


def test_start_read_and_points(client, researcher, reviewer, map_data, django_capture_on_commit_callbacks):
    client.force_login(reviewer)
    assert client.post("/api/datamap/maps", {}, content_type="application/json").status_code == 403
    client.force_login(researcher)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert client.post("/api/datamap/maps", {"method": "pca"}, content_type="application/json").status_code == 400
        bad_split = client.post("/api/datamap/maps", {"split": "PrivateTest"}, content_type="application/json")
        assert bad_split.status_code == 400 and bad_split.json()["code"] == "bad_parameter"
        assert client.post("/api/datamap/maps", {"model_version": 999999},
                           content_type="application/json").status_code == 404
        response = client.post("/api/datamap/maps", {}, content_type="application/json")  # active version, PublicTest
        assert response.status_code == 202
        body = response.json()
        assert (body["status"], body["split"], body["method"], body["model_version"]) == \
            ("queued", "PublicTest", "umap", map_data.version.pk)
        again = client.post("/api/datamap/maps", {"model_version": map_data.version.pk},
                            content_type="application/json")
        assert again.status_code == 200 and again.json()["id"] == body["id"]
    assert len(callbacks) == 1

    pending = client.get(f"/api/datamap/maps/{body['id']}").json()
    assert pending["status"] == "queued" and pending["points"] is None  # a read never computes
    data_map_execute(map_id=body["id"])
    detail = client.get(f"/api/datamap/maps/{body['id']}").json()
    assert detail["status"] == "succeeded" and detail["face_count"] == len(map_data.public)
    points = detail["points"]
    assert points["ids"] == sorted(f.pk for f in map_data.public)
    assert {len(v) for v in points.values()} == {len(map_data.public)}
    assert points["label"][-1] is None and set(points["quality"]) == {None}  # PublicTest is never scored
    assert client.get(points["image"][0]).status_code == 200  # the face PNG, through the access check
    listed = client.get("/api/datamap/maps").json()
    assert [m["id"] for m in listed["results"]] == [body["id"]]

    page = client.get(f"/datamap/?version={map_data.version.pk}&split=PublicTest&method=umap").content.decode()
    assert f'data-ready="{body["id"]}"' in page and 'data-working=""' in page and "Recompute" in page
    assert client.get("/datamap/?method=pca").status_code == 400
    assert client.get("/datamap/?split=PrivateTest").status_code == 400


def test_maps_follow_the_split_rule(client, researcher, admin_user, map_data, settings):
    settings.GALLERY_SHOW_PRIVATE_TEST = True
    private, _ = data_map_start(version=map_data.version, split=Split.PRIVATE_TEST, method="umap", user=admin_user)
    client.force_login(researcher)
    assert client.get(f"/api/datamap/maps/{private.pk}").status_code == 404  # as if it did not exist
    assert client.get("/api/datamap/maps").json()["results"] == []
    client.force_login(admin_user)
    assert client.get(f"/api/datamap/maps/{private.pk}").json()["status"] == "queued"
    assert client.get("/api/datamap/maps/999999").status_code == 404


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_map_is_made_by_a_real_worker(shared_media_root, client, researcher, map_data):
    client.force_login(researcher)
    response = client.post("/api/datamap/maps", {"split": "Training", "method": "tsne"},
                           content_type="application/json")
    assert response.status_code == 202
    pk = response.json()["id"]
    deadline = time.monotonic() + 180
    while (row := DataMap.objects.get(pk=pk)).status != WorkStatus.SUCCEEDED:
        assert row.status in (WorkStatus.QUEUED, WorkStatus.RUNNING), row.error
        assert time.monotonic() < deadline, f"the map stayed {row.status}"
        time.sleep(0.5)
    assert row.attempts == 1 and row.last_sent_at is not None and row.face_count == len(map_data.training)
    points = client.get(f"/api/datamap/maps/{pk}").json()["points"]
    assert points["ids"] == sorted(f.pk for f in map_data.training) and None not in points["x"]
