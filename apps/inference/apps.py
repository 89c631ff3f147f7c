from __future__ import annotations

from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "apps.inference"
    label = "inference"
    verbose_name = "Models, predictions and explanations"

    def ready(self) -> None:
        from apps.core.work import work_kind_register

        # Registers the ``ferplatform_worker_info`` remote-control command in every worker (the status page asks it).
        from . import worker_control  # noqa: F401
        from .kinds import KINDS

        for kind in KINDS:
            work_kind_register(kind)
