"""Label-quality scoring: out-of-sample probabilities from k-fold cross-fitting, then confident learning (cleanlab).

Each fold's held-out probabilities are saved as soon as the fold finishes (and each fold's training is resumable), so
a crash in fold 3 does not redo folds 1 and 2.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.data import FaceArrays
from ml.dynamics import TrainingDynamics
from ml.models import FerModel
from ml.recipes import Recipe, get_recipe

RANKING_METHODS = ("self_confidence", "normalized_margin", "confidence_weighted_entropy")
# Chosen on real relabels (FER+ votes, benchmarks/bench_ferplus_ranking.py; docs/benchmarks.md, "Real relabels"):
# on the shipped model's in-sample probabilities normalized_margin finds more of FER-2013's own errors at every depth
# than self_confidence, which had won on injected noise.
DEFAULT_RANKING = "normalized_margin"
SHORT_RUN_SNAPSHOTS = "mean"  # ml.dynamics.TrainingDynamics.snapshot_probabilities: chosen on real relabels
# A short run blended with the active version: the share of the active version's in-sample probabilities. Chosen on
# real relabels over two seeds (docs/benchmarks.md, "Real relabels"): 0.3 and 0.4 both beat an even mix.
SHORT_RUN_ACTIVE_WEIGHT = 0.3
FILTER_METHODS = ("prune_by_noise_rate", "prune_by_class", "both", "confident_learning", "predicted_neq_given")


def scoring_recipe(device: str | None = None) -> Recipe:
    """The scoring recipe for where it trains (``device``, or CUDA when present): on a GPU its folds and short runs
    train the default model's architecture, which a GPU fits in minutes; on a CPU the recipe's small fer_vgg, so that
    4 folds fit in well under an hour on 2 cores. A caller's recipe or overrides still win."""
    from ml.evaluate import pick_device
    from ml.recipes import apply_overrides

    recipe = get_recipe("scoring")
    if pick_device(device).type == "cuda":
        recipe = apply_overrides(recipe, {"arch": get_recipe("default").arch})
    return recipe


@dataclass
class LabelScores:
    """One entry per scored image, in the input order."""

    rows: np.ndarray  # 0-based data row in the source
    given: np.ndarray
    suggested: np.ndarray
    suggested_probability: np.ndarray
    quality: np.ndarray
    is_issue: np.ndarray
    probabilities: np.ndarray  # (N, 7) out-of-sample
    signals: list[dict] | None = None  # per image, what put it where it is beyond the probabilities (short runs)

    def order(self) -> np.ndarray:
        """Indices by ascending quality (most likely wrong first)."""
        return np.argsort(self.quality, kind="stable")

    def write_csv(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["row", "given_label", "suggested_label", "quality", "is_issue"])
            for i in self.order():
                w.writerow([int(self.rows[i]), int(self.given[i]), int(self.suggested[i]),
                            f"{self.quality[i]:.6f}", int(bool(self.is_issue[i]))])


def fold_assignment(labels: np.ndarray, folds: int, seed: int) -> np.ndarray:
    """Stratified fold index per image."""
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise ValueError("need at least 2 folds")
    counts = np.bincount(labels)
    if counts[counts > 0].min() < folds:  # StratifiedKFold needs every class in every fold; fall back to plain k-fold
        rng = np.random.default_rng(seed)
        return rng.permutation(np.arange(len(labels)) % folds)
    assign = np.empty(len(labels), dtype=np.int64)
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for k, (_, held_out) in enumerate(skf.split(np.zeros(len(labels)), labels)):
        assign[held_out] = k
    return assign


def _fingerprint(data: FaceArrays, assign: np.ndarray, recipe: Recipe, epochs: int, seed: int) -> str:
    h = hashlib.sha256()
    h.update(np.ascontiguousarray(data.labels).tobytes())
    h.update(np.ascontiguousarray(assign).tobytes())
    h.update(hashlib.sha256(np.ascontiguousarray(data.images).tobytes()).digest())
    h.update(json.dumps([recipe.as_dict(), epochs, seed], sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _save_npz_atomic(path: Path, **arrays) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz")
    os.close(fd)
    try:
        np.savez(tmp, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class CrossFitProbabilities:
    """Held-out probabilities (N, 7) of every image, with the scoring TTA and without any (NaN for folds finished by
    an older version that kept only the TTA ones)."""

    probs: np.ndarray
    probs_no_tta: np.ndarray


def cross_fit(data: FaceArrays, *, folds: int = 4, recipe: Recipe | None = None, epochs: int | None = None,
              seed: int = 0, work_dir: str | Path, device: str | None = None, tta: str = "flip",
              progress: Callable[[dict], None] | None = None) -> CrossFitProbabilities:
    """Out-of-sample probabilities: each image is predicted by a model that never saw it."""
    from ml.checkpoint import load_checkpoint
    from ml.evaluate import predict_proba
    from ml.train import fit

    recipe = recipe or scoring_recipe(device)
    epochs = epochs or recipe.epochs
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    assign = fold_assignment(data.labels, folds, seed)
    tag = _fingerprint(data, assign, recipe, epochs, seed)
    probs = np.full((len(data), 7), np.nan, dtype=np.float32)
    plain = probs.copy()
    for k in range(folds):
        done = work / f"fold{k}-{tag}.npz"
        held = assign == k
        if done.is_file():
            saved = np.load(done)
            probs[held] = saved["probs"]
            if "probs_no_tta" in saved:
                plain[held] = saved["probs_no_tta"]
            if progress:
                progress({"kind": "fold", "fold": k + 1, "folds": folds, "reused": True})
            continue

        def fold_progress(event: dict, k: int = k) -> None:
            if progress:
                progress({**event, "fold": k + 1, "folds": folds})

        ckpt = work / f"fold{k}-{tag}.pt"
        fit(data.subset(~held), None, recipe, ckpt, epochs=epochs, seed=seed + k, resume=True, device=device,
            progress=fold_progress, record_dynamics=False)  # a fold ranks with its held-out predictions only
        model = load_checkpoint(ckpt).model
        if device:
            model.to(device)
        fold_probs = predict_proba(model, data.images[held], tta=tta)
        fold_plain = fold_probs if tta == "none" else predict_proba(model, data.images[held], tta="none")
        _save_npz_atomic(done, probs=fold_probs, probs_no_tta=fold_plain)
        probs[held], plain[held] = fold_probs, fold_plain
        for f in (ckpt, ckpt.with_name(ckpt.name + ".state")):
            f.unlink(missing_ok=True)
        if progress:
            progress({"kind": "fold", "fold": k + 1, "folds": folds, "reused": False})
    return CrossFitProbabilities(probs, plain)


def cross_fit_probabilities(data: FaceArrays, *, folds: int = 4, recipe: Recipe | None = None,
                            epochs: int | None = None, seed: int = 0, work_dir: str | Path,
                            device: str | None = None, tta: str = "flip",
                            progress: Callable[[dict], None] | None = None) -> np.ndarray:
    """Out-of-sample probabilities (N, 7) with ``tta``; ``cross_fit`` also gives the ones without TTA."""
    return cross_fit(data, folds=folds, recipe=recipe, epochs=epochs, seed=seed, work_dir=work_dir, device=device,
                     tta=tta, progress=progress).probs


def short_run(data: FaceArrays, *, recipe: Recipe | None = None, epochs: int | None = None, seed: int = 0,
              work_dir: str | Path, device: str | None = None,
              progress: Callable[[dict], None] | None = None) -> TrainingDynamics:
    """One short model (the scoring recipe by default) on every face, for how it saw each label along the run
    (``ml.dynamics``): its probability snapshots, taken before it has memorised its labels as well as at the end,
    rank real label errors better than a converged model's (docs/benchmarks.md, "Real relabels"). Resumable: the
    run's state and dynamics stay under ``work_dir`` until the caller removes them. Progress events carry
    ``fold`` 1 of 1, like a cross-fitting fold's."""
    from ml.dynamics import dynamics_path
    from ml.train import fit

    recipe = recipe or scoring_recipe(device)
    epochs = epochs or recipe.epochs
    work = Path(work_dir)
    work.mkdir(parents=True, exist_ok=True)
    tag = _fingerprint(data, np.zeros(len(data), dtype=np.int64), recipe, epochs, seed)
    ckpt = work / f"short-{tag}.pt"

    def run_progress(event: dict) -> None:
        if progress:
            progress({**event, "fold": 1, "folds": 1})

    fit(data, None, recipe, ckpt, epochs=epochs, seed=seed, resume=True, device=device, progress=run_progress)
    if progress:
        progress({"kind": "fold", "fold": 1, "folds": 1, "reused": False})
    return TrainingDynamics.load(dynamics_path(ckpt))


def short_run_probabilities(dynamics: TrainingDynamics) -> np.ndarray:
    """What a short run ranks with: the mean of its probability snapshots (N, 7)."""
    return dynamics.snapshot_probabilities(SHORT_RUN_SNAPSHOTS)


def score_from_probabilities(labels: np.ndarray, probs: np.ndarray, rows: np.ndarray | None = None, *,
                             ranking: str = DEFAULT_RANKING, filter_by: str = "prune_by_noise_rate") -> LabelScores:
    """Confident learning on given labels and out-of-sample probabilities."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    if ranking not in RANKING_METHODS:
        raise ValueError(f"unknown ranking method {ranking!r}; available: {', '.join(RANKING_METHODS)}")
    if filter_by not in FILTER_METHODS:
        raise ValueError(f"unknown filter {filter_by!r}; available: {', '.join(FILTER_METHODS)}")
    labels = np.asarray(labels, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    probs = probs / probs.sum(1, keepdims=True)
    quality = get_label_quality_scores(labels, probs, method=ranking)
    # n_jobs=1: cleanlab would fork a multiprocessing pool here, and a fork from a process whose torch/OpenMP
    # threads are running (a Celery worker that just trained or predicted) can leave the children deadlocked.
    issues = find_label_issues(labels, probs, filter_by=filter_by, n_jobs=1)
    suggested = probs.argmax(1)
    return LabelScores(
        rows=np.arange(len(labels)) if rows is None else np.asarray(rows),
        given=labels, suggested=suggested, suggested_probability=probs[np.arange(len(labels)), suggested],
        quality=np.asarray(quality, dtype=np.float64), is_issue=np.asarray(issues, dtype=bool),
        probabilities=probs.astype(np.float32),
    )


def score_labels(data: FaceArrays, *, folds: int = 4, recipe: Recipe | None = None, epochs: int | None = None,
                 seed: int = 0, work_dir: str | Path, device: str | None = None, ranking: str = DEFAULT_RANKING,
                 filter_by: str = "prune_by_noise_rate", progress: Callable[[dict], None] | None = None) -> LabelScores:
    probs = cross_fit_probabilities(data, folds=folds, recipe=recipe, epochs=epochs, seed=seed, work_dir=work_dir,
                                    device=device, progress=progress)
    return score_from_probabilities(data.labels, probs, data.rows, ranking=ranking, filter_by=filter_by)


def pooled_features(model: FerModel, images: np.ndarray, *, batch_size: int = 256) -> np.ndarray:
    """Global-average-pooled ``forward_features`` (N, C) of uint8 faces: the embedding that fer_vgg's linear head
    reads (its head is pool, flatten, dropout, linear)."""
    import torch

    from ml.evaluate import to_input

    device = next(model.parameters()).device
    model.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            x = to_input(images[start:start + batch_size], model, device).contiguous(memory_format=torch.channels_last)
            out.append(torch.nn.functional.adaptive_avg_pool2d(model.forward_features(x), 1).flatten(1).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), dtype=np.float32)


def knn_label_quality(features: np.ndarray, labels: np.ndarray, *, k: int = 10) -> np.ndarray:
    """Share of a face's ``k`` nearest neighbours (cosine on L2-normalised features, the face itself left out) that
    carry its given label: like cleanlab's label quality, low means likely wrong."""
    from sklearn.neighbors import NearestNeighbors

    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray(labels)
    k = min(k, len(labels) - 1)
    if k < 1:
        raise ValueError("need at least two faces")
    unit = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    # On unit vectors Euclidean distance orders neighbours exactly as cosine does, and brute force is a matrix product.
    index = NearestNeighbors(n_neighbors=k + 1, metric="euclidean", algorithm="brute").fit(unit)
    neighbours = index.kneighbors(unit, return_distance=False)
    neighbours = np.array([row[row != i][:k] for i, row in enumerate(neighbours)])  # drop the face itself
    return (labels[neighbours] == labels[:, None]).mean(1)


def rank_average(*qualities: np.ndarray) -> np.ndarray:
    """Combine label-quality scores on different scales: the mean of their ranks in [0, 1] (low = likely wrong)."""
    from scipy.stats import rankdata

    if not qualities:
        raise ValueError("nothing to combine")
    n = len(qualities[0])
    return np.mean([(rankdata(q) - 1) / max(n - 1, 1) for q in qualities], axis=0)
