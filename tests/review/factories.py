from __future__ import annotations

import factory

from apps.review.models import ReviewItem
from tests.faces.factories import FaceImageFactory


class ReviewItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ReviewItem

    face = factory.SubFactory(FaceImageFactory)
    priority = factory.Sequence(lambda n: n / 1000)
    suggested_label = 4
    suggested_probability = 0.7
