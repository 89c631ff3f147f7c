from __future__ import annotations

from django.urls import path

from .api import (
    FaceExplanationCreateApi,
    FacePredictionApi,
    ModelVersionActivateApi,
    ModelVersionListApi,
    ModelVersionPromoteApi,
)

urlpatterns = [
    path("models/", ModelVersionListApi.as_view(), name="api-models"),
    path("models/<int:pk>/activate", ModelVersionActivateApi.as_view(), name="api-model-activate"),
    path("models/<int:pk>/promote", ModelVersionPromoteApi.as_view(), name="api-model-promote"),  # deprecated alias
    path("faces/<int:pk>/prediction", FacePredictionApi.as_view(), name="api-face-prediction"),
    path("faces/<int:pk>/explanations", FaceExplanationCreateApi.as_view(), name="api-face-explanations"),
]
