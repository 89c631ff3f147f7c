from __future__ import annotations

import io

import pytest
from django.contrib.auth import authenticate, get_user_model
from django.core.management import call_command

from apps.faces.models import FaceImage
from tests.faces.fer_files import fer_row, write_fer

pytestmark = pytest.mark.django_db


def bootstrap() -> str:
    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    return out.getvalue()


def test_creates_admin_with_password_from_environment(monkeypatch):
    monkeypatch.setenv("FERPLATFORM_ADMIN_PASSWORD", "from-the-env-123")
    monkeypatch.delenv("FER2013_CSV", raising=False)
    out = bootstrap()
    assert "from-the-env-123" not in out
    assert authenticate(username="admin", password="from-the-env-123").is_superuser


def test_generated_admin_password_is_shown_once_then_admin_is_kept(monkeypatch):
    monkeypatch.delenv("FERPLATFORM_ADMIN_PASSWORD", raising=False)
    monkeypatch.delenv("FER2013_CSV", raising=False)
    out = bootstrap()
    password = out.split("shown once): ", 1)[1].split()[0]
    assert authenticate(username="admin", password=password) is not None
    again = bootstrap()
    assert "an admin exists already" in again and "shown once" not in again
    assert get_user_model().objects.count() == 1


def test_imports_the_file_fer2013_csv_points_at(tmp_path, monkeypatch):
    monkeypatch.setenv("FERPLATFORM_ADMIN_PASSWORD", "from-the-env-123")
    monkeypatch.setenv("FER2013_CSV", str(write_fer(tmp_path / "fer.csv", [fer_row(i) for i in range(5)])))
    assert "5 images created" in bootstrap()
    assert "0 images created, 5 already present" in bootstrap()
    assert FaceImage.objects.count() == 5


def test_queues_public_test_predictions_for_the_active_version_once(tmp_path, monkeypatch):
    from apps.inference.models import InferenceJob, ModelVersion

    monkeypatch.setenv("FERPLATFORM_ADMIN_PASSWORD", "from-the-env-123")
    rows = [fer_row(i) for i in range(3)] + [fer_row(10 + i, usage="PublicTest") for i in range(4)]
    monkeypatch.setenv("FER2013_CSV", str(write_fer(tmp_path / "fer.csv", rows)))
    out = bootstrap()
    assert ModelVersion.objects.filter(status=ModelVersion.Status.ACTIVE).exists()
    job = InferenceJob.objects.get()
    assert (job.split, job.total, job.methods, job.status) == ("PublicTest", 4, ["gradcam"], "queued")
    assert f"queued job #{job.pk} for 4" in out
    assert "queued job" not in bootstrap() and InferenceJob.objects.count() == 1


def test_first_start_fills_the_review_queue_first_then_predicts_then_refines(tmp_path, monkeypatch,
                                                                             django_capture_on_commit_callbacks):
    """The bulk worker takes jobs in the order they were sent: the in-sample scoring run (the queue within minutes),
    the PublicTest predictions (the galleries), then the refining short run, each once."""
    from apps.inference.models import InferenceJob
    from apps.review.models import ScoringRun

    monkeypatch.setenv("FERPLATFORM_ADMIN_PASSWORD", "from-the-env-123")
    rows = [fer_row(i) for i in range(3)] + [fer_row(10 + i, usage="PublicTest") for i in range(4)]
    monkeypatch.setenv("FER2013_CSV", str(write_fer(tmp_path / "fer.csv", rows)))
    with django_capture_on_commit_callbacks(execute=False) as sent:
        out = bootstrap()
    in_sample, oof = ScoringRun.objects.order_by("pk")
    job = InferenceJob.objects.get()
    assert (in_sample.method, oof.method) == ("in_sample", "short_run") and in_sample.model_version.name == "default"
    assert oof.blend_active and oof.model_version == in_sample.model_version
    assert in_sample.created_at < job.created_at < oof.created_at  # each sent when created, in this order
    assert len(sent) == 3
    assert out.index(f"scoring run #{in_sample.pk} (in-sample") < out.index(f"queued job #{job.pk}") < \
        out.index(f"scoring run #{oof.pk} (short run")
    assert "scoring run" not in bootstrap() and ScoringRun.objects.count() == 2
