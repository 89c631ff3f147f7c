"""A queue that learns from its reviewers: how often a label is really wrong, by (given label, suggested label).

The ranking (a label-quality score per face, low = likely wrong) knows what the model thinks; the reviewers know how
often the model is right to doubt. Every settled item says whether its given label was wrong. Grouped by the pair
(given label, the model's suggestion), those outcomes give an error rate per pair, shrunk toward the overall rate
(a Beta prior worth ``shrink`` items), so a pair with few outcomes moves little. Re-ranking adds the pair's log-odds
against the overall rate to the log of the face's rank in the ranking (its share of faces ranked above it): a face
keeps its place among faces of its own pair, and pairs that reviewers found wrong more often than the rest come
forward. Two fitted numbers per pair and nothing to overfit with a few hundred outcomes, which matters because
reviewers settle the top of the queue first and a richer model fitted there extrapolates badly to the rest
(docs/benchmarks.md, "A queue that learns").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.labels import NUM_CLASSES

SHRINK = 20  # prior weight, in items, of the overall error rate in each pair's rate
RANK_FLOOR = 1e-4  # log of a rank share of 0 would be -inf


@dataclass(frozen=True)
class ReviewerModel:
    prior: float  # overall share of settled items whose label was wrong
    rates: np.ndarray  # (7, 7) shrunk error rate per (given, suggested)
    counts: np.ndarray  # (7, 7) settled items per pair
    wrong: np.ndarray  # (7, 7) of them wrong
    shrink: float = SHRINK

    @property
    def settled(self) -> int:
        return int(self.counts.sum())

    def offsets(self, given: np.ndarray, suggested: np.ndarray) -> np.ndarray:
        """Per face: its pair's log-odds of being wrong minus the overall log-odds (positive: wrong more often)."""
        rates = self.rates[np.asarray(given, dtype=np.int64), np.asarray(suggested, dtype=np.int64)]
        return _logit(rates) - _logit(np.float64(self.prior))

    def as_dict(self) -> dict:
        return {"prior": self.prior, "shrink": self.shrink, "rates": self.rates.round(6).tolist(),
                "counts": self.counts.astype(int).tolist(), "wrong": self.wrong.astype(int).tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> ReviewerModel:
        return cls(float(data["prior"]), np.asarray(data["rates"], dtype=np.float64),
                   np.asarray(data["counts"], dtype=np.int64), np.asarray(data["wrong"], dtype=np.int64),
                   float(data.get("shrink", SHRINK)))


def _logit(p):
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def fit_reviewer_model(given: np.ndarray, suggested: np.ndarray, wrong: np.ndarray, *,
                       shrink: float = SHRINK) -> ReviewerModel:
    """The pair rates from settled outcomes: ``wrong[i]`` whether face i's given label was wrong."""
    given, suggested = np.asarray(given, dtype=np.int64), np.asarray(suggested, dtype=np.int64)
    wrong = np.asarray(wrong, dtype=bool)
    if not len(wrong):
        raise ValueError("no settled items to learn from")
    if not (len(given) == len(suggested) == len(wrong)):
        raise ValueError("given, suggested and wrong differ in length")
    if given.min() < 0 or suggested.min() < 0 or max(given.max(), suggested.max()) >= NUM_CLASSES:
        raise ValueError(f"labels must be 0-{NUM_CLASSES - 1}")
    counts = np.zeros((NUM_CLASSES, NUM_CLASSES), dtype=np.int64)
    wrongs = np.zeros_like(counts)
    np.add.at(counts, (given, suggested), 1)
    np.add.at(wrongs, (given, suggested), wrong.astype(np.int64))
    prior = float(wrong.mean())
    rates = (wrongs + shrink * prior) / (counts + shrink)
    return ReviewerModel(prior, rates, counts, wrongs, float(shrink))


def rank_share(quality: np.ndarray) -> np.ndarray:
    """Each face's share of the faces ranked before it (0 for the first, near 1 for the last)."""
    from scipy.stats import rankdata

    quality = np.asarray(quality, dtype=np.float64)
    return (rankdata(quality, method="average") - 1) / max(len(quality) - 1, 1)


def rerank(share: np.ndarray, given: np.ndarray, suggested: np.ndarray, model: ReviewerModel) -> np.ndarray:
    """New priorities (low = served first) for faces at rank ``share`` (``rank_share`` of their ranking)."""
    return np.log(np.asarray(share, dtype=np.float64) + RANK_FLOOR) - model.offsets(given, suggested)
