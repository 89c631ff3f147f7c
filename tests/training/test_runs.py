"""Training runs through the services on tiny data: success, gate, cancel, failures, resume, soft labels."""

from __future__ import annotations

import pytest

from apps.inference.models import ModelVersion
from apps.inference.selectors import model_version_active
from apps.training.execution import run_dir, training_run_execute
from apps.training.models import TrainingRun
from apps.training.services import (
    TrainingRunBusy,
    TrainingRunInvalid,
    training_run_cancel,
    training_run_retry,
    training_run_start,
)

from .conftest import BAD, NAN, TINY, run_kwargs

pytestmark = pytest.mark.django_db


def start_and_execute(**kwargs) -> TrainingRun:
    run = training_run_start(**run_kwargs(**kwargs))
    return training_run_execute(run_id=run.pk)


def test_a_run_trains_registers_a_version_with_metrics_and_promotes_it(faces, admin_user, settings):
    run = start_and_execute(created_by=admin_user)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert [p["epoch"] for p in run.history] == [1, 2, 3]
    assert all(p["val_accuracy"] is not None and p["train_loss"] > 0 for p in run.history)
    assert run.snapshot_count == 70 and len(run.snapshot_fingerprint) == 64
    assert run.labels_changed == 0  # nothing active yet: compared with the original labels
    assert run.started_at and run.finished_at and run.heartbeat_at
    version = run.model_version
    assert version.status == ModelVersion.Status.ACTIVE and run.promoted is True
    assert "no active version" in run.promotion_reason
    assert version.metrics["n"] == 28 and 0 <= version.metrics["accuracy"] <= 1
    assert len(version.metrics["confusion"]) == 7 and set(version.metrics["per_class"]) >= {"happy", "sad"}
    assert version.metrics["original_labels"]["n"] == 28
    assert version.data_snapshot["fingerprint"] == run.snapshot_fingerprint
    assert version.created_by == admin_user and version.arch == "fer_vgg"
    assert run.recipe["arch_kwargs"]["widths"] == [8, 16, 16, 32] and run.recipe["epochs"] == 3
    assert "epoch 3/3" in run.log and "registered model version" in run.log
    assert not run_dir(run).exists()  # finished: nothing left to resume


def test_a_run_keeps_its_training_dynamics_with_the_version_by_face_id(faces):
    """How the run saw each Training face's label (margins every epoch, probabilities at the end) is stored with the
    version, its rows the faces' ids: a ranking after every retrain, at no extra cost."""
    from apps.faces.models import FaceImage, Split
    from ml.dynamics import TrainingDynamics

    run = start_and_execute()
    version = run.model_version
    assert version.dynamics.name.endswith(".dynamics.npz")
    dynamics = TrainingDynamics.load(version.dynamics.path)
    training = FaceImage.objects.filter(split=Split.TRAINING, current_label__isnull=False).order_by("pk")
    assert dynamics.rows.tolist() == list(training.values_list("pk", flat=True))
    assert dynamics.labels.tolist() == list(training.values_list("current_label", flat=True))
    assert dynamics.epochs_seen() == 3 and sorted(dynamics.snapshots) == [3]


def test_the_gate_keeps_a_worse_version_inactive_and_promotes_a_better_one(faces):
    good = start_and_execute(epochs=8)
    assert good.model_version.status == ModelVersion.Status.ACTIVE
    assert good.model_version.metrics["accuracy"] > 0.3, good.log

    bad = start_and_execute(recipe_overrides=BAD)
    assert bad.status == TrainingRun.Status.SUCCEEDED
    assert bad.promoted is False and bad.model_version.status == ModelVersion.Status.READY
    assert "kept inactive" in bad.promotion_reason and "drops" in bad.promotion_reason
    assert model_version_active() == good.model_version
    assert bad.metrics["previous"]["version"] == good.model_version.pk
    assert bad.metrics["delta"]["current"]["accuracy"] < 0

    # A better run than the (bad) active version is promoted.
    from apps.inference.services.registry import model_version_activate

    model_version_activate(version=bad.model_version)
    better = start_and_execute(epochs=8)
    assert better.promoted is True, better.promotion_reason
    assert model_version_active() == better.model_version
    assert better.metrics["delta"]["current"]["accuracy"] > 0


def test_only_one_run_at_a_time(faces):
    first = training_run_start(**run_kwargs())
    with pytest.raises(TrainingRunBusy, match=f"run #{first.pk} is queued"):
        training_run_start(**run_kwargs())
    # The database refuses a second running run, whatever the code path.
    TrainingRun.objects.filter(pk=first.pk).update(status=TrainingRun.Status.RUNNING)
    second = TrainingRun.objects.create(trigger="api", recipe_name="scoring", arch="fer_vgg", epochs=1)
    assert training_run_execute(run_id=second.pk).status == TrainingRun.Status.FAILED  # the claim is refused
    second.refresh_from_db()
    assert second.status == TrainingRun.Status.FAILED and "only one run trains at a time" in second.error


def test_invalid_requests_are_refused(db):
    with pytest.raises(TrainingRunInvalid, match="unknown recipe"):
        training_run_start(trigger="admin", recipe_name="nope")
    with pytest.raises(TrainingRunInvalid, match="soft-label mode"):
        training_run_start(trigger="admin", soft_label_mode="vibes")
    with pytest.raises(TrainingRunInvalid, match="epochs"):
        training_run_start(trigger="admin", epochs=0)
    with pytest.raises(TrainingRunInvalid, match="cannot be null: lr"):
        training_run_start(trigger="admin", recipe_overrides={"lr": None})
    with pytest.raises(TrainingRunInvalid, match="JSON object"):
        training_run_start(trigger="admin", recipe_overrides=[1, 2])
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize(("overrides", "words"), [
    ({"batch_size": "abc"}, "'batch_size' must be an integer >= 1, not 'abc'"),
    ({"progressive_resize": 5}, "'progressive_resize' must be null or a list of 2 integers"),
    ({"lr": 0}, "'lr' must be a number > 0"),
    ({"amp_bf16": "yes"}, "'amp_bf16' must be true or false"),
    ({"epochs": 10**6}, "'epochs' must be between 1 and 500"),
])
def test_overrides_of_the_wrong_type_or_range_are_refused_naming_the_field(db, overrides, words):
    with pytest.raises(TrainingRunInvalid) as refused:
        training_run_start(**run_kwargs(epochs=None, recipe_overrides={**TINY, **overrides}))
    assert words in str(refused.value)
    assert refused.value.status == 400
    assert not TrainingRun.objects.exists()


@pytest.mark.parametrize("seed", [-1, 2**31, 10**30, True, "7"])
def test_a_seed_outside_0_to_2_31_is_refused_by_the_service(db, seed):
    with pytest.raises(TrainingRunInvalid, match="seed must be an integer between 0 and 2147483647"):
        training_run_start(**run_kwargs(seed=seed))
    assert not TrainingRun.objects.exists()


def test_a_null_override_switches_a_field_off(db):
    run = training_run_start(trigger="admin", recipe_name="fast-2h", recipe_overrides={"progressive_resize": None})
    assert run.recipe["progressive_resize"] is None and run.recipe["name"] == "fast-2h"
    training_run_cancel(run_id=run.pk)  # one run at a time
    run = training_run_start(trigger="admin", recipe_name="fast-2h", recipe_overrides={"progressive_resize": [40, 48]})
    run.refresh_from_db()
    assert run.recipe["progressive_resize"] == [40, 48]  # as stored (JSON)


def test_cancel_a_queued_run(faces):
    run = training_run_start(**run_kwargs())
    run = training_run_cancel(run_id=run.pk)
    assert run.status == TrainingRun.Status.CANCELLED
    run = training_run_execute(run_id=run.pk)  # the task arrives later: nothing happens
    assert run.status == TrainingRun.Status.CANCELLED and run.model_version is None


def test_cancel_a_running_run_stops_it_between_batches(faces, random_active_version):
    run = training_run_start(**run_kwargs(epochs=50))
    seen = []

    def cancel_on_first_batch(event):
        seen.append(event)
        if len(seen) == 1:
            training_run_cancel(run_id=run.pk)

    run = training_run_execute(run_id=run.pk, echo=cancel_on_first_batch)
    assert run.status == TrainingRun.Status.CANCELLED and run.error == "cancelled by an admin"
    assert len(run.history) < 50 and run.model_version is None
    assert model_version_active() == random_active_version


def test_nan_loss_fails_the_run_with_the_reason_and_leaves_the_active_version(faces, random_active_version):
    run = start_and_execute(recipe_overrides=NAN)
    assert run.status == TrainingRun.Status.FAILED
    assert "loss became" in run.error and run.finished_at
    assert run.model_version is None and model_version_active() == random_active_version
    assert ModelVersion.objects.count() == 1


def test_a_failed_run_resumes_from_its_last_epoch_checkpoint(faces):
    run = training_run_start(**run_kwargs(epochs=3))

    def crash_after_epoch_2(event):
        if event["kind"] == "epoch" and event["epoch"] == 2:
            raise RuntimeError("worker lost its GPU")

    run = training_run_execute(run_id=run.pk, echo=crash_after_epoch_2)
    assert run.status == TrainingRun.Status.FAILED and "worker lost its GPU" in run.error
    assert (run_dir(run) / "model.pt.state").is_file()
    fingerprint = run.snapshot_fingerprint

    run = training_run_retry(run_id=run.pk)
    assert run.status == TrainingRun.Status.QUEUED
    epochs = []
    run = training_run_execute(run_id=run.pk, echo=lambda e: e["kind"] == "epoch" and epochs.append(e["epoch"]))
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert epochs == [3]  # epochs 1 and 2 came from the checkpoint
    assert [p["epoch"] for p in run.history] == [1, 2, 3]
    assert run.snapshot_fingerprint == fingerprint and "resuming on its snapshot" in run.log


@pytest.mark.parametrize("mode", ["probability", "crossentropy"])
def test_soft_label_modes_train_on_vote_distributions(faces, mode):
    from apps.faces.models import FaceImage

    # FER+ columns: neutral, happiness, surprise, sadness, anger, disgust, fear, contempt, unknown, NF
    for face in FaceImage.objects.filter(split="Training")[:20]:
        face.ferplus_votes = [2, 6, 0, 0, 1, 0, 0, 0, 1, 0]
        face.save(update_fields=["ferplus_votes"])
    run = start_and_execute(soft_label_mode=mode, epochs=1)
    assert run.status == TrainingRun.Status.SUCCEEDED, run.error
    assert run.soft_label_count == 20 and run.recipe["soft_label_mode"] == mode
    assert run.model_version.metrics["soft_label_mode"] == mode
    assert f"soft labels ({mode}): 20 face(s)" in run.log
