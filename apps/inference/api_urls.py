from __future__ import annotations

from django.urls import path

from .api import FaceExplanationCreateApi, FacePredictionApi, ModelVersionActivateApi, ModelVersionListApi, StatusApi

urlpatterns = [
    path("models/", ModelVersionListApi.as_view(), name="api-models"),
    path("models/<int:pk>/activate", ModelVersionActivateApi.as_view(), name="api-model-activate"),
    path("faces/<int:pk>/prediction", FacePredictionApi.as_view(), name="api-face-prediction"),
    path("faces/<int:pk>/explanations", FaceExplanationCreateApi.as_view(), name="api-face-explanations"),
    path("status/", StatusApi.as_view(), name="api-status"),
]
