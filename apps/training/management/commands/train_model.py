from __future__ import annotations

import json
import time

from django.core.management.base import BaseCommand, CommandError, CommandParser

from apps.training.execution import training_run_execute
from apps.training.models import SOFT_LABEL_MODES, TrainingRun
from apps.training.services import (
    TrainingRunBusy,
    TrainingRunInvalid,
    TrainingRunStateError,
    training_run_create,
    training_run_requeue,
    training_run_start,
)


class Command(BaseCommand):
    help = ("Train a model version on the current labels (a training run, with the promotion gate). Runs here "
            "unless --queue sends it to a gpu worker; --resume RUN_ID continues a failed run from its last epoch.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--recipe", default="default")
        parser.add_argument("--epochs", type=int, default=None, help="Default: the recipe's.")
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--soft-label-mode", default="majority", choices=SOFT_LABEL_MODES)
        parser.add_argument("--exclude-cross-split-duplicates", action="store_true",
                            help="Leave out Training faces with a near-duplicate in a test split (latest search).")
        parser.add_argument("--recipe-overrides", default="", help='JSON, e.g. {"batch_size": 32}')
        parser.add_argument("--queue", action="store_true", help="Send it to a worker (queue bulk) instead.")
        parser.add_argument("--resume", type=int, metavar="RUN_ID", help="Execute a failed run again, here.")

    def handle(self, *args, **options) -> None:
        started = time.monotonic()
        try:
            overrides = json.loads(options["recipe_overrides"]) if options["recipe_overrides"] else None
        except json.JSONDecodeError as exc:
            raise CommandError(f"--recipe-overrides is not JSON: {exc}") from None
        kwargs = {"trigger": TrainingRun.Trigger.ADMIN, "recipe_name": options["recipe"], "epochs": options["epochs"],
                  "seed": options["seed"], "soft_label_mode": options["soft_label_mode"],
                  "recipe_overrides": overrides,
                  "exclude_cross_split_duplicates": options["exclude_cross_split_duplicates"]}
        try:
            if options["resume"]:
                run = training_run_requeue(run_id=options["resume"])
            elif options["queue"]:
                run = training_run_start(**kwargs)
                self.stdout.write(f"training run {run.pk} queued")
                return
            else:
                run = training_run_create(**kwargs)
        except (TrainingRunInvalid, TrainingRunBusy, TrainingRunStateError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(f"training run {run.pk}: {run.recipe_name}, {run.arch}, {run.epochs} epoch(s)")
        run = training_run_execute(run_id=run.pk, echo=self._progress)
        seconds = time.monotonic() - started
        if run.status != TrainingRun.Status.SUCCEEDED:
            raise CommandError(f"training run {run.pk} {run.status}: {run.error} ({seconds:.0f} s)")
        self.stdout.write(self.style.SUCCESS(
            f"model version #{run.model_version_id} ({run.model_version.status}); gate: {run.promotion_reason} "
            f"({seconds:.0f} s)"))

    def _progress(self, event: dict) -> None:
        if event.get("kind") != "epoch":
            return
        acc = event.get("val_accuracy")
        text = f", PublicTest accuracy {100 * acc:.2f}%" if isinstance(acc, float) else ""
        self.stdout.write(f"epoch {event['epoch']}/{event['epochs']}: loss {event['train_loss']:.4f}{text}")
