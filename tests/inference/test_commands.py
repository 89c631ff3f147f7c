from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse

from apps.inference.models import Explanation, InferenceJob, Prediction
from tests.faces.factories import DatasetFactory, FaceImageFactory

pytestmark = pytest.mark.django_db


def test_predict_split_command_covers_the_split_with_progress(active_version):
    tiny = DatasetFactory(name="tiny")
    FaceImageFactory.create_batch(5, dataset=tiny, split="PublicTest", current_label=1)
    FaceImageFactory.create_batch(2, dataset=tiny, split="Training")
    out, err = io.StringIO(), io.StringIO()
    call_command("predict_split", "--dataset", "tiny", "--split", "publictest", "--method", "gradcam",
                 "--batch-size", "2", stdout=out, stderr=err)
    job = InferenceJob.objects.get()
    assert (job.status, job.done, job.total, job.model_version) == ("succeeded", 5, 5, active_version)
    assert f"job #{job.pk} succeeded: 5/5 images of tiny/PublicTest" in out.getvalue()
    assert "5/5" in err.getvalue()  # the tqdm bar
    assert Prediction.objects.count() == 5 and Explanation.objects.filter(method="gradcam").count() >= 5
    call_command("predict_split", "--dataset", "tiny", "--split", "PublicTest", stdout=io.StringIO(),
                 stderr=io.StringIO())  # again: nothing new
    assert Prediction.objects.count() == 5


def test_predict_split_command_errors(active_version):
    DatasetFactory(name="tiny")
    with pytest.raises(CommandError, match="no dataset 'nope'"):
        call_command("predict_split", "--dataset", "nope")
    with pytest.raises(CommandError, match="choose one of"):
        call_command("predict_split", "--dataset", "tiny", "--method", "magic")
    with pytest.raises(CommandError, match="unknown split"):
        call_command("predict_split", "--dataset", "tiny", "--split", "holdout")


def test_admin_action_on_a_dataset_queues_a_job(client, admin_user, active_version, django_capture_on_commit_callbacks,
                                                monkeypatch):
    from apps.inference.tasks import predict_split_task

    sent = []
    monkeypatch.setattr(predict_split_task, "apply_async",
                        lambda args, **options: sent.append((*args, options["queue"])))
    dataset = DatasetFactory(name="fer2013")
    FaceImageFactory.create_batch(3, dataset=dataset, split="PublicTest")
    client.force_login(admin_user)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:faces_dataset_changelist"),
                               {"action": "predict_publictest", "_selected_action": [dataset.pk]}, follow=True)
    assert "Queued 1 job(s) on PublicTest" in response.content.decode()
    job = InferenceJob.objects.get()
    assert (job.split, job.total, job.methods, job.created_by) == ("PublicTest", 3, ["gradcam"], admin_user)
    assert sent == [(job.pk, "bulk")]
    # The task, called directly, runs the queued job; a second delivery does nothing.
    predict_split_task(job.pk)
    assert predict_split_task(job.pk)["status"] == "not claimed"
    job.refresh_from_db()
    assert (job.status, job.done) == ("succeeded", 3)
