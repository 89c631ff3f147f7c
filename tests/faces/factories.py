from __future__ import annotations

import random

import factory
from django.core.files.base import ContentFile

from apps.faces.models import Dataset, FaceImage, FacePixels, Split, face_png_path
from apps.faces.services import FACE_BYTES, face_png_encode, face_sha256


def random_pixels(seed: int) -> bytes:
    return random.Random(seed).randbytes(FACE_BYTES)


class DatasetFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Dataset
        django_get_or_create = ("name",)

    name = "fer2013"


class FacePixelsFactory(factory.django.DjangoModelFactory):
    """Stores a real PNG through the default storage."""

    class Meta:
        model = FacePixels

    class Params:
        raw = factory.Sequence(random_pixels)

    sha256 = factory.LazyAttribute(lambda o: face_sha256(o.raw))
    png = factory.LazyAttribute(lambda o: ContentFile(face_png_encode(o.raw), name=face_png_path(face_sha256(o.raw))))


class FaceImageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FaceImage

    dataset = factory.SubFactory(DatasetFactory)
    pixels = factory.SubFactory(FacePixelsFactory)
    split = Split.TRAINING
    original_label = 3
    current_label = factory.SelfAttribute("original_label")
    source_row = factory.Sequence(lambda n: n)
