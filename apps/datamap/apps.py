from __future__ import annotations

from django.apps import AppConfig


class DataMapConfig(AppConfig):
    name = "apps.datamap"
    label = "datamap"
    verbose_name = "Data maps"

    def ready(self) -> None:
        from apps.core.work import work_kinds_register

        from .services import DATA_MAP

        work_kinds_register(DATA_MAP)
