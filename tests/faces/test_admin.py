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
