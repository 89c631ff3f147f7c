from __future__ import annotations

from django.urls import path

from .api import NearDuplicateRunsApi, NearDuplicatesApi

urlpatterns = [
    path("near-duplicates/", NearDuplicatesApi.as_view(), name="api-near-duplicates"),
    path("near-duplicates/runs", NearDuplicateRunsApi.as_view(), name="api-near-duplicate-runs"),
]
