from __future__ import annotations

from django.apps import AppConfig


class GalleryConfig(AppConfig):
    name = "apps.gallery"
    label = "gallery"
    verbose_name = "Galleries and evaluation"

    def ready(self) -> None:
        from apps.core.work import work_kinds_register

        from .services import FAITHFULNESS_RUN

        work_kinds_register(FAITHFULNESS_RUN)
