"""What the import commands share: a tqdm progress bar and the summary printed at the end."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.faces.importers.common import ImportAborted, ImportReport

MAX_BAD_ROWS_PRINTED = 50


@contextmanager
def progress_bar(command: BaseCommand, *, total: int | None, unit: str) -> Iterator[Callable[[int], None]]:
    """Yields an ``on_progress(n)`` callback; the bar goes to stderr so stdout keeps only the summary."""
    bar = tqdm(total=total, unit=unit, unit_scale=unit == "B", file=sys.stderr, dynamic_ncols=True, mininterval=0.5)
    try:
        yield bar.update
    except ImportAborted as exc:
        raise CommandError(str(exc)) from None
    finally:
        bar.close()


def print_summary(command: BaseCommand, report: ImportReport, *, started: float, faces: bool = True) -> None:
    elapsed = max(time.monotonic() - started, 1e-9)
    for bad in report.bad_rows[:MAX_BAD_ROWS_PRINTED]:
        command.stderr.write(f"skipped {bad}")
    if report.bad_count > MAX_BAD_ROWS_PRINTED:
        command.stderr.write(f"... and {report.bad_count - MAX_BAD_ROWS_PRINTED} more bad rows")
    lines = [f"rows read:          {report.rows_read}"]
    if faces:
        lines += [
            f"images created:     {report.created}",
            f"already present:    {report.already_present}",
            f"duplicates linked:  {report.duplicates_linked}",
            f"new PNGs stored:    {report.pixels_stored}",
        ]
    else:
        lines += [
            f"images updated:     {report.updated}",
            f"unchanged:          {report.already_present}",
            f"no matching image:  {report.unmatched}",
        ]
    lines += [
        f"bad rows skipped:   {report.bad_count}",
        f"time:               {elapsed:.1f} s ({report.rows_read / elapsed:.0f} rows/s)",
    ]
    command.stdout.write(command.style.SUCCESS("Import finished.") + "\n" + "\n".join(lines))
