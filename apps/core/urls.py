from __future__ import annotations

from django.urls import path

from .views import HomeView, StatusView

urlpatterns = [
    path("", HomeView.as_view(), name="home"),
    path("status/", StatusView.as_view(), name="status"),
]
