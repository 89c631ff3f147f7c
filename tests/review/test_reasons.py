"""Every queue item says why it is there: what the model reads, how a short run saw the label, how often reviewers
found such labels wrong. From the score and the queue's reviewer model only: gold items get reasons like any other."""

from __future__ import annotations

import numpy as np
import pytest

from apps.review.models import LabelScore, ReviewItem, ScoringRun
from apps.review.selectors import item_reasons
from ml.queue_model import fit_reviewer_model
from tests.faces.factories import FaceImageFactory
from tests.helpers import api_client

from .factories import ReviewItemFactory

pytestmark = pytest.mark.django_db

HAPPY, SURPRISE = 3, 5
PROBS = [0.02, 0.01, 0.02, 0.12, 0.01, 0.81, 0.01]


def _item(signals: dict | None = None) -> ReviewItem:
    run = ScoringRun.objects.create(method="short_run", folds=1, status=ScoringRun.Status.SUCCEEDED)
    face = FaceImageFactory(original_label=HAPPY, current_label=HAPPY)
    score = LabelScore.objects.create(run=run, face=face, given_label=HAPPY, quality=-0.7, is_issue=True,
                                      suggested_label=SURPRISE, suggested_probability=0.81, probabilities=PROBS,
                                      signals=signals or {})
    return ReviewItem.objects.create(face=face, score=score, priority=-0.7, suggested_label=SURPRISE,
                                     suggested_probability=0.81)


def test_reasons_name_the_model_the_short_run_and_the_reviewers():
    item = _item({"negative_epochs": 9, "epochs": 12, "snapshots_agree": 2, "snapshots": 3})
    model = fit_reviewer_model(np.array([HAPPY] * 25), np.array([SURPRISE] * 25), np.array([True] * 16 + [False] * 9))
    assert item_reasons(item, model) == [
        "the model reads surprise at 0.81, the label happy at 0.12",
        "a short training run's margin for happy was negative in 9 of 12 epochs",
        "it read surprise in 2 of its 3 snapshots",
        "reviewers found 16 of 25 happy labels the model read as surprise wrong",
    ]
    assert item_reasons(item) == item_reasons(item, model)[:3]  # before the queue has learnt anything


def test_an_item_without_a_score_or_signals_says_only_what_it_has():
    assert item_reasons(ReviewItemFactory(score=None)) == []
    assert item_reasons(_item()) == ["the model reads surprise at 0.81, the label happy at 0.12"]


def test_the_api_serves_the_reasons_with_the_item(reviewers):
    item = _item({"negative_epochs": 3, "epochs": 12, "snapshots_agree": 3, "snapshots": 3})
    served = api_client(reviewers[0]).get("/api/review/items/next").json()["items"]
    assert [i["id"] for i in served] == [item.pk]
    assert served[0]["reasons"][1] == "a short training run's margin for happy was negative in 3 of 12 epochs"
