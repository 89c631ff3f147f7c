from __future__ import annotations

from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "apps.training"
    label = "training"
    verbose_name = "Training runs"

    def ready(self) -> None:
        from apps.core.work import work_kinds_register

        from .execution import TRAINING_RUN

        work_kinds_register(TRAINING_RUN)
