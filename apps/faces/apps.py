from __future__ import annotations

from django.apps import AppConfig


class FacesConfig(AppConfig):
    name = "apps.faces"
    label = "faces"
    verbose_name = "Faces and datasets"

    def ready(self) -> None:
        from apps.core.work import work_kinds_register

        from .near_duplicates import NEAR_DUPLICATE_RUN

        work_kinds_register(NEAR_DUPLICATE_RUN)
