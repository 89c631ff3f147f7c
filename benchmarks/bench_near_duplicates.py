"""Recall and precision of the near-duplicate search (``ml/neardup.py``) on copies injected into FER-2013, and how
many PublicTest faces have a near-duplicate in Training.

    python benchmarks/bench_near_duplicates.py [--faces 3000] [--copies 150] [--seed 0] [--threads 2]
        [--checkpoint ml/weights/default.pt] [--csv PATH] [--sweep] [--full] [--work-dir /tmp/neardup-bench]

``--faces`` Training faces are drawn at random; ``--copies`` of them per transform get one injected copy each:
shifted 1-3 px (edges repeated), cropped to 90-95 % and rescaled back, rescaled down to 20-32 px and back up, and
brightness changed by +-20-40 grey levels (clipped). The search runs with the thresholds of ``ml.neardup.Thresholds``
(``--sweep`` prints a grid of others too, without the pixel judgement) on pHash bits and the shipped model's pooled
features.

Recall per transform: injected (source, copy) pairs found. Precision: found pairs that are injected pairs, of all
pairs found; and, judged by pixels, found pairs among the original faces whose best Pearson correlation over shifts of
up to 3 px is at least 0.9 (the same photo), counted as right too. ``--full`` also searches all of Training and
PublicTest and prints how many PublicTest faces have a near-duplicate in Training (``--full-hash-only``: by the
hash-alone rule only, a lower bound that needs no features). Features are cached in ``--work-dir`` (never in the
repository).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ml import neardup  # noqa: E402

DEFAULT_FER_CSV = ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz"
DEFAULT_CHECKPOINT = ROOT / "ml" / "weights" / "default.pt"
TRANSFORMS = ("shift", "crop", "rescale", "brightness")
SAME_PHOTO_CORRELATION = 0.9


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.fromarray(image, mode="L").resize(size, Image.Resampling.BILINEAR), dtype=np.uint8)


def transform(image: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    side = image.shape[0]
    if kind == "shift":
        dy, dx = (int(rng.integers(1, 4)) * int(rng.choice([-1, 1])) for _ in range(2))
        padded = np.pad(image, 3, mode="edge")
        return padded[3 + dy:3 + dy + side, 3 + dx:3 + dx + side].copy()
    if kind == "crop":
        keep = int(round(side * rng.uniform(0.90, 0.95)))
        top, left = (int(rng.integers(0, side - keep + 1)) for _ in range(2))
        return _resize(image[top:top + keep, left:left + keep], (side, side))
    if kind == "rescale":
        small = int(rng.integers(20, 33))
        return _resize(_resize(image, (small, small)), (side, side))
    if kind == "brightness":
        delta = int(rng.integers(20, 41)) * int(rng.choice([-1, 1]))
        return np.clip(image.astype(np.int16) + delta, 0, 255).astype(np.uint8)
    raise ValueError(kind)


def best_shift_correlation(a: np.ndarray, b: np.ndarray, max_shift: int = 3) -> float:
    """Highest Pearson correlation of the overlap of ``a`` and ``b`` shifted by up to ``max_shift`` px."""
    best = -1.0
    a, b = a.astype(np.float64), b.astype(np.float64)
    n = a.shape[0]
    for dy in range(-max_shift, max_shift + 1):
        for dx in range(-max_shift, max_shift + 1):
            pa = a[max(dy, 0):n + min(dy, 0), max(dx, 0):n + min(dx, 0)].ravel()
            pb = b[max(-dy, 0):n + min(-dy, 0), max(-dx, 0):n + min(-dx, 0)].ravel()
            if pa.std() > 0 and pb.std() > 0:
                best = max(best, float(np.corrcoef(pa, pb)[0, 1]))
    return best


def features_of(images: np.ndarray, checkpoint: Path, cache: Path) -> np.ndarray:
    if cache.exists():
        return np.load(cache)["features"]
    from ml.checkpoint import load_checkpoint
    from ml.scoring import pooled_features

    model = load_checkpoint(checkpoint, "cpu").model
    started = time.perf_counter()
    features = pooled_features(model, images)
    print(f"  features of {len(images)} faces: {time.perf_counter() - started:.1f} s")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, features=features)
    return features


def evaluate(pairs: list[neardup.Pair], family: np.ndarray, kinds: np.ndarray, n_original: int,
             images: np.ndarray, *, judge: bool = True) -> dict:
    """family[i]: the original a row comes from (itself for originals); kinds[i]: its transform ('' for originals)."""
    found_injected = {kind: 0 for kind in TRANSFORMS}
    injected_pairs = original_pairs = other = same_photo = 0
    for pair in pairs:
        a_copy, b_copy = pair.a >= n_original, pair.b >= n_original
        if family[pair.a] == family[pair.b]:
            injected_pairs += 1
            copy = pair.b if b_copy else pair.a
            found_injected[kinds[copy]] += 1
        elif not a_copy and not b_copy:
            original_pairs += 1
            if judge and best_shift_correlation(images[pair.a], images[pair.b]) >= SAME_PHOTO_CORRELATION:
                same_photo += 1
        else:  # a copy and another original: right if that original is the same photo as the copy's source
            other += 1
            same = judge and best_shift_correlation(images[family[pair.a]], images[family[pair.b]])
            if same and same >= SAME_PHOTO_CORRELATION:
                same_photo += 1
    total = len(pairs)
    return {"found": found_injected, "pairs": total, "injected_pairs": injected_pairs,
            "original_pairs": original_pairs, "copy_to_other": other, "same_photo": same_photo,
            "precision": injected_pairs / total if total else float("nan"),
            "judged_precision": (injected_pairs + same_photo) / total if total else float("nan")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_FER_CSV)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--faces", type=int, default=3000)
    parser.add_argument("--copies", type=int, default=150, help="sources per transform")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sweep", action="store_true", help="also print recall and precision over a threshold grid")
    parser.add_argument("--full", action="store_true", help="search all of Training + PublicTest as well (features "
                        "of ~32,000 faces: about 15 min of 2 CPU cores)")
    parser.add_argument("--full-hash-only", action="store_true",
                        help="the same, by the hash-alone rule only (no features: a lower bound, in a minute or two)")
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/neardup-bench"))
    args = parser.parse_args(argv)
    if not args.csv.exists():
        print(f"FER-2013 is missing: {args.csv} does not exist (see ../shared/data/fer2013/README*). Nothing run.")
        return 2
    import torch

    from ml.data import load_fer_csv

    torch.set_num_threads(args.threads)
    data = load_fer_csv(args.csv, usages=["Training", "PublicTest"])
    rng = np.random.default_rng(args.seed)
    training = np.flatnonzero(data.usages == "Training")
    chosen = np.sort(rng.choice(training, size=min(args.faces, len(training)), replace=False))
    originals = data.images[chosen]
    n = len(originals)
    sources = rng.choice(n, size=(len(TRANSFORMS), min(args.copies, n // len(TRANSFORMS))), replace=False)
    copies, family, kinds = [], list(range(n)), [""] * n
    for kind, rows in zip(TRANSFORMS, sources, strict=True):
        for row in rows:
            copies.append(transform(originals[row], kind, rng))
            family.append(int(row))
            kinds.append(kind)
    images = np.concatenate([originals, np.stack(copies)])
    family_arr, kinds_arr = np.array(family), np.array(kinds)
    print(f"{n} FER-2013 Training faces (seed {args.seed}) + {len(copies)} injected copies "
          f"({sources.shape[1]} per transform: {', '.join(TRANSFORMS)}); checkpoint {args.checkpoint.name}")

    started = time.perf_counter()
    bits = neardup.perceptual_hashes(images)
    print(f"  pHash of {len(images)} faces: {time.perf_counter() - started:.1f} s")
    cache = args.work_dir / f"injected-{args.seed}-{args.faces}-{args.copies}.npz"
    features = features_of(images, args.checkpoint, cache)

    grid = [neardup.Thresholds()]
    if args.sweep:
        grid += [neardup.Thresholds(hash_alone=h, cosine=c, hash_with_cosine=hw)
                 for h in (4, 6, 8) for c in (0.97, 0.98, 0.985, 0.99) for hw in (12, 16, 20)]
    for i, thresholds in enumerate(grid):
        started = time.perf_counter()
        pairs = neardup.near_duplicate_pairs(bits, features, thresholds)
        took = time.perf_counter() - started
        result = evaluate(pairs, family_arr, kinds_arr, n, images, judge=i == 0)
        recall = "  ".join(f"{kind} {result['found'][kind] / sources.shape[1]:.3f}" for kind in TRANSFORMS)
        overall = sum(result["found"].values()) / sources.size
        label = "default" if i == 0 else "sweep"
        print(f"{label} hash_alone={thresholds.hash_alone} cosine={thresholds.cosine} "
              f"hash_with_cosine={thresholds.hash_with_cosine}: recall {overall:.3f} ({recall}); "
              f"{result['pairs']} pairs found: {result['injected_pairs']} injected, {result['original_pairs']} among "
              f"originals, {result['copy_to_other']} copy-to-other; precision {result['precision']:.3f}"
              + (f", judged by pixels {result['judged_precision']:.3f} ({result['same_photo']} non-injected pairs "
                 "look like the same photo)" if i == 0 else "") + f"; search {took:.1f} s")

    if args.full or args.full_hash_only:
        full_counts(data, args, hash_only=not args.full)
    return 0


def full_counts(data, args, *, hash_only: bool) -> None:
    started = time.perf_counter()
    bits = neardup.perceptual_hashes(data.images)
    if hash_only:  # pairs within hash_alone; no features, so the cosine rule adds none
        limit = neardup.Thresholds().hash_alone
        a, b = neardup.hash_candidates(bits, max_distance=limit)
        distance = (bits[a] != bits[b]).sum(axis=1)
        pairs = [neardup.Pair(int(i), int(j), int(d), float("nan"))
                 for i, j, d in zip(a, b, distance, strict=True) if d <= limit]
    else:
        features = features_of(data.images, args.checkpoint, args.work_dir / "full-training-publictest.npz")
        pairs = neardup.near_duplicate_pairs(bits, features)
    training = data.usages == "Training"
    public = data.usages == "PublicTest"
    with_training = set()
    conflicting = 0
    for pair in pairs:
        if training[pair.a] and public[pair.b]:
            with_training.add(pair.b)
        elif public[pair.a] and training[pair.b]:
            with_training.add(pair.a)
        conflicting += int(data.labels[pair.a] != data.labels[pair.b])
    groups = neardup.groups_from_pairs(len(data.images), pairs)
    cross = [p for p in pairs if training[p.a] != training[p.b]]
    sample = [cross[i] for i in np.random.default_rng(0).permutation(len(cross))[:300]]
    same = sum(best_shift_correlation(data.images[p.a], data.images[p.b]) >= SAME_PHOTO_CORRELATION for p in sample)
    print(f"  of {len(sample)} Training-PublicTest pairs drawn at random, {same} look like the same photo by pixels")
    rule = " (hash-alone rule only)" if hash_only else ""
    print(f"full file{rule}: {int(training.sum())} Training + {int(public.sum())} PublicTest faces: "
          f"{len(pairs)} pairs in "
          f"{len(groups)} groups ({conflicting} pairs with different labels); {len(with_training)} PublicTest faces "
          f"({len(with_training) / public.sum():.2%}) have a near-duplicate in Training; "
          f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    raise SystemExit(main())
