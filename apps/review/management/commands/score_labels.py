from __future__ import annotations

import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.core.errors import ApplicationError
from apps.review.models import ScoringRun
from apps.review.scoring import scoring_run_create, scoring_run_execute, scoring_run_requeue
from ml.scoring import DEFAULT_RANKING


class Command(BaseCommand):
    help = ("Score the labels of every Training face (k-fold cross-fitting, or the active model in-sample, + "
            "cleanlab) and put the flagged ones in the review queue. Runs here, not on a worker; `--resume RUN_ID` "
            "continues a failed or cancelled run.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--method", choices=ScoringRun.Method.values, default=ScoringRun.Method.OUT_OF_FOLD,
                            help="out_of_fold (default; k-fold cross-fitting), in_sample (the active version's own "
                                 "probabilities: minutes, provisional), short_run (one short model on every face, "
                                 "its probabilities along the run) or dynamics (the active version's own training "
                                 "run's, free)")
        parser.add_argument("--folds", type=int, default=4)
        parser.add_argument("--blend-active", action="store_true",
                            help="out-of-fold and short runs: average with the active version's in-sample "
                                 "probabilities")
        parser.add_argument("--epochs", type=int, default=None, help="Epochs per fold (default: the recipe's).")
        parser.add_argument("--ranking", default=DEFAULT_RANKING)
        parser.add_argument("--filter-by", default="prune_by_noise_rate")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--outliers", type=int, default=0, metavar="N",
                            help="Also score every face for 'not a face / outlier' with the active version's "
                                 "features and image statistics, and queue at most N suspects (default 0: none).")
        parser.add_argument("--outlier-min-score", type=float, default=0.5,
                            help="Only faces whose outlier score (0-1) reaches this (default 0.5).")
        parser.add_argument("--resume", type=int, metavar="RUN_ID",
                            help="Continue a failed or cancelled run from its finished folds.")

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        try:
            if options["resume"]:
                run_id = scoring_run_requeue(run_id=options["resume"]).pk
            else:
                run_id = scoring_run_create(method=options["method"], folds=options["folds"],
                                            epochs=options["epochs"], ranking=options["ranking"],
                                            filter_by=options["filter_by"], seed=options["seed"],
                                            blend_active=options["blend_active"], outliers=options["outliers"],
                                            outlier_min_score=options["outlier_min_score"]).pk
                if options["method"] != ScoringRun.Method.OUT_OF_FOLD and options["folds"] != 4:
                    self.stderr.write(f"note: --folds does not apply to a {options['method']} run")
            self.stdout.write(f"scoring run {run_id}")
            run = scoring_run_execute(run_id, progress=self._progress, from_statuses=(ScoringRun.Status.QUEUED,))
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        if run.status != ScoringRun.Status.SUCCEEDED:
            raise CommandError(f"scoring run {run.pk} is {run.status}: {run.error or 'stopped'} "
                               f"(continue it with --resume {run.pk})")
        self.stdout.write(self.style.SUCCESS(
            f"scored {run.scored_count} faces, {run.issue_count} flagged; review items: {run.items_created} new, "
            f"{run.items_updated} updated ({time.monotonic() - started:.0f} s)"))
        if run.outlier_report:
            report = run.outlier_report
            self.stdout.write(f"outliers: {report['suspects']} suspects of {report['scored']} faces "
                              f"({report['above_min_score']} at or above {run.outlier_min_score}); review items: "
                              f"{report['items_created']} new, {report['items_updated']} updated, "
                              f"{report['items_retired']} retired")

    def _progress(self, event: dict) -> None:
        if event.get("kind") == "predict" and (event["done"] == event["total"] or event["done"] % 8192 < 1024):
            self.stdout.write(f"predicted {event['done']}/{event['total']} faces")
        elif event.get("kind") == "outliers" and event["done"] == event["total"]:
            self.stdout.write(f"outliers: features of {event['total']} faces")
        elif event.get("kind") == "fold":
            note = " (reused)" if event.get("reused") else ""
            self.stdout.write(f"fold {event['fold']}/{event['folds']} done{note}")
        elif event.get("kind") == "epoch":
            loss = event.get("train_loss")
            loss_text = f" loss {loss:.4f}" if isinstance(loss, float) else ""
            self.stdout.write(f"fold {event['fold']}/{event['folds']} epoch {event.get('epoch')}/"
                              f"{event.get('epochs')}{loss_text}")
