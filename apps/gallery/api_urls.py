from __future__ import annotations

from django.urls import path

from .api import (
    ClassMapsApi,
    CompareApi,
    FaithfulnessQueueApi,
    GalleryExplanationApi,
    GalleryFaceDetailApi,
    GalleryFaceListApi,
    ModelEvaluationApi,
)

urlpatterns = [
    path("faces/", GalleryFaceListApi.as_view(), name="api-gallery-faces"),
    path("faces/<int:pk>", GalleryFaceDetailApi.as_view(), name="api-gallery-face"),
    path("faces/<int:pk>/explanations", GalleryExplanationApi.as_view(), name="api-gallery-explanations"),
    path("models/<int:pk>/evaluation", ModelEvaluationApi.as_view(), name="api-gallery-evaluation"),
    path("models/<int:pk>/class-maps", ClassMapsApi.as_view(), name="api-gallery-class-maps"),
    path("models/<int:pk>/faithfulness", FaithfulnessQueueApi.as_view(), name="api-gallery-faithfulness"),
    path("compare", CompareApi.as_view(), name="api-gallery-compare"),
]
