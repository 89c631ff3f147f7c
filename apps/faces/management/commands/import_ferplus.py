from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.faces.importers.ferplus import ferplus_import
from apps.faces.management.reporting import print_summary, progress_bar


class Command(BaseCommand):
    help = "Attach FER+ votes (fer2013new.csv, same row order as fer2013.csv) to imported images."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path)
        parser.add_argument("--dataset", default="fer2013", help="Dataset the FER-2013 rows went into.")
        parser.add_argument("--strict", action="store_true", help="Abort on the first bad row; write nothing.")
        parser.add_argument("--batch-size", type=int, default=None)

    def handle(self, *args, **options) -> None:
        path: Path = options["path"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        started = time.monotonic()
        with progress_bar(self, total=path.stat().st_size, unit="B") as on_progress:
            report = ferplus_import(
                path=path,
                dataset_name=options["dataset"],
                strict=options["strict"],
                batch_size=options["batch_size"],
                on_progress=on_progress,
            )
        print_summary(self, report, started=started, faces=False)
