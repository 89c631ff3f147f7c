from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from apps.core.work import WorkStatus, work_fail
from apps.faces.models import Dataset
from apps.faces.services import split_from_name
from apps.inference.services.jobs import SPLIT_JOB, inference_job_create, inference_job_enqueue, inference_job_run
from apps.inference.services.predictions import (
    CAM_METHODS,
    NoActiveModelVersion,
    UnknownCamMethod,
    cam_methods_validate,
)


class Command(BaseCommand):
    help = "Predict and explain (Grad-CAM) every image of a dataset split with the active model version."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--dataset", default="fer2013")
        parser.add_argument("--split", default="PublicTest", help="Training, PublicTest, PrivateTest or Upload")
        parser.add_argument("--method", action="append", dest="methods", metavar="METHOD",
                            help=f"CAM method, repeatable (default gradcam): {', '.join(CAM_METHODS)}")
        parser.add_argument("--no-heatmaps", action="store_true", help="predictions only")
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--queue", action="store_true", help="queue a Celery task instead of running here")

    def handle(self, *args, **options) -> None:
        try:
            dataset = Dataset.objects.get(name=options["dataset"])
        except Dataset.DoesNotExist:
            raise CommandError(f"no dataset {options['dataset']!r}") from None
        try:
            split = split_from_name(options["split"])
            methods = [] if options["no_heatmaps"] else cam_methods_validate(options["methods"])
        except (UnknownCamMethod, ValueError) as exc:
            raise CommandError(str(exc)) from None
        if options["queue"]:
            job = inference_job_enqueue(dataset=dataset, split=split, methods=methods)
            self.stdout.write(f"queued job #{job.pk}: {job.total} images of {dataset}/{split}")
            return
        job = inference_job_create(dataset=dataset, split=split, methods=methods)
        label = f"{dataset}/{split} {'+'.join(methods) or 'predictions'}"
        with tqdm(total=job.total, unit="img", desc=label, file=self.stderr._out, mininterval=0.5) as bar:
            def echo(event: dict) -> None:
                bar.total = event["total"]
                bar.update(event["done"] - bar.n)

            try:
                job = inference_job_run(job_id=job.pk, batch_size=options["batch_size"], echo=echo)
            except NoActiveModelVersion as exc:  # recorded on the job by the runner
                raise CommandError(f"{exc}") from None
            except BaseException as exc:  # before it was claimed too: never leave the job for a worker
                work_fail(SPLIT_JOB, job.pk, f"interrupted ({type(exc).__name__})",
                          from_statuses=(WorkStatus.QUEUED, WorkStatus.RUNNING))
                raise
        self.stdout.write(f"job #{job.pk} {job.status}: {job.done}/{job.total} images of {dataset}/{split}")
