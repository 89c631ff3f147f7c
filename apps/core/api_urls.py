from __future__ import annotations

from django.urls import path

from .api import StatusApi

urlpatterns = [
    path("status/", StatusApi.as_view(), name="api-status"),
]
