from __future__ import annotations

from django.urls import path

from .api import UploadDetailApi, UploadExplanationApi, UploadListCreateApi, UploadPhotoApi

urlpatterns = [
    path("uploads/", UploadListCreateApi.as_view(), name="api-uploads"),
    path("uploads/<str:upload_id>/", UploadDetailApi.as_view(), name="api-upload-detail"),
    path("uploads/<str:upload_id>/photo", UploadPhotoApi.as_view(), name="api-upload-photo"),
    path("uploads/<str:upload_id>/explanations", UploadExplanationApi.as_view(), name="api-upload-explanations"),
]
