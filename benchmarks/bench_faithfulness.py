"""Faithfulness of CAM maps per method and layer against a random-map baseline, on real PublicTest faces.

    python benchmarks/bench_faithfulness.py [--csv ../shared/data/fer2013/fer2013.csv.gz] [--n 60] [--seed 0]
        [--checkpoint ml/weights/default.pt] [--maps gradcam/last hirescam/last layercam/last hirescam/fine ...]

For N faces drawn (seeded) from PublicTest, explains the predicted class with each method on each layer (``last``:
the 6x6 stage; ``fine``: the 12x12 stage) and scores every map with ROAD combined (pytorch-grad-cam, percentiles
20/40/60/80, softmax), exactly as ``apps.gallery.services.faithfulness_compute`` does; seeded uniform random maps are
scored the same way on the same faces under the same imputation noise. Prints, per method/layer: mean and sd of ROAD,
the random maps' mean, the share of faces whose map beats the random one, and the seconds taken. ROAD costs about half
a second per face and map on a small CPU, so the default N is small: say N with every figure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.cam_stats import ROAD_PERCENTILES, compare_to_baseline, road_scores  # noqa: E402
from ml.checkpoint import load_checkpoint  # noqa: E402
from ml.data import load_fer_csv  # noqa: E402
from ml.evaluate import pick_device, predict_proba  # noqa: E402
from ml.explain import explain, layer_check, random_maps  # noqa: E402
from ml.labels import CLASSES  # noqa: E402
from ml.models import cam_layers  # noqa: E402

DEFAULT_CSV = Path(os.environ.get("FER2013_CSV") or ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz")
DEFAULT_MAPS = ["gradcam/last", "hirescam/last", "layercam/last", "hirescam/fine", "layercam/fine"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--checkpoint", default=str(ROOT / "ml" / "weights" / "default.pt"))
    parser.add_argument("--n", type=int, default=60, help="PublicTest faces (default 60)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--maps", nargs="+", default=DEFAULT_MAPS, help="method/layer pairs")
    parser.add_argument("--device", default=None)
    parser.add_argument("--per-class", action="store_true", help="also print the share beating random per class")
    args = parser.parse_args()

    if not args.csv.is_file():
        sys.exit(f"FER-2013 not found at {args.csv}: pass --csv (the Kaggle fer2013.csv, optionally gzipped)")
    pairs = [tuple(m.split("/", 1)) if "/" in m else (m, "last") for m in args.maps]
    for method, layer in pairs:
        try:
            layer_check(method, layer)
        except ValueError as exc:
            sys.exit(str(exc))

    device = pick_device(args.device)
    model = load_checkpoint(args.checkpoint, device).model.eval()
    data = load_fer_csv(args.csv, usages=["PublicTest"])
    n = min(args.n, len(data.images))
    pick = np.sort(np.random.default_rng(args.seed).choice(len(data.images), size=n, replace=False))
    faces = data.images[pick]
    targets = predict_proba(model, faces).argmax(1).tolist()
    layers = cam_layers(model)
    print(f"checkpoint {args.checkpoint} ({getattr(model, 'arch', type(model).__name__)}); layers: "
          + ", ".join(f"{k}={v.path} {v.size}x{v.size}" for k, v in layers.items()))
    print(f"faces: {n} PublicTest (seed {args.seed}); targets: predicted class; ROAD combined, percentiles "
          f"{list(ROAD_PERCENTILES)}; device {device}; torch threads {torch.get_num_threads()}")

    start = time.perf_counter()
    baseline = road_scores(model, faces, random_maps(n, seed=args.seed), targets, seed=args.seed)
    print(f"{'random maps':<16} ROAD {baseline.mean():+.4f} sd {baseline.std():.4f}  "
          f"({time.perf_counter() - start:.0f}s)")
    for method, layer in pairs:
        start = time.perf_counter()
        maps = explain(model, faces, method=method, targets=targets, layer=layer, overlay_size=48).maps
        scores = road_scores(model, faces, maps, targets, seed=args.seed)
        s = compare_to_baseline(scores, baseline, targets)
        print(f"{method + '/' + layer:<16} ROAD {s.mean:+.4f} sd {s.std:.4f}  random {s.baseline_mean:+.4f}  "
              f"beats random {s.beats:.0%} of {n}  ({time.perf_counter() - start:.0f}s)")
        if args.per_class:
            print("    per predicted class: " + ", ".join(
                f"{CLASSES[c]} {w}/{t}" for c, (w, t) in sorted(s.beats_per_class.items())))


if __name__ == "__main__":
    main()
