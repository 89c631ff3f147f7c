from __future__ import annotations

from django.urls import path

from .views import ReviewersView, ReviewView, ScoringView

urlpatterns = [
    path("", ReviewView.as_view(), name="review"),
    path("reviewers/", ReviewersView.as_view(), name="review-reviewers"),
    path("scoring/", ScoringView.as_view(), name="review-scoring"),
]
