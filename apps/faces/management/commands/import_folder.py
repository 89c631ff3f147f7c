from __future__ import annotations

import time
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.faces.importers.folder import folder_images, folder_import
from apps.faces.management.reporting import print_summary, progress_bar


class Command(BaseCommand):
    help = "Import DIR/<split>/<class>/*.png|jpg (any size, stored as 48x48 grey); idempotent."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("directory", type=Path)
        parser.add_argument("--dataset", default=None, help="Dataset name (default: the directory's name).")
        parser.add_argument("--strict", action="store_true", help="Abort on the first bad file; write nothing.")
        parser.add_argument("--batch-size", type=int, default=None, help="Images per bulk insert.")

    def handle(self, *args, **options) -> None:
        root: Path = options["directory"]
        if not root.is_dir():
            raise CommandError(f"{root}: not a directory")
        started = time.monotonic()
        with progress_bar(self, total=len(folder_images(root)), unit="img") as on_progress:
            report = folder_import(
                root=root,
                dataset_name=options["dataset"],
                strict=options["strict"],
                batch_size=options["batch_size"],
                on_progress=on_progress,
            )
        print_summary(self, report, started=started)
