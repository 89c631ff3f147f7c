from __future__ import annotations

from datetime import timedelta

import factory
from django.conf import settings
from django.utils import timezone

from apps.review.models import ReviewItem
from tests.faces.factories import FaceImageFactory


class ReviewItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReviewItem

    face = factory.SubFactory(FaceImageFactory)
    priority = factory.Sequence(lambda n: n / 1000)
    suggested_label = 4
    suggested_probability = 0.7


def leased_to(item: ReviewItem, user) -> ReviewItem:
    """Lease ``item`` to ``user`` the way ``review_item_next_for`` does (for tests about votes, not the queue)."""
    item.lease_holder = user
    item.lease_expires_at = timezone.now() + timedelta(seconds=settings.REVIEW_LEASE_SECONDS)
    ReviewItem.objects.filter(pk=item.pk).update(lease_holder=user, lease_expires_at=item.lease_expires_at)
    return item
