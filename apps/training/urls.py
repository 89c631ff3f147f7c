from __future__ import annotations

from django.urls import path

from .views import TrainingView

urlpatterns = [
    path("", TrainingView.as_view(), name="training"),
]
