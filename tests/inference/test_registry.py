from __future__ import annotations

import io

import pytest
import torch
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.urls import reverse

from apps.inference.models import ModelVersion
from apps.inference.selectors import model_version_active
from apps.inference.services.registry import ModelVersionInvalid, model_version_activate, model_version_register
from ml.checkpoint import build_checkpoint, save_atomic
from ml.models import create_model

from .conftest import TINY

pytestmark = pytest.mark.django_db


def stored_checkpoints() -> list[str]:
    return default_storage.listdir("models")[1] if default_storage.exists("models") else []


def test_register_copies_the_checkpoint_and_reads_arch_config_and_metrics(tiny_checkpoint, admin_user):
    version = model_version_register(checkpoint_path=tiny_checkpoint, name="tiny", created_by=admin_user)
    assert version.status == ModelVersion.Status.READY and version.arch == "fer_vgg"
    assert version.metrics["val_accuracy"] == pytest.approx(0.26) and version.metrics["val_macro_f1"] == 0.125
    assert [h["epoch"] for h in version.metrics["history"]] == [1]  # the curves of the evaluation page
    assert version.config["recipe"]["name"] == "tiny" and version.config["arch_kwargs"]["widths"] == [8, 16, 16, 32]
    assert version.data_snapshot == {"n_train": 10}
    assert version.checkpoint.name.startswith("models/") and version.checkpoint.read() == tiny_checkpoint.read_bytes()
    assert model_version_active() is None


def test_exactly_one_version_is_active(tiny_checkpoint, tiny_checkpoint_v2):
    v1 = model_version_register(checkpoint_path=tiny_checkpoint, name="v1", activate=True)
    v2 = model_version_register(checkpoint_path=tiny_checkpoint_v2, name="v2")
    assert model_version_active() == v1
    model_version_activate(version=v2)
    v1.refresh_from_db()
    assert model_version_active() == v2 and v1.status == ModelVersion.Status.ARCHIVED
    model_version_activate(version=v1)  # rollback
    assert model_version_active() == v1
    assert ModelVersion.objects.filter(status="active").count() == 1


def test_the_database_refuses_a_second_active_version(tiny_checkpoint, tiny_checkpoint_v2):
    model_version_register(checkpoint_path=tiny_checkpoint, name="v1", activate=True)
    v2 = model_version_register(checkpoint_path=tiny_checkpoint_v2, name="v2")
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=v2.pk).update(status=ModelVersion.Status.ACTIVE)


def test_a_rejected_version_is_never_activated(tiny_checkpoint):
    version = model_version_register(checkpoint_path=tiny_checkpoint, name="v1")
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.REJECTED)
    with pytest.raises(ModelVersionInvalid, match="rejected"):
        model_version_activate(version=version)
    assert model_version_active() is None


def _foreign_state_dict(path):
    torch.save({"weight": torch.zeros(3)}, path)


def _pickled_object(path):
    torch.save({"format": "ferplatform-checkpoint", "evil": object()}, path)  # weights_only refuses plain objects


def _wrong_weights(path):
    model = create_model("fer_vgg", **TINY)
    ckpt = build_checkpoint(model, recipe={}, epoch=0, history=[])
    ckpt["arch_kwargs"] = {"widths": [4, 4, 4, 4], "depths": [1, 1, 1, 1]}
    save_atomic(ckpt, path)


def _wrong_classes(path):
    ckpt = build_checkpoint(create_model("fer_vgg", **TINY), recipe={}, epoch=0, history=[])
    ckpt["classes"] = ["cat", "dog"]
    save_atomic(ckpt, path)


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: p.write_bytes(b"\x00garbage" * 100), "not a readable PyTorch checkpoint"),
    (lambda p: p.write_bytes(b""), "not a readable PyTorch checkpoint"),
    (_foreign_state_dict, "not a ferplatform checkpoint"),
    (_pickled_object, "not a readable PyTorch checkpoint"),
    (_wrong_weights, "weights do not fit"),
    (_wrong_classes, "classes"),
], ids=["garbage", "empty", "foreign", "pickled-object", "wrong-weights", "wrong-classes"])
def test_a_corrupt_or_foreign_file_is_refused_and_never_stored(tmp_path, make, message):
    path = tmp_path / "bad.pt"
    make(path)
    with pytest.raises(ModelVersionInvalid, match=message):
        model_version_register(checkpoint_path=path, name="bad", activate=True)
    assert not ModelVersion.objects.exists() and stored_checkpoints() == []


def test_a_missing_file_is_refused(tmp_path):
    with pytest.raises(ModelVersionInvalid, match="no such file"):
        model_version_register(checkpoint_path=tmp_path / "nope.pt", name="x")


def test_bootstrap_registers_and_activates_the_shipped_checkpoint_once(monkeypatch):
    monkeypatch.setenv("FERPLATFORM_ADMIN_PASSWORD", "from-the-env-123")
    monkeypatch.delenv("FER2013_CSV", raising=False)
    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    assert "registered and activated default.pt" in out.getvalue()
    version = model_version_active()
    assert version.name == "default" and version.arch == "fer_vgg_m" and version.metrics.get("val_accuracy")
    call_command("bootstrap", stdout=(again := io.StringIO()))
    assert "versions exist already (active: default)" in again.getvalue()
    assert ModelVersion.objects.count() == 1


def test_admin_upload_refuses_a_corrupt_checkpoint(client, admin_user, tmp_path):
    client.force_login(admin_user)
    bad = io.BytesIO(b"not a checkpoint")
    bad.name = "bad.pt"
    response = client.post(reverse("admin:inference_modelversion_add"),
                           {"name": "bad", "checkpoint_file": bad, "activate": "on"})
    assert response.status_code == 200  # the form again, with the error
    assert "refused checkpoint" in response.content.decode()
    assert not ModelVersion.objects.exists() and stored_checkpoints() == []


def test_admin_upload_and_activate_action(client, admin_user, tiny_checkpoint, tiny_checkpoint_v2):
    client.force_login(admin_user)
    with open(tiny_checkpoint, "rb") as fh:
        response = client.post(reverse("admin:inference_modelversion_add"),
                               {"name": "uploaded", "checkpoint_file": fh, "activate": "on"})
    assert response.status_code == 302, response.content.decode()[:2000]
    uploaded = ModelVersion.objects.get(name="uploaded")
    assert uploaded.status == "active" and uploaded.created_by == admin_user
    other = model_version_register(checkpoint_path=tiny_checkpoint_v2, name="other")
    response = client.post(reverse("admin:inference_modelversion_changelist"),
                           {"action": "activate_selected", "_selected_action": [other.pk]}, follow=True)
    assert "is now the active version" in response.content.decode()
    assert model_version_active() == other
