"""First-start steps run by ``manage.py bootstrap`` (``make run`` calls it after migrating).

Each step is idempotent and safe to run on every start. Later work adds steps to ``STEPS`` (e.g. the
inference app registers the default model in ``register_default_model``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model

from apps.accounts.roles import Role
from apps.accounts.services import password_generate, user_create
from apps.faces.importers.fer2013 import fer2013_import
from apps.faces.models import Dataset, FaceImage, Split
from apps.faces.selectors import training_faces_labelled
from apps.inference.models import InferenceJob, ModelVersion, Prediction
from apps.inference.selectors import model_version_active
from apps.inference.services.jobs import inference_job_enqueue
from apps.inference.services.registry import REFRESH_METHODS, ModelVersionInvalid, model_version_register
from apps.review.models import ScoringRun
from apps.review.scoring import scoring_run_enqueue, scoring_run_refine_enqueue

Say = Callable[[str], None]


def ensure_admin(say: Say) -> None:
    """Create ``admin`` if no admin exists; password from FERPLATFORM_ADMIN_PASSWORD or generated, shown once."""
    users = get_user_model().objects
    if users.filter(is_superuser=True).exists() or users.filter(groups__name=Role.ADMIN.value).exists():
        say("admin: an admin exists already")
        return
    username = os.environ.get("FERPLATFORM_ADMIN_USERNAME", "admin")
    password = os.environ.get("FERPLATFORM_ADMIN_PASSWORD", "")
    if password:
        user_create(username=username, role=Role.ADMIN, password=password, validate=False)
        say(f"admin: created {username!r} with the password from FERPLATFORM_ADMIN_PASSWORD")
        return
    password = password_generate()
    user_create(username=username, role=Role.ADMIN, password=password, validate=False)
    say(f"admin: created {username!r}; generated password (shown once): {password}")


def import_fer2013_from_env(say: Say) -> None:
    """Import the file FER2013_CSV points at (idempotent: a second start adds nothing)."""
    path = os.environ.get("FER2013_CSV", "")
    if not path:
        say("fer2013: FER2013_CSV not set, skipping import")
        return
    if not Path(path).is_file():
        say(f"fer2013: FER2013_CSV={path} is not a file, skipping import")
        return
    report = fer2013_import(path=path)
    say(
        f"fer2013: {report.created} images created, {report.already_present} already present, "
        f"{report.bad_count} bad rows skipped"
    )


def register_default_model(say: Say) -> None:
    """Register and activate the small checkpoint shipped in the repo when no model version exists yet."""
    if ModelVersion.objects.exists():
        active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
        say(f"model: versions exist already (active: {active.name if active else 'none'})")
        return
    path = Path(settings.INFERENCE_DEFAULT_CHECKPOINT)
    if not path.is_file():
        say(f"model: {path} is missing, no default model registered")
        return
    try:
        # Its follow-up work is queued by the steps below, so that the review queue comes first.
        version = model_version_register(checkpoint_path=path, name="default", activate=True, refresh=False)
    except ModelVersionInvalid as exc:
        say(f"model: {exc}")
        return
    say(f"model: registered and activated {path.name} as version #{version.pk} ({version.arch})")
    for job in InferenceJob.objects.filter(model_version=version, status=InferenceJob.Status.QUEUED):
        _say_queued(say, job, version)


def _say_queued(say: Say, job: InferenceJob, version: ModelVersion) -> None:
    say(f"predictions: queued job #{job.pk} for {job.total} {job.dataset.name} {job.split} faces "
        f"(version {version.name}, {'+'.join(job.methods) or 'no heatmaps'}); the worker fills the galleries as it "
        "goes")


def queue_public_test_predictions(say: Say) -> None:
    """Queue predictions and GradCAM maps of every dataset's PublicTest faces for the active version, once, so the
    galleries and evaluation pages have something to show when the worker has worked through them. Activating a
    version queues them already; this catches data imported after the version was activated."""
    active = ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).first()
    if active is None:
        return
    for dataset in Dataset.objects.all():
        faces = FaceImage.objects.filter(dataset=dataset, split=Split.PUBLIC_TEST)
        if not faces.exists():
            continue
        predicted = Prediction.objects.filter(model_version=active, face__in=faces).exists()
        pending = InferenceJob.objects.filter(dataset=dataset, split=Split.PUBLIC_TEST, status__in=[
            InferenceJob.Status.QUEUED, InferenceJob.Status.RUNNING]).exists()
        if predicted or pending:
            continue
        job = inference_job_enqueue(dataset=dataset, split=Split.PUBLIC_TEST, methods=REFRESH_METHODS, version=active)
        _say_queued(say, job, active)


def queue_first_scoring(say: Say) -> None:
    """Fill the review queue on the first start with data: an in-sample run of the active version, which fills it
    within minutes (queued first: the bulk worker takes jobs in order), and after the PublicTest predictions a
    short run that refines it in the background (``queue_refined_scoring``). Once, while no scoring run exists."""
    if ScoringRun.objects.exists() or not training_faces_labelled().exists():
        return
    if model_version_active() is None:
        return  # nothing to rank in-sample with; queue_refined_scoring queues the refining run
    run = scoring_run_enqueue(method=ScoringRun.Method.IN_SAMPLE)
    say(f"review queue: queued scoring run #{run.pk} (in-sample with the active model, provisional: fills the queue "
        "in minutes)")


def queue_refined_scoring(say: Say) -> None:
    """The run that replaces the first start's provisional ranking (once: while no run that trains exists)."""
    if ScoringRun.objects.exclude(method=ScoringRun.Method.IN_SAMPLE).exists() or \
            not training_faces_labelled().exists():
        return
    run = scoring_run_refine_enqueue()
    blend = ", averaged with the active model" if run.blend_active else ""
    say(f"review queue: queued scoring run #{run.pk} (short run{blend}: refines the queue in the background, about "
        "15 minutes on 2 idle CPU cores)")


STEPS: list[Callable[[Say], None]] = [ensure_admin, import_fer2013_from_env, register_default_model,
                                      queue_first_scoring, queue_public_test_predictions, queue_refined_scoring]


def bootstrap_run(say: Say) -> None:
    for step in STEPS:
        step(say)
