from __future__ import annotations

from django.apps import AppConfig


class GalleryConfig(AppConfig):
    name = "apps.gallery"
    label = "gallery"
    verbose_name = "Galleries and evaluation"

    def ready(self) -> None:
        from apps.core.work import work_kind_register

        from .kinds import KINDS

        for kind in KINDS:
            work_kind_register(kind)
