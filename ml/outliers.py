"""Which faces are not faces: blank frames, noise, text, drawings (FER-2013 has all of them).

Two kinds of evidence, each turned into a strength in [0, 1] per face:

- **image statistics**, absolute and cheap: near-constant (pixel std), very dark or very light (mean), low information
  (entropy of the grey levels), no detail (variance of the Laplacian: blurred or smooth), noise-like (neighbouring
  pixels unrelated). A blank frame is not a face however many blank frames the data set holds.
- **out of distribution** in the model's feature space: cleanlab's ``OutOfDistribution`` (mean cosine distance to the
  k nearest neighbours of the penultimate features, ``ml.scoring.pooled_features``), as a multiple of the typical
  face's distance. It finds what the statistics cannot name (text, drawings, crops of other things) and misses what
  repeats (a hundred identical blanks are each other's neighbours), which the statistics catch.

They combine as a noisy-or, ``1 - (1 - stats)(1 - ood)``, where ``stats`` is the strongest statistic: one strong
signal is enough, two agreeing are more. Each face's main reason is its strongest signal, in words.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# (fired at, silent at): each strength is a logistic that reads 0.95 at the first and 0.05 at the second, so a face
# half-way between is at 0.5 and stronger evidence still ranks higher. On 3,000 FER-2013 Training faces (1st-99th
# percentile): pixel std 24-95, mean grey 52-197, 5.0-7.8 bits of grey levels, Laplacian variance 380-12,400,
# neighbouring pixels correlated 0.80-0.97, k-NN feature distance 0.5x-3.2x the median face's. The ramps start outside.
NEAR_CONSTANT = (3.0, 10.0)  # pixel std
TOO_DARK = (12.0, 35.0)  # mean grey level
TOO_LIGHT = (245.0, 222.0)
LOW_INFORMATION = (2.0, 4.0)  # bits: entropy of the 256-bin histogram
NO_DETAIL = (5.0, 40.0)  # variance of the 4-neighbour Laplacian
NOISE_LIKE = (0.3, 0.6)  # Pearson correlation of horizontally and vertically adjacent pixels
OOD_DISTANCE = (4.0, 2.5)  # mean k-NN feature distance, as a multiple of the median face's
OOD_K = 10
FIRED = 0.5  # a signal with at least this strength counts as fired

STATISTICS = ("near_constant", "too_dark", "too_light", "low_information", "no_detail", "noise_like")
SIGNALS = (*STATISTICS, "ood")
# The order a face's main reason is chosen in among its fired signals: the most specific statement first (a blank
# frame also has no information and no detail, but "near-constant" says what it is).
PRECEDENCE = ("near_constant", "noise_like", "too_dark", "too_light", "no_detail", "low_information", "ood")


def _ramp(values: np.ndarray, fired: float, silent: float) -> np.ndarray:
    """0.05 at ``silent``, 0.95 at ``fired``, logistic in between and beyond (either direction)."""
    mid, width = (fired + silent) / 2, (fired - silent) / (2 * np.log(19.0))
    z = np.clip((np.asarray(values, dtype=np.float64) - mid) / width, -60.0, 60.0)
    return 1.0 / (1.0 + np.exp(-z))


def image_statistics(images: np.ndarray) -> dict[str, np.ndarray]:
    """Per face of uint8 (N, H, W) images: ``std``, ``mean``, ``entropy`` (bits), ``laplacian_var`` and
    ``neighbour_corr`` (1 for a constant image: nothing varies, nothing is unrelated)."""
    x = np.asarray(images, dtype=np.float64)
    if x.ndim != 3:
        raise ValueError(f"expected (N, H, W) images, got shape {x.shape}")
    n = len(x)
    flat = x.reshape(n, -1)
    mean, std = flat.mean(axis=1), flat.std(axis=1)
    entropy = np.empty(n)
    for i, row in enumerate(np.asarray(images, dtype=np.uint8).reshape(n, -1)):
        p = np.bincount(row, minlength=256) / row.size
        p = p[p > 0]
        entropy[i] = abs(float((p * np.log2(p)).sum()))
    lap = (x[:, 1:-1, :-2] + x[:, 1:-1, 2:] + x[:, :-2, 1:-1] + x[:, 2:, 1:-1] - 4 * x[:, 1:-1, 1:-1])
    laplacian_var = lap.reshape(n, -1).var(axis=1)
    corr = (_pair_corr(x[:, :, :-1], x[:, :, 1:]) + _pair_corr(x[:, :-1, :], x[:, 1:, :])) / 2
    return {"std": std, "mean": mean, "entropy": entropy, "laplacian_var": laplacian_var, "neighbour_corr": corr}


def _pair_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a.reshape(len(a), -1) - a.reshape(len(a), -1).mean(axis=1, keepdims=True)
    b = b.reshape(len(b), -1) - b.reshape(len(b), -1).mean(axis=1, keepdims=True)
    denom = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    return np.where(denom > 1e-9, (a * b).sum(axis=1) / np.maximum(denom, 1e-9), 1.0)


def statistic_strengths(stats: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each statistic's strength in [0, 1] (``STATISTICS``)."""
    return {
        "near_constant": _ramp(stats["std"], *NEAR_CONSTANT),
        "too_dark": _ramp(stats["mean"], *TOO_DARK),
        "too_light": _ramp(stats["mean"], *TOO_LIGHT),
        "low_information": _ramp(stats["entropy"], *LOW_INFORMATION),
        "no_detail": _ramp(stats["laplacian_var"], *NO_DETAIL),
        "noise_like": _ramp(stats["neighbour_corr"], *NOISE_LIKE),
    }


def ood_distance(features: np.ndarray, *, k: int = OOD_K) -> np.ndarray:
    """cleanlab's ``OutOfDistribution`` on ``features`` (N, C), as each face's mean distance to its ``k`` nearest
    neighbours over the median face's (cleanlab's score is ``exp(-that)``; the ratio reads more plainly)."""
    from cleanlab.outlier import OutOfDistribution

    features = np.asarray(features, dtype=np.float32)
    if len(features) < 3:
        return np.ones(len(features))  # nothing to compare with: everyone typical
    scores = OutOfDistribution(params={"k": min(k, len(features) - 1)}).fit_score(features=features, verbose=False)
    return -np.log(np.clip(scores, 1e-300, 1.0))


@dataclass
class OutlierScores:
    """Per face: ``score`` in [0, 1] (high: likely not a face), the strength of each signal (``SIGNALS``), the raw
    statistics, and the k-NN distance ratio (None without features)."""

    score: np.ndarray
    strengths: dict[str, np.ndarray]
    statistics: dict[str, np.ndarray]
    distance: np.ndarray | None = None
    stats_score: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.stats_score = np.max(np.stack([self.strengths[s] for s in STATISTICS]), axis=0)

    @property
    def ood_score(self) -> np.ndarray:
        return self.strengths["ood"]

    def top(self, count: int, *, min_score: float = 0.0) -> np.ndarray:
        """Indices of at most ``count`` faces scoring at least ``min_score``, most outlying first (ties: lower
        index first)."""
        order = np.lexsort((np.arange(len(self.score)), -self.score))
        return order[self.score[order] >= min_score][:max(count, 0)]

    def fired(self, i: int) -> list[str]:
        """The signals that fired (strength ``FIRED`` or more) for face ``i``, main one first (``PRECEDENCE``)."""
        return [s for s in PRECEDENCE if self.strengths[s][i] >= FIRED]

    def reason(self, i: int) -> str:
        """Face ``i``'s main signal in words (without one fired: its strongest)."""
        fired = self.fired(i) or [max(SIGNALS, key=lambda s: float(self.strengths[s][i]))]
        st = {k: float(v[i]) for k, v in self.statistics.items()}
        return {
            "near_constant": f"near-constant image (pixel std {st['std']:.1f})",
            "too_dark": f"very dark (mean grey {st['mean']:.0f} of 255)",
            "too_light": f"very light (mean grey {st['mean']:.0f} of 255)",
            "low_information": f"low information ({st['entropy']:.1f} bits of grey levels)",
            "no_detail": f"no detail, blurred or smooth (Laplacian variance {st['laplacian_var']:.1f})",
            "noise_like": f"noise-like, neighbouring pixels unrelated (correlation {st['neighbour_corr']:.2f})",
            "ood": ("unlike the other faces to the model (feature distance "
                    f"{float(self.distance[i]) if self.distance is not None else 0:.1f}x the typical face's)"),
        }[fired[0]]

    def detail(self, i: int) -> dict:
        """Face ``i``'s score, reason, fired signals and statistics, JSON-ready."""
        out = {"score": round(float(self.score[i]), 4), "reason": self.reason(i), "fired": self.fired(i),
               "stats_score": round(float(self.stats_score[i]), 4), "ood_score": round(float(self.ood_score[i]), 4),
               "statistics": {k: round(float(v[i]), 3) for k, v in self.statistics.items()}}
        if self.distance is not None:
            out["feature_distance"] = round(float(self.distance[i]), 3)
        return out


def outlier_scores(images: np.ndarray, features: np.ndarray | None = None, *, k: int = OOD_K) -> OutlierScores:
    """Score uint8 (N, H, W) faces, with their penultimate ``features`` (N, C) when given (without: statistics
    only)."""
    stats = image_statistics(images)
    strengths = statistic_strengths(stats)
    distance = None
    if features is not None:
        if len(features) != len(images):
            raise ValueError(f"{len(features)} feature rows for {len(images)} images")
        distance = ood_distance(features, k=k)
        strengths["ood"] = _ramp(distance, *OOD_DISTANCE)
    else:
        strengths["ood"] = np.zeros(len(images))
    stats_score = np.max(np.stack([strengths[s] for s in STATISTICS]), axis=0) if len(images) else np.zeros(0)
    score = 1.0 - (1.0 - stats_score) * (1.0 - strengths["ood"])
    return OutlierScores(score=score, strengths=strengths, statistics=stats, distance=distance)
