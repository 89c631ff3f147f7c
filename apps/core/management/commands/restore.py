from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.backups.services import backup_restore
from apps.core.errors import ApplicationError
from apps.core.management.backup_report import counts_lines, size_text


class Command(BaseCommand):
    help = ("Restore an archive of `manage.py backup` into an EMPTY stack: a database without tables (do not run "
            "migrate first) and a MEDIA_ROOT without files. The archive is checked whole before anything is written.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("archive", type=Path, help="The .tar.gz written by `manage.py backup`.")

    def handle(self, *args, **options) -> None:
        try:
            result = backup_restore(archive=options["archive"])
        except (ApplicationError, OSError) as exc:
            raise CommandError(str(exc)) from None
        manifest = result.manifest
        self.stdout.write(self.style.SUCCESS(f"restored {options['archive']} (made {manifest.created_at})"))
        self.stdout.write(f"media: {manifest.media_files} files, {size_text(manifest.media_bytes)}")
        self.stdout.write("rows:\n" + "\n".join(counts_lines(manifest.counts, result.counts)))
        if result.pending_migrations:
            self.stdout.write(self.style.WARNING(
                f"this code has {result.pending_migrations} migrations the backup predates: run `manage.py migrate`"))
