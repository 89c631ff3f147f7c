from __future__ import annotations

import pytest
from django.urls import reverse

from tests.faces.factories import FaceImageFactory

pytestmark = pytest.mark.django_db


def test_home_shows_counts_per_split_label_and_role(client, reviewer, researcher, admin_user):
    FaceImageFactory.create_batch(3, split="Training", original_label=3)
    FaceImageFactory(split="PublicTest", original_label=6)
    client.force_login(reviewer)

    page = client.get(reverse("home")).content.decode()

    assert '<tr data-split="Training"><th>Training</th><td>0</td><td>0</td><td>0</td><td>3</td>' in page
    assert '<tr data-split="PublicTest">' in page and '<tr data-split="PrivateTest">' not in page
    assert "<td>1</td><td>1</td><td>1</td><td class=\"total\">3</td>" in page  # one user per role
    assert reverse("admin:index") not in page  # links only to what the user may open
    assert reverse("api-docs") in page


def test_admin_sees_admin_links(client, admin_user):
    client.force_login(admin_user)
    page = client.get(reverse("home")).content.decode()
    assert reverse("admin:index") in page and reverse("user-list") in page


def test_empty_platform_says_how_to_import(client, reviewer):
    client.force_login(reviewer)
    assert b"import_fer2013" in client.get(reverse("home")).content


def test_api_schema_renders(client, reviewer):
    client.force_login(reviewer)
    assert client.get(reverse("api-schema")).status_code == 200
    assert client.get(reverse("api-docs")).status_code == 200
