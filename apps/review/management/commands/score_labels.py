from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.review.scoring import ScoringRunError, scoring_run_create, scoring_run_execute


class Command(BaseCommand):
    help = ("Score the labels of every Training face (k-fold cross-fitting + cleanlab) and put the flagged ones in "
            "the review queue. Runs here, not on a worker; `--resume RUN_ID` continues a failed run.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--folds", type=int, default=4)
        parser.add_argument("--epochs", type=int, default=None, help="Epochs per fold (default: the recipe's).")
        parser.add_argument("--ranking", default="self_confidence")
        parser.add_argument("--filter-by", default="prune_by_noise_rate")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--resume", type=int, metavar="RUN_ID", help="Execute a failed run again.")

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        try:
            if options["resume"]:
                run_id = options["resume"]
            else:
                run_id = scoring_run_create(folds=options["folds"], epochs=options["epochs"],
                                            ranking=options["ranking"], filter_by=options["filter_by"],
                                            seed=options["seed"]).pk
            self.stdout.write(f"scoring run {run_id}")
            run = scoring_run_execute(run_id, progress=self._progress)
        except ScoringRunError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(
            f"scored {run.scored_count} faces, {run.issue_count} flagged; review items: {run.items_created} new, "
            f"{run.items_updated} updated ({time.monotonic() - started:.0f} s)"))

    def _progress(self, event: dict) -> None:
        if event.get("kind") == "fold":
            note = " (reused)" if event.get("reused") else ""
            self.stdout.write(f"fold {event['fold']}/{event['folds']} done{note}")
        elif event.get("kind") == "epoch":
            loss = event.get("train_loss")
            loss_text = f" loss {loss:.4f}" if isinstance(loss, float) else ""
            self.stdout.write(f"fold {event['fold']}/{event['folds']} epoch {event.get('epoch')}/"
                              f"{event.get('epochs')}{loss_text}")
