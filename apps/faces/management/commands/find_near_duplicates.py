from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.faces.models import NearDuplicateRun
from apps.faces.near_duplicates import (
    NearDuplicateRunBusy,
    NoActiveModel,
    near_duplicate_run_execute,
    near_duplicate_run_start,
)
from ml.neardup import Thresholds


class Command(BaseCommand):
    help = ("Search every split for near-duplicate faces (pHash + the active model's features), store the groups and "
            "send faces of groups with conflicting labels to the review queue. Runs here unless --queue.")

    def add_arguments(self, parser: CommandParser) -> None:
        defaults = Thresholds()
        parser.add_argument("--hash-alone", type=int, default=defaults.hash_alone)
        parser.add_argument("--cosine", type=float, default=defaults.cosine)
        parser.add_argument("--hash-with-cosine", type=int, default=defaults.hash_with_cosine)
        parser.add_argument("--queue", action="store_true", help="Send it to a worker (queue bulk) instead.")

    def handle(self, *args, **options) -> None:
        try:
            thresholds = Thresholds(hash_alone=options["hash_alone"], cosine=options["cosine"],
                                    hash_with_cosine=options["hash_with_cosine"])
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        try:
            run = near_duplicate_run_start(thresholds=thresholds)
        except (NoActiveModel, NearDuplicateRunBusy) as exc:
            raise CommandError(str(exc)) from None
        if options["queue"]:
            self.stdout.write(f"near-duplicate run {run.pk} queued")
            return
        run = near_duplicate_run_execute(run_id=run.pk)
        if run is None or run.status != NearDuplicateRun.Status.SUCCEEDED:
            raise CommandError(f"near-duplicate run did not succeed: {run.error if run else 'not claimed'}")
        self.stdout.write(self.style.SUCCESS(
            f"near-duplicate run {run.pk}: {run.faces_searched} faces, {run.pair_count} pairs in {run.group_count} "
            f"groups ({run.cross_split_groups} across splits, {run.conflicting_groups} conflicting; {run.flagged} "
            f"faces flagged); {run.public_test_with_training} PublicTest faces have a near-duplicate in Training"))
