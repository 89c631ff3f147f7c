from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.faces.importers.fer2013 import fer2013_import
from apps.faces.management.reporting import print_summary, progress_bar


class Command(BaseCommand):
    help = "Import Kaggle's fer2013.csv (plain or .gz): idempotent, duplicates linked, bad rows reported."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--dataset", default="fer2013", help="Dataset name (default: fer2013).")
        parser.add_argument("--strict", action="store_true", help="Abort on the first bad row; write nothing.")
        parser.add_argument("--batch-size", type=int, default=None, help="Rows per bulk insert.")

    def handle(self, *args, **options) -> None:
        path: Path = options["path"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        started = time.monotonic()
        with progress_bar(self, total=path.stat().st_size, unit="B") as on_progress:
            report = fer2013_import(
                path=path,
                dataset_name=options["dataset"],
                strict=options["strict"],
                batch_size=options["batch_size"],
                on_progress=on_progress,
            )
        print_summary(self, report, started=started)
