from __future__ import annotations

from django.urls import path

from .api import (
    ModelVersionComparisonApi,
    ModelVersionRollbackApi,
    TrainingRunCancelApi,
    TrainingRunDetailApi,
    TrainingRunRetryApi,
    TrainingRunsApi,
)

urlpatterns = [
    path("training-runs/", TrainingRunsApi.as_view(), name="api-training-runs"),
    path("training-runs/<int:pk>/", TrainingRunDetailApi.as_view(), name="api-training-run"),
    path("training-runs/<int:pk>/cancel", TrainingRunCancelApi.as_view(), name="api-training-run-cancel"),
    path("training-runs/<int:pk>/retry", TrainingRunRetryApi.as_view(), name="api-training-run-retry"),
    path("models/rollback", ModelVersionRollbackApi.as_view(), name="api-model-rollback"),
    path("models/comparison", ModelVersionComparisonApi.as_view(), name="api-model-comparison"),
]
