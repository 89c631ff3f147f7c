from __future__ import annotations

from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "apps.review"
    label = "review"
    verbose_name = "Relabeling queue"

    def ready(self) -> None:
        from apps.core.work import work_kind_register

        from .kinds import KINDS

        for kind in KINDS:
            work_kind_register(kind)
