from __future__ import annotations

from django.urls import path

from .views import GridReviewView, ReviewersView, ReviewView, ScoringView

urlpatterns = [
    path("", ReviewView.as_view(), name="review"),
    path("grid/", GridReviewView.as_view(), name="review-grid"),
    path("reviewers/", ReviewersView.as_view(), name="review-reviewers"),
    path("scoring/", ScoringView.as_view(), name="review-scoring"),
]
