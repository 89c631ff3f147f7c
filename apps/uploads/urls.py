from __future__ import annotations

from django.urls import path

from .views import UploadPageView

urlpatterns = [
    path("", UploadPageView.as_view(), name="uploads"),
]
