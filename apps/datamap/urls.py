from __future__ import annotations

from django.urls import path

from .views import DataMapView

urlpatterns = [
    path("", DataMapView.as_view(), name="datamap"),
]
