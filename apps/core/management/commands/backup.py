from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.backups.services import backup_create
from apps.core.errors import ApplicationError
from apps.core.management.backup_report import counts_lines, size_text


class Command(BaseCommand):
    help = ("Back up the PostgreSQL database (pg_dump) and MEDIA_ROOT into one .tar.gz with a manifest "
            "(default: VAR_DIR/backups/ferplatform-YYYYmmdd-HHMMSS.tar.gz). `manage.py restore` reads it back.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", type=Path, help="Archive to write (must not exist yet).")
        parser.add_argument("--lock-wait-timeout", type=float, metavar="SECONDS",
                            help="Fail instead of waiting longer than this for a table that another session has "
                                 "locked (a running migration). Default: wait.")

    def handle(self, *args, **options) -> None:
        try:
            result = backup_create(output=options["output"], lock_wait_timeout=options["lock_wait_timeout"])
        except (ApplicationError, OSError) as exc:
            raise CommandError(str(exc)) from None
        manifest = result.manifest
        self.stdout.write(self.style.SUCCESS(f"backup written: {result.path}"))
        self.stdout.write(f"size: {size_text(result.size)} (database dump {size_text(manifest.dump_bytes)}, "
                          f"{manifest.media_files} media files, {size_text(manifest.media_bytes)})")
        self.stdout.write("rows:\n" + "\n".join(counts_lines(manifest.counts)))
