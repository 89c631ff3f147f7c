from __future__ import annotations

import pytest
from django.urls import reverse

from apps.faces.models import Split
from apps.uploads.models import Upload
from tests.accounts.factories import UserFactory
from tests.faces.factories import FaceImageFactory
from tests.review.factories import ReviewItemFactory, leased_to

pytestmark = pytest.mark.django_db

TRAINING_ROW = '<tr data-split="Training"><th>Training</th><td>0</td><td>0</td><td>0</td><td>3</td>'


@pytest.fixture
def owner(db):
    """A user with no role who uploaded one face."""
    return UserFactory(username="olga-owner")


@pytest.fixture
def faces_everywhere(owner):
    """Three Training faces (happy), one PublicTest, one PrivateTest and ``owner``'s upload."""
    FaceImageFactory.create_batch(3, split=Split.TRAINING, original_label=3)
    FaceImageFactory(split=Split.PUBLIC_TEST, original_label=6)
    FaceImageFactory(split=Split.PRIVATE_TEST, original_label=0)
    upload = FaceImageFactory(split=Split.UPLOAD, original_label=None)
    Upload.objects.create(user=owner, face=upload, original_name="me.jpg", content_type="image/jpeg", size=1,
                          width=48, height=48, methods=["gradcam"])


def home(client, user) -> str:
    client.force_login(user)
    return client.get(reverse("home")).content.decode()


def splits_shown(page: str) -> list[str]:
    return [split for split in Split.values if f'<tr data-split="{split}">' in page]


def test_researcher_sees_counts_of_the_faces_they_may_see_and_no_user_counts(client, researcher, settings,
                                                                              faces_everywhere):
    settings.GALLERY_SHOW_PRIVATE_TEST = True

    page = home(client, researcher)

    assert TRAINING_ROW in page and "(4 in all)" in page
    assert splits_shown(page) == ["Training", "PublicTest"]  # not PrivateTest, not someone's upload
    assert 'id="user-counts"' not in page
    assert reverse("admin:index") not in page  # links only to what the user may open
    assert reverse("api-docs") in page


def test_admin_sees_private_test_only_when_it_is_shown_and_the_user_counts(client, reviewer, researcher, admin_user,
                                                                           settings, faces_everywhere):
    settings.GALLERY_SHOW_PRIVATE_TEST = False
    assert splits_shown(home(client, admin_user)) == ["Training", "PublicTest", "Upload"]

    settings.GALLERY_SHOW_PRIVATE_TEST = True
    page = home(client, admin_user)

    assert splits_shown(page) == ["Training", "PublicTest", "PrivateTest", "Upload"] and "(6 in all)" in page
    assert 'id="user-counts"' in page
    assert '<td>1</td><td>1</td><td>1</td><td class="total">4</td>' in page  # one user per role, and the owner


def test_a_user_without_a_role_sees_no_data_counts(client, settings, faces_everywhere):
    settings.GALLERY_SHOW_PRIVATE_TEST = True

    page = home(client, UserFactory(username="nora-norole"))

    assert 'id="face-counts"' not in page and 'id="user-counts"' not in page
    assert "import_fer2013" not in page and "has no role yet" in page


def test_an_uploader_without_a_role_sees_only_their_own_uploads(client, owner, faces_everywhere):
    page = home(client, owner)
    assert splits_shown(page) == ["Upload"] and "(1 in all)" in page and 'id="user-counts"' not in page


def test_reviewer_sees_only_the_faces_of_their_own_items(client, reviewer, faces_everywhere):
    assert 'id="face-counts"' not in home(client, reviewer)

    leased_to(ReviewItemFactory(), reviewer)
    page = home(client, reviewer)

    assert splits_shown(page) == ["Training"] and "(1 in all)" in page and 'id="user-counts"' not in page


def test_admin_sees_admin_links(client, admin_user):
    page = home(client, admin_user)
    assert reverse("admin:index") in page and reverse("user-list") in page


def test_empty_platform_tells_an_admin_how_to_import(client, admin_user):
    assert "import_fer2013" in home(client, admin_user)


def test_api_schema_renders(client, reviewer):
    client.force_login(reviewer)
    assert client.get(reverse("api-schema")).status_code == 200
    assert client.get(reverse("api-docs")).status_code == 200
