from __future__ import annotations

from django.urls import path

from .api import DataMapDetailApi, DataMapListApi

urlpatterns = [
    path("maps", DataMapListApi.as_view(), name="api-datamap-maps"),
    path("maps/<int:pk>", DataMapDetailApi.as_view(), name="api-datamap-map"),
]
