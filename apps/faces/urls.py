from __future__ import annotations

from django.urls import path

from .views import NearDuplicatesView

urlpatterns = [
    path("near-duplicates/", NearDuplicatesView.as_view(), name="faces-near-duplicates"),
]
