from __future__ import annotations

import io
import json

import pytest
from django.core.management import CommandError, call_command

from apps.training.models import TrainingRun

from .conftest import TINY

pytestmark = pytest.mark.django_db


def test_train_model_runs_here_and_prints_progress(faces):
    out = io.StringIO()
    call_command("train_model", "--recipe", "scoring", "--epochs", "2", "--recipe-overrides", json.dumps(TINY),
                 stdout=out)
    text = out.getvalue()
    assert "epoch 1/2: loss" in text and "epoch 2/2" in text and "gate: promoted" in text
    assert TrainingRun.objects.get().status == TrainingRun.Status.SUCCEEDED


def test_train_model_refuses_bad_input(db):
    with pytest.raises(CommandError, match="unknown recipe"):
        call_command("train_model", "--recipe", "nope")
    with pytest.raises(CommandError, match="not JSON"):
        call_command("train_model", "--recipe-overrides", "{")
    with pytest.raises(CommandError, match="'batch_size' must be an integer"):
        call_command("train_model", "--recipe-overrides", '{"batch_size": "abc"}')
    with pytest.raises(CommandError, match="seed must be an integer between 0 and 2147483647"):
        call_command("train_model", "--seed", str(2**31))
