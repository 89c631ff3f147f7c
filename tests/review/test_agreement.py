from __future__ import annotations

from collections import Counter

import pytest

from apps.review.selectors import fleiss_kappa


def test_fleiss_kappa_matches_a_worked_example():
    # Fleiss (1971)-style table: 4 items, 3 raters, 3 categories.
    items = [Counter({0: 3}), Counter({1: 3}), Counter({0: 1, 1: 2}), Counter({2: 2, 0: 1})]
    # P_i = 1, 1, 1/3, 1/3 -> P_bar = 2/3; p = (5/12, 5/12, 2/12) -> P_e = 54/144
    expected = (2 / 3 - 54 / 144) / (1 - 54 / 144)
    assert fleiss_kappa(items) == pytest.approx(expected)


def test_fleiss_kappa_edges():
    assert fleiss_kappa([]) is None
    assert fleiss_kappa([Counter({1: 1})]) is None  # one vote is no agreement data
    assert fleiss_kappa([Counter({1: 2}), Counter({1: 3})]) is None  # one category only
    assert fleiss_kappa([Counter({0: 2}), Counter({1: 2})]) == pytest.approx(1.0)
    assert fleiss_kappa([Counter({0: 1, 1: 1}), Counter({0: 1, 1: 1})]) == pytest.approx(-1.0)
