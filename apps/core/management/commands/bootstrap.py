from __future__ import annotations

from django.core.management.base import BaseCommand

from apps.core.bootstrap import bootstrap_run


class Command(BaseCommand):
    help = "First-start steps (idempotent): admin user, FER-2013 import from FER2013_CSV, default model."

    def handle(self, *args, **options) -> None:
        bootstrap_run(self.stdout.write)
