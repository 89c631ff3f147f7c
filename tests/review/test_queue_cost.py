"""What one step of the review loop costs the database: a vote and a next item were about 90 ms each at the median
under 8 reviewers (issue 16), for two small writes and reads. The latency itself is measured by
``benchmarks/bench_load.py``; these tests hold the two causes found: the number of queries per request, and handing
out that sorted every open item per request instead of walking an index to the first one this reviewer may take."""

from __future__ import annotations

import pytest
from django.db import connection, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from apps.faces.models import FaceImage
from apps.review.models import ReviewItem
from apps.review.services import _available_for, _lock
from tests.faces.factories import DatasetFactory, FacePixelsFactory

from .factories import ReviewItemFactory

pytestmark = pytest.mark.django_db

# Session, user, roles (once: kept on the request's user), the reviewer's row lock (one reviewer's calls queue up),
# the held items, one walk per kind (regular, gold: merged in queue order), the lease, the item rows, progress, the
# active version, and the queue's reviewer model (once per response: the items' reasons).
NEXT_QUERIES = 15
# Session, user, roles, the locked item, the duplicate check, the vote (in a savepoint), the lease release, the round's
# votes, progress.
VOTE_QUERIES = 14


def test_a_vote_and_a_next_item_make_a_bounded_number_of_queries(reviewer, django_assert_max_num_queries):
    ReviewItemFactory.create_batch(5)
    client = APIClient()
    client.force_login(reviewer)
    with django_assert_max_num_queries(NEXT_QUERIES):
        item = client.get("/api/review/items/next", {"count": 1}).json()["items"][0]
    with django_assert_max_num_queries(VOTE_QUERIES):
        response = client.post(f"/api/review/items/{item['id']}/votes", {"choice": 2}, format="json")
    assert response.status_code == 201
    with django_assert_max_num_queries(NEXT_QUERIES):
        assert client.get("/api/review/items/next", {"count": 1}).json()["items"][0]["id"] != item["id"]


def test_handing_out_walks_the_open_queue_index_instead_of_sorting_every_open_item(reviewer):
    dataset, pixels = DatasetFactory(), FacePixelsFactory()
    faces = FaceImage.objects.bulk_create(
        [FaceImage(dataset=dataset, pixels=pixels, split="Training", original_label=i % 7, current_label=i % 7,
                   source_row=i) for i in range(3000)])
    ReviewItem.objects.bulk_create([ReviewItem(face=face, priority=i / 3000, suggested_label=(i + 1) % 7,
                                               suggested_probability=0.6) for i, face in enumerate(faces)])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE review_reviewitem")
    for gold in (False, True):  # handing out walks both kinds in queue order and merges them
        with transaction.atomic():
            plan = (_lock(_available_for(reviewer, timezone.now()).filter(is_gold=gold).order_by("priority", "pk"))
                    .values_list("priority", "pk")[:1].explain())
        assert "review_item_open_queue" in plan, plan
        assert "Sort" not in plan, plan
