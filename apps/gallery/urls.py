from __future__ import annotations

from django.urls import path

from .views import (
    ClassMapsPngView,
    CompareView,
    ConfusionPngView,
    CurvesPngView,
    EvaluationView,
    GalleryExportView,
    GalleryFaceView,
    GalleryView,
)

urlpatterns = [
    path("", GalleryView.as_view(), name="gallery"),
    path("export.zip", GalleryExportView.as_view(), name="gallery-export"),
    path("faces/<int:pk>/", GalleryFaceView.as_view(), name="gallery-face"),
    path("compare/", CompareView.as_view(), name="gallery-compare"),
    path("models/<int:pk>/", EvaluationView.as_view(), name="gallery-evaluation"),
    path("models/<int:pk>/confusion.png", ConfusionPngView.as_view(), name="gallery-confusion-png"),
    path("models/<int:pk>/curves.png", CurvesPngView.as_view(), name="gallery-curves-png"),
    path("models/<int:pk>/class-maps.png", ClassMapsPngView.as_view(), name="gallery-class-maps-png"),
]
