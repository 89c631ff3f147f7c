from __future__ import annotations

import pytest
from django.urls import reverse

from .factories import FaceImageFactory


@pytest.mark.django_db
def test_admin_lists_faces_with_thumbnails(client, admin_user):
    image = FaceImageFactory()
    client.force_login(admin_user)

    response = client.get(reverse("admin:faces_faceimage_changelist"))

    assert response.status_code == 200
    assert f'src="{image.pixels.png.url}"' in response.content.decode()
    detail = client.get(reverse("admin:faces_faceimage_change", args=[image.pk]))
    assert detail.status_code == 200 and b'width="144"' in detail.content


@pytest.mark.django_db
def test_stored_png_is_served_in_local_runs(client, admin_user):
    image = FaceImageFactory()
    client.force_login(admin_user)
    response = client.get(image.pixels.png.url)
    assert response.status_code == 200
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")


@pytest.mark.django_db
def test_face_labels_cannot_be_edited_in_the_admin_only_through_its_review_item(client, admin_user):
    from apps.review.models import LabelHistory
    from tests.admin_forms import change_form_post
    from tests.review.factories import ReviewItemFactory

    item = ReviewItemFactory(face=FaceImageFactory(ferplus_votes=[1] * 10))  # labelled 3 (happy)
    client.force_login(admin_user)
    url = reverse("admin:faces_faceimage_change", args=[item.face.pk])

    change_form_post(client, url, current_label=1, excluded=True, ferplus_votes="[0,0,0,0,0,0,0,0,0,10]")

    item.face.refresh_from_db()
    assert (item.face.current_label, item.face.excluded, item.face.ferplus_votes) == (3, False, [1] * 10)
    assert not LabelHistory.objects.exists()
    assert reverse("admin:review_reviewitem_change", args=[item.pk]) in client.get(url).content.decode()
