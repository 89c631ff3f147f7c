"""The reviewer model: pair error rates shrunk toward the overall rate, and a re-ranking that brings forward the
pairs reviewers found wrong more often while keeping the order within a pair."""

from __future__ import annotations

import numpy as np
import pytest

from ml.queue_model import ReviewerModel, fit_reviewer_model, rank_share, rerank


def test_rates_are_shrunk_toward_the_overall_rate_by_the_number_of_outcomes():
    given = np.array([3] * 10 + [4] * 10 + [0])
    suggested = np.array([5] * 10 + [2] * 10 + [1])
    wrong = np.array([True] * 10 + [False] * 10 + [True])
    model = fit_reviewer_model(given, suggested, wrong, shrink=10)
    assert model.prior == pytest.approx(11 / 21) and model.settled == 21
    assert model.rates[3, 5] == pytest.approx((10 + 10 * 11 / 21) / 20)
    assert model.rates[4, 2] == pytest.approx((0 + 10 * 11 / 21) / 20)
    assert model.rates[0, 1] == pytest.approx((1 + 10 * 11 / 21) / 11)  # one outcome: close to the prior
    assert model.rates[6, 6] == pytest.approx(11 / 21)  # none: the prior
    assert ReviewerModel.from_dict(model.as_dict()).rates == pytest.approx(model.rates)


def test_rerank_brings_a_pair_reviewers_found_wrong_forward_and_keeps_order_within_a_pair():
    quality = np.linspace(0, 1, 8)
    given = np.array([3, 3, 3, 3, 4, 4, 4, 4])
    suggested = np.array([5, 5, 5, 5, 2, 2, 2, 2])
    share = rank_share(quality)
    model = fit_reviewer_model(np.array([4] * 30 + [3] * 30), np.array([2] * 30 + [5] * 30),
                               np.array([True] * 27 + [False] * 3 + [True] * 3 + [False] * 27))
    order = list(np.argsort(rerank(share, given, suggested, model)))
    assert order[:2] == [0, 4]  # the best-ranked face of the pair found wrong 9 times in 10 passes faces 1-3
    assert [i for i in order if given[i] == 3] == [0, 1, 2, 3] and [i for i in order if given[i] == 4] == [4, 5, 6, 7]


def test_bad_outcomes_are_refused():
    with pytest.raises(ValueError, match="no settled"):
        fit_reviewer_model(np.array([]), np.array([]), np.array([]))
    with pytest.raises(ValueError, match="0-6"):
        fit_reviewer_model(np.array([7]), np.array([0]), np.array([True]))
