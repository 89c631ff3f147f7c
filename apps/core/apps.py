from __future__ import annotations

from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "apps.core"
    label = "core"
    verbose_name = "Core"

    def ready(self) -> None:
        # Registers the ``ferplatform_worker_info`` remote-control command in every worker (the status page asks it).
        from . import worker_control  # noqa: F401
