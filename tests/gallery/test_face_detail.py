"""A face's detail: probabilities, stored heatmaps, another class computed on demand, label history and votes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db.models import F
from django.utils import timezone

from apps.inference.models import Explanation
from apps.review.choices import UNSURE
from ml.labels import CLASSES

pytestmark = pytest.mark.django_db


def test_detail_page_and_api(client, researcher, admin_user, gallery_data):
    client.force_login(researcher)
    face = gallery_data.settled
    prediction = gallery_data.predictions[face.pk]
    html = client.get(f"/gallery/faces/{face.pk}/", {"version": gallery_data.version.pk}).content.decode()
    assert f'<strong id="predicted-label">{CLASSES[prediction.predicted_label]}</strong>' in html
    assert html.count("<tr") >= 7 and 'id="probabilities"' in html
    stored = Explanation.objects.filter(face=face, model_version=gallery_data.version)
    assert html.count('class="heatmap"') == stored.count() >= 1
    # A settled item's votes: the outcome is the label, who chose what is for admins and the round's voters only.
    assert 'id="votes"' not in html and "rita-reviewer" not in html
    assert 'id="no-history"' in html

    body = client.get(f"/api/gallery/faces/{face.pk}").json()
    assert body["predicted_class"] == CLASSES[prediction.predicted_label]
    assert body["probabilities"] == pytest.approx(dict(zip(CLASSES, prediction.probabilities, strict=True)))
    assert len(body["explanations"]) == stored.count()
    assert body["votes"] == [] and "rita-reviewer" not in str(body)
    client.force_login(admin_user)
    assert [v["reviewer"] for v in client.get(f"/api/gallery/faces/{face.pk}").json()["votes"]] == ["rita-reviewer"]
    assert "rita-reviewer" in client.get(f"/gallery/faces/{face.pk}/").content.decode()
    client.force_login(researcher)

    relabelled = client.get(f"/api/gallery/faces/{gallery_data.relabelled.pk}").json()
    assert [h["kind"] for h in relabelled["history"]] == ["admin"]
    assert 'id="label-history"' in client.get(f"/gallery/faces/{gallery_data.relabelled.pk}/").content.decode()


def test_a_researcher_who_also_reviews_stays_blind_to_votes_of_an_open_round(client, gallery_data):
    from apps.accounts.roles import Role
    from apps.review.models import ReviewItem, Vote
    from tests.accounts.factories import UserFactory

    face = gallery_data.faces[1]
    item = ReviewItem.objects.get(face=face)  # open: not reviewed yet
    Vote.objects.create(item=item, reviewer=UserFactory(username="vic-voter", roles=[Role.REVIEWER]), choice=2)
    both = UserFactory(username="rae-both", roles=[Role.REVIEWER, Role.RESEARCHER])
    client.force_login(both)
    assert client.get(f"/api/gallery/faces/{face.pk}").json()["votes"] == []
    assert "vic-voter" not in client.get(f"/gallery/faces/{face.pk}/").content.decode()
    mine = Vote.objects.create(item=item, reviewer=both, choice=UNSURE)
    assert client.get(f"/api/gallery/faces/{face.pk}").json()["votes"] == []  # "unsure" is no counted vote
    mine.choice = 2
    mine.save()
    assert client.get(f"/api/gallery/faces/{face.pk}").json()["votes"] == []  # it may still be taken back
    Vote.objects.update(created_at=F("created_at") - timedelta(days=1))  # past the undo window: final
    assert [v["reviewer"] for v in client.get(f"/api/gallery/faces/{face.pk}").json()["votes"]] == ["vic-voter",
                                                                                                   "rae-both"]
    assert "vic-voter" in client.get(f"/gallery/faces/{face.pk}/").content.decode()


def test_a_researcher_sees_no_votes_of_any_round(client, researcher, gallery_data):
    from apps.accounts.roles import Role
    from apps.review.models import ReviewItem, Vote
    from tests.accounts.factories import UserFactory

    face = gallery_data.faces[1]
    item = ReviewItem.objects.get(face=face)  # open
    Vote.objects.create(item=item, reviewer=UserFactory(username="vic-voter", roles=[Role.REVIEWER]), choice=2,
                        created_at=timezone.now() - timedelta(days=1))
    client.force_login(researcher)
    assert client.get(f"/api/gallery/faces/{face.pk}").json()["votes"] == []
    assert "vic-voter" not in client.get(f"/gallery/faces/{face.pk}/").content.decode()


def test_heatmap_of_another_class_on_demand(client, researcher, gallery_data, eager_tasks,
                                            django_capture_on_commit_callbacks):
    client.force_login(researcher)
    face = gallery_data.faces[2]
    stored = set(Explanation.objects.filter(face=face).values_list("target_label", flat=True))
    other = next(c for c in range(7) if c not in stored)
    url = f"/api/gallery/faces/{face.pk}/explanations"
    body = {"method": "gradcam", "target": CLASSES[other], "version": gallery_data.version.pk}
    with django_capture_on_commit_callbacks(execute=True) as sends:
        pending = client.post(url, body, content_type="application/json")
        # Not stored: a worker makes it (sent once the request's work commits), never this request.
        assert pending.status_code == 202, pending.content
        assert pending.json()["status"] == "pending" and pending.json()["target_class"] == CLASSES[other]
        assert not Explanation.objects.filter(face=face, target_label=other).exists()
    assert len(sends) == 1  # the worker's task ran (inline here) when the callbacks did
    response = client.post(url, body, content_type="application/json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["target_class"] == CLASSES[other] and "/media/explanations/" in body["overlay_url"]
    assert Explanation.objects.filter(face=face, target_label=other, method="gradcam").count() == 1
    again = client.post(url, {"method": "gradcam", "target": other}, content_type="application/json")
    assert again.json()["id"] == response.json()["id"]  # stored once, returned after
    assert client.post(url, {"method": "nope"}, content_type="application/json").status_code == 400
    assert client.post(url, {"target": "bored"}, content_type="application/json").status_code == 400
    assert client.post(url, {"version": 999999}, content_type="application/json").status_code == 404


def test_face_without_prediction_for_the_version(client, researcher, gallery_data, second_version):
    client.force_login(researcher)
    html = client.get(f"/gallery/faces/{gallery_data.faces[0].pk}/", {"version": second_version.pk}).content.decode()
    assert 'id="no-prediction"' in html and 'id="no-heatmaps"' in html
    assert client.get("/gallery/faces/999999/").status_code == 404
