from __future__ import annotations

from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "apps.inference"
    label = "inference"
    verbose_name = "Models, predictions and explanations"

    def ready(self) -> None:
        from apps.core.work import work_kinds_register

        from .services.chunks import PREDICTION_CHUNK
        from .services.jobs import SPLIT_JOB

        work_kinds_register(PREDICTION_CHUNK, SPLIT_JOB)
