"""The data map on real faces: time to get the pooled features of a split with the shipped checkpoint, time of a UMAP
and of a t-SNE layout, and whether the map means something: how many of each face's 10 nearest neighbours share its
label in the map against in the pooled feature space (and against a shuffled-label baseline), and scikit-learn's
trustworthiness of each layout (1: the map's neighbourhoods are true neighbourhoods in feature space).

    python benchmarks/bench_datamap.py [--csv ../shared/data/fer2013/fer2013.csv.gz] [--usage PublicTest]
                                       [--limit N] [--checkpoint ml/weights/default.pt] [--methods umap tsne]

Calls what the data map job calls (``ml.scoring.pooled_features``, ``ml.embedding.embed_2d``) on the CSV's faces;
the platform reads the same pixels from its PNGs. Writes nothing. Says so plainly when the data is missing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.checkpoint import load_checkpoint  # noqa: E402
from ml.embedding import embed_2d, knn_label_agreement, unit_rows  # noqa: E402
from ml.evaluate import pick_device  # noqa: E402
from ml.scoring import pooled_features  # noqa: E402

DEFAULT_CSV = Path(os.environ.get("FER2013_CSV") or ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz")
K = 10


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--usage", default="PublicTest")
    parser.add_argument("--limit", type=int, default=0, help="first N faces of the split only (0: all)")
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "ml" / "weights" / "default.pt")
    parser.add_argument("--methods", nargs="+", default=["umap", "tsne"], choices=["umap", "tsne"])
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    if not args.csv.exists():
        print(f"FER-2013 is missing: {args.csv} does not exist; nothing measured. "
              "Put the Kaggle CSV (emotion,pixels,Usage) there or pass --csv.")
        return 1

    from sklearn.manifold import trustworthiness

    from ml.data import load_fer_csv

    start = time.perf_counter()
    data = load_fer_csv(args.csv, usages=[args.usage])
    images, labels = data.images, data.labels
    if args.limit:
        images, labels = images[:args.limit], labels[:args.limit]
    print(f"data: {len(labels)} {args.usage} faces from {args.csv} ({time.perf_counter() - start:.1f} s to read)")

    device = pick_device(args.device)
    model = load_checkpoint(args.checkpoint, device).model
    pooled_features(model, images[:64])  # warm-up
    start = time.perf_counter()
    features = pooled_features(model, images)
    seconds = time.perf_counter() - start
    print(f"features: {features.shape[1]}-d pooled, {seconds:.1f} s ({len(labels) / seconds:.0f} faces/s, {device})")

    shuffled = np.random.default_rng(0).permutation(labels)
    unit = unit_rows(features)
    print(f"{K}-NN label agreement, feature space: {knn_label_agreement(unit, labels, k=K):.3f} "
          f"(shuffled labels: {knn_label_agreement(unit, shuffled, k=K):.3f}; "
          f"largest class share: {np.bincount(labels).max() / len(labels):.3f})")
    if "umap" in args.methods:
        start = time.perf_counter()
        import umap  # noqa: F401  - numba's start-up, counted apart from the layout

        print(f"umap import (numba): {time.perf_counter() - start:.1f} s")
    for method in args.methods:
        start = time.perf_counter()
        points = embed_2d(features, method=method, seed=0)
        seconds = time.perf_counter() - start
        trust = trustworthiness(unit, points, n_neighbors=K)
        print(f"{method}: {seconds:.1f} s; {K}-NN label agreement in 2-D {knn_label_agreement(points, labels, k=K):.3f}"
              f" (shuffled: {knn_label_agreement(points, shuffled, k=K):.3f}); trustworthiness@{K} {trust:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
