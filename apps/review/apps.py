from __future__ import annotations

from django.apps import AppConfig


class ReviewConfig(AppConfig):
    name = "apps.review"
    label = "review"
    verbose_name = "Relabeling queue"

    def ready(self) -> None:
        from apps.core.work import work_kinds_register

        from .learning import QUEUE_FIT
        from .scoring import SCORING_RUN

        work_kinds_register(SCORING_RUN)
        work_kinds_register(QUEUE_FIT)
