from __future__ import annotations

from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "apps.training"
    label = "training"
    verbose_name = "Training runs"

    def ready(self) -> None:
        from apps.core.work import work_kind_register

        from .kinds import KINDS

        for kind in KINDS:
            work_kind_register(kind)
