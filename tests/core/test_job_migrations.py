"""The one job model's migrations keep every row and its state: a finished split job, prediction chunk or
faithfulness run said "done" and says "succeeded"; a training run's epochs move to ``history`` and its latest event to
``progress``; migrating back restores both."""

from __future__ import annotations

import pytest

from tests.faces.factories import DatasetFactory
from tests.helpers import migrate_to, migrate_to_latest, write_tiny_checkpoint

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = [("inference", "0002_work_rows"), ("gallery", "0002_faithfulnessrun"), ("training", "0004_finetune")]
AFTER = [("inference", "0003_one_job_model"), ("gallery", "0003_one_job_model"), ("training", "0005_one_job_model")]


@pytest.fixture(autouse=True)
def back_to_the_latest_schema():
    yield
    migrate_to_latest()


def test_rows_keep_their_state_across_the_one_job_model(tmp_path):
    dataset = DatasetFactory()
    from apps.inference.services.registry import model_version_register

    version = model_version_register(checkpoint_path=write_tiny_checkpoint(tmp_path / "v.pt"), name="v")
    old = migrate_to(BEFORE)
    Job, Chunk = old.get_model("inference", "InferenceJob"), old.get_model("inference", "PredictionChunk")
    Faithfulness, Training = old.get_model("gallery", "FaithfulnessRun"), old.get_model("training", "TrainingRun")
    job = Job.objects.create(dataset_id=dataset.pk, split="PublicTest", status="done", done=5, total=5)
    failed = Job.objects.create(dataset_id=dataset.pk, split="PublicTest", status="failed", error="boom")
    chunk = Chunk.objects.create(face_ids=[1], status="done")
    measured = Faithfulness.objects.create(model_version_id=version.pk, status="done")
    epochs = [{"epoch": 1, "train_loss": 1.2}, {"epoch": 2, "train_loss": 0.9}]
    run = Training.objects.create(trigger="api", recipe_name="scoring", arch="fer_vgg", epochs=2, status="succeeded",
                                  progress=epochs, current={"kind": "epoch", "epoch": 2})

    new = migrate_to(AFTER)
    status = {m: dict(new.get_model(*m.split(".")).objects.values_list("pk", "status"))
              for m in ("inference.InferenceJob", "inference.PredictionChunk", "gallery.FaithfulnessRun")}
    assert status == {"inference.InferenceJob": {job.pk: "succeeded", failed.pk: "failed"},
                      "inference.PredictionChunk": {chunk.pk: "succeeded"},
                      "gallery.FaithfulnessRun": {measured.pk: "succeeded"}}
    moved = new.get_model("training", "TrainingRun").objects.get(pk=run.pk)
    assert (moved.history, moved.progress, moved.status) == (epochs, {"kind": "epoch", "epoch": 2}, "succeeded")

    back = migrate_to(BEFORE)
    assert back.get_model("inference", "InferenceJob").objects.get(pk=job.pk).status == "done"
    assert back.get_model("training", "TrainingRun").objects.get(pk=run.pk).progress == epochs
