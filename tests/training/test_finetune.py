"""Warm-start retraining: recipe ``finetune`` starts from the active version's weights, goes through the same gate, and
is what the periodic check runs by default; a run from scratch stays an admin's choice."""

from __future__ import annotations

import pytest
import torch

from apps.faces.models import FaceImage
from apps.inference import runtime
from apps.inference.models import ModelVersion
from apps.training.execution import training_run_execute
from apps.training.models import TrainingRun, TrainingSettings
from apps.training.services import TrainingRunInvalid, training_run_create, training_run_start
from apps.training.tasks import training_periodic_check_task

from .conftest import TINY

pytestmark = pytest.mark.django_db


def test_finetune_needs_an_active_version(faces):
    with pytest.raises(TrainingRunInvalid, match="no version is active"):
        training_run_create(trigger="admin", recipe_name="finetune")


def test_finetune_starts_from_the_active_weights_and_goes_through_the_gate(faces, random_active_version, settings):
    run = training_run_create(trigger="admin", recipe_name="finetune", epochs=1,
                              recipe_overrides={"batch_size": 16, "amp_bf16": False, "lr": 1e-9})
    run.refresh_from_db()
    assert run.init_version == random_active_version
    assert run.arch == random_active_version.arch == "fer_vgg"  # the active version's, not the recipe's fer_vgg_m
    assert run.recipe["arch_kwargs"] == {k: list(v) for k, v in TINY["arch_kwargs"].items()}
    TrainingRun.objects.filter(pk=run.pk).update(status="queued")
    done = training_run_execute(run_id=run.pk)
    assert done.status == TrainingRun.Status.SUCCEEDED, done.error
    assert f"warm start from version #{random_active_version.pk}" in done.log
    # A learning rate of 1e-9 for one epoch leaves the weights where they started: the active version's.
    start = runtime.loaded(random_active_version).model.state_dict()
    runtime.clear()
    new = runtime.loaded(done.model_version).model.state_dict()
    weight = "features.0.0.weight"
    assert torch.allclose(new[weight], start[weight], atol=1e-5)
    assert done.promoted is not None and done.promotion_reason  # the gate decided, as for any run


def test_a_run_whose_starting_version_is_gone_fails_with_the_reason(faces, random_active_version):
    run = training_run_start(trigger="admin", recipe_name="finetune", epochs=1,
                             recipe_overrides={"batch_size": 16, "amp_bf16": False})
    TrainingRun.objects.filter(pk=run.pk).update(init_version=None)
    done = training_run_execute(run_id=run.pk)
    assert done.status == TrainingRun.Status.FAILED and "no longer exists" in done.error
    assert ModelVersion.objects.count() == 1


def test_the_periodic_check_finetunes_by_default_and_says_why_it_cannot(faces, random_active_version,
                                                                         django_capture_on_commit_callbacks):
    assert TrainingSettings.objects.get(pk=1).auto_recipe == "finetune"
    TrainingSettings.objects.filter(pk=1).update(auto_min_changed=3, auto_epochs=1)
    for face in FaceImage.objects.filter(split="Training").order_by("pk")[:3]:
        face.current_label = (face.current_label + 1) % 7
        face.save(update_fields=["current_label"])
    with django_capture_on_commit_callbacks(execute=False):
        result = training_periodic_check_task()
    run = TrainingRun.objects.get(pk=result["started"])
    assert run.recipe_name == "finetune" and run.init_version == random_active_version

    TrainingRun.objects.all().delete()
    ModelVersion.objects.update(status=ModelVersion.Status.ARCHIVED)
    result = training_periodic_check_task()
    assert result["started"] is None and "no version is active" in result["skipped"]


def selected_recipe(page: str) -> str:
    return page.split(" selected>")[0].rsplit('<option value="', 1)[1].split('"', 1)[0]


def test_the_training_page_offers_finetune_when_a_version_is_active_and_scratch_otherwise(client, admin_user, faces,
                                                                                         random_checkpoint):
    from apps.inference.services.registry import model_version_register

    client.force_login(admin_user)
    page = client.get("/training/").content.decode()
    assert selected_recipe(page) == "default" and "default (60 epochs, from scratch)" in page
    assert "finetune (6 epochs, from the active version's weights)" in page
    assert 'recipe <strong id="auto-recipe">finetune</strong>' in page
    model_version_register(checkpoint_path=random_checkpoint, name="random", activate=True)
    assert selected_recipe(client.get("/training/").content.decode()) == "finetune"
