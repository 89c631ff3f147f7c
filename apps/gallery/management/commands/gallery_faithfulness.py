"""``manage.py gallery_faithfulness [--model-version ID] --method hirescam --method layercam [--layer last --layer fine]
[--sample 200]``"""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from apps.core.errors import ApplicationError
from apps.faces.models import Split
from apps.gallery.params import model_version_param
from apps.gallery.services import faithfulness_compute
from apps.inference.services.predictions import CAM_LAYERS


class Command(BaseCommand):
    help = "Measure ROAD faithfulness of CAM methods for a model version on a sample of PublicTest."

    def add_arguments(self, parser):
        parser.add_argument("--model-version", default="", help="Model version id (default: the active one).")
        parser.add_argument("--method", action="append", dest="methods", help="CAM method (repeat; default gradcam).")
        parser.add_argument("--layer", action="append", dest="layers", choices=list(CAM_LAYERS),
                            help="CAM layer (repeat; default last; fine only for hirescam and layercam).")
        parser.add_argument("--sample", type=int, default=200, help="Faces sampled from the split (default 200).")
        parser.add_argument("--split", default=Split.PUBLIC_TEST, choices=[Split.PUBLIC_TEST, Split.PRIVATE_TEST])
        parser.add_argument("--seed", type=int, default=0)

    def handle(self, *args, **options):
        try:
            version = model_version_param(options["model_version"])
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        if version is None:
            raise CommandError("no active model version; pass --model-version")
        if options["sample"] < 1:
            raise CommandError("--sample must be at least 1")
        try:
            rows = faithfulness_compute(version=version, methods=options["methods"] or ["gradcam"],
                                        layers=options["layers"],
                                        sample_size=options["sample"], split=options["split"], seed=options["seed"])
        except ApplicationError as exc:
            raise CommandError(str(exc)) from None
        for row in rows:
            self.stdout.write(f"{version.name} {row.method}/{row.layer}: ROAD {row.mean:+.4f} (sd {row.std:.4f}, "
                              f"n={row.sample_size}, {row.split}); random maps {row.baseline_mean:+.4f}; "
                              f"beats random on {row.beats_baseline:.0%} of faces")
