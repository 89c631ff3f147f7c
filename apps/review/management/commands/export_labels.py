from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.review.exports import labels_export_write


class Command(BaseCommand):
    help = ("Write labels.csv (every face: dataset, split, source row, original and current label, excluded) and "
            "votes.csv (every vote of every round, with its reviewer) and queue.csv (every review item in the queue's "
            "order, settled ones included) into DIR. Operator side: nothing is hidden.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, required=True, metavar="DIR",
                            help="Directory to write into (created if missing; the three files are replaced).")

    def handle(self, *args, **options) -> None:
        try:
            export = labels_export_write(directory=options["output"])
        except OSError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"{export.labels_path}: {export.labels} faces"))
        self.stdout.write(self.style.SUCCESS(f"{export.votes_path}: {export.votes} votes"))
        self.stdout.write(self.style.SUCCESS(f"{export.queue_path}: {export.queue} review items"))
