"""How well the outlier score finds non-faces: inject blanks, gaussian noise, rendered text and crops of non-face
textures (checkerboards, gradients, crops of the shared photos' backgrounds) into FER-2013 Training faces, score all
of them with the shipped model's penultimate features (``ml.outliers``), and print precision at k of the ranking
against the injected images, per injected type and overall, for the image statistics alone, the out-of-distribution
score alone and the two combined. Writes a PNG grid of the top 100 real (not injected) suspects to ``--out-dir``
(FER-2013 pixels: never into the repository).

    python benchmarks/bench_outliers.py [--limit 3000] [--per-type 30] [--seed 0] [--out-dir /tmp/bench_outliers]

FER-2013's own non-faces are real suspects and count as false positives here, so precision can fall short of 1 even
for a perfect detector. Per type, the ranking holds the real faces and that type's injected images only, so p@50 and
p@100 cannot exceed per-type / k.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz"
DEFAULT_PHOTOS = ROOT.parent / "shared" / "data" / "photos"
DEFAULT_CHECKPOINT = ROOT / "ml" / "weights" / "default.pt"
TYPES = ("blank", "noise", "text", "checkerboard", "gradient", "photo_crop")
WORDS = ("FER", "2013", "happy", "sad", "LOADING", "no image", "ERROR", "Getty", "www", "photo", "copyright", "abc")


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def load_training(path: Path, limit: int, seed: int) -> np.ndarray:
    """``limit`` Training faces drawn at random (seeded) from the file, uint8 (N, 48, 48)."""
    rows = []
    with gzip.open(path, "rt", newline="") as fh:
        reader = csv.reader(fh)
        next(reader)
        for _, pixels, usage in reader:
            if usage == "Training":
                rows.append(pixels)
    pick = np.sort(np.random.default_rng(seed).choice(len(rows), size=min(limit, len(rows)), replace=False))
    return np.stack([np.array(rows[i].split(), dtype=np.uint8).reshape(48, 48) for i in pick])


def make_blank(rng) -> np.ndarray:
    level = rng.integers(0, 256)
    noise = rng.normal(0, rng.choice([0.0, 1.0, 2.0]), (48, 48))  # some blank frames carry a little sensor noise
    return np.clip(level + noise, 0, 255).astype(np.uint8)


def make_noise(rng) -> np.ndarray:
    return np.clip(rng.normal(rng.uniform(80, 170), rng.uniform(20, 70), (48, 48)), 0, 255).astype(np.uint8)


def make_text(rng) -> np.ndarray:
    from PIL import Image, ImageDraw

    background = int(rng.integers(0, 256))
    ink = int((background + rng.integers(90, 166)) % 256)
    image = Image.new("L", (48, 48), color=background)
    text = "\n".join(rng.choice(WORDS, size=rng.integers(1, 4)))
    ImageDraw.Draw(image).multiline_text((int(rng.integers(0, 8)), int(rng.integers(0, 16))), text, fill=ink)
    return np.asarray(image, dtype=np.uint8)


def make_checkerboard(rng) -> np.ndarray:
    period = int(rng.integers(2, 13))
    yy, xx = np.mgrid[0:48, 0:48]
    lo, hi = sorted(rng.integers(0, 256, size=2))
    return np.where(((yy // period) + (xx // period)) % 2 == 0, lo, hi).astype(np.uint8)


def make_gradient(rng) -> np.ndarray:
    yy, xx = np.mgrid[0:48, 0:48] / 47.0
    angle = rng.uniform(0, 2 * np.pi)
    ramp = np.cos(angle) * xx + np.sin(angle) * yy
    ramp = (ramp - ramp.min()) / max(ramp.max() - ramp.min(), 1e-9)
    lo, hi = sorted(rng.uniform(0, 255, size=2))
    return (lo + (hi - lo) * ramp).astype(np.uint8)


def photo_crops(photos: Path, count: int, rng) -> list[np.ndarray]:
    """Grey 48x48 crops from the edges of the shared photos (backgrounds: walls, clothes, furniture), at a random
    scale. Empty when the folder is missing."""
    from PIL import Image

    sources = []
    for path in sorted(photos.glob("*")) if photos.is_dir() else []:
        if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
            sources.append(np.asarray(Image.open(path).convert("L"), dtype=np.uint8))
    out = []
    while sources and len(out) < count:
        img = sources[int(rng.integers(len(sources)))]
        size = int(rng.integers(48, max(49, min(img.shape) // 4)))
        h, w = img.shape
        # a band along the left, right or top edge, where the photos hold background rather than faces
        edge = rng.integers(3)
        if edge == 0:
            y, x = rng.integers(0, h - size + 1), rng.integers(0, max(1, w // 8 - size) + 1)
        elif edge == 1:
            y, x = rng.integers(0, h - size + 1), w - size - rng.integers(0, max(1, w // 8 - size) + 1)
        else:
            y, x = rng.integers(0, max(1, h // 8 - size) + 1), rng.integers(0, w - size + 1)
        crop = Image.fromarray(img[y:y + size, x:x + size]).resize((48, 48), Image.BILINEAR)
        out.append(np.asarray(crop, dtype=np.uint8))
    return out


def injected(per_type: int, photos: Path, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    makers = {"blank": make_blank, "noise": make_noise, "text": make_text, "checkerboard": make_checkerboard,
              "gradient": make_gradient}
    images, kinds = [], []
    for kind in TYPES:
        made = photo_crops(photos, per_type, rng) if kind == "photo_crop" else [makers[kind](rng)
                                                                                 for _ in range(per_type)]
        if not made:
            log(f"no photos under {photos}: no {kind} images injected")
        images += made
        kinds += [kind] * len(made)
    return np.stack(images), np.array(kinds)


def precision_at(score: np.ndarray, positive: np.ndarray, ks: tuple[int, ...]) -> dict[str, float]:
    order = np.lexsort((np.arange(len(score)), -score))
    hits = positive[order]
    return {f"p@{k}": round(float(hits[:k].mean()), 3) for k in ks}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--photos", type=Path, default=DEFAULT_PHOTOS)
    parser.add_argument("--checkpoint", type=Path, default=DEFAULT_CHECKPOINT)
    parser.add_argument("--limit", type=int, default=3000, help="Real Training faces, drawn at random (default 3000).")
    parser.add_argument("--per-type", type=int, default=30, help="Injected images per type (default 30).")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, default=Path("/tmp/bench_outliers"))
    args = parser.parse_args()
    if not args.csv.exists():
        print(f"FER-2013 is missing: {args.csv} does not exist. Put Kaggle's fer2013.csv(.gz) there or pass --csv.")
        sys.exit(2)

    import torch

    from ml.checkpoint import load_checkpoint
    from ml.outliers import OOD_DISTANCE, _ramp, outlier_scores
    from ml.scoring import pooled_features

    torch.set_num_threads(max(1, torch.get_num_threads()))
    started = time.monotonic()
    real = load_training(args.csv, args.limit, args.seed)
    fake, kinds = injected(args.per_type, args.photos, args.seed)
    images = np.concatenate([real, fake])
    is_fake = np.r_[np.zeros(len(real), bool), np.ones(len(fake), bool)]
    kind_of = np.r_[np.array([""] * len(real)), kinds]
    log(f"{len(real)} real Training faces, {len(fake)} injected ({', '.join(TYPES)}); features with "
        f"{args.checkpoint.name}")
    model = load_checkpoint(args.checkpoint).model
    t = time.monotonic()
    features = pooled_features(model, images)
    feature_s = time.monotonic() - t
    t = time.monotonic()
    scores = outlier_scores(images, features)
    score_s = time.monotonic() - t
    rankings = {"image statistics": scores.stats_score, "OOD (features)": _ramp(scores.distance, *OOD_DISTANCE),
                "combined": scores.score}

    result = {"real": len(real), "injected": int(is_fake.sum()), "per_type": args.per_type, "seed": args.seed,
              "features_s": round(feature_s, 1), "scoring_s": round(score_s, 1), "rankings": {}}
    for name, score in rankings.items():
        row = {"all": precision_at(score, is_fake, (int(is_fake.sum()), 50, 100))}
        row["all"] = {"p@n_injected" if k == f"p@{int(is_fake.sum())}" else k: v for k, v in row["all"].items()}
        for kind in TYPES:
            keep = ~is_fake | (kind_of == kind)
            n = int((kind_of == kind).sum())
            if n:
                p = precision_at(score[keep], is_fake[keep], (n, 50, 100))
                row[kind] = {"p@n_injected" if k == f"p@{n}" else k: v for k, v in p.items()}
        row["real_above_0.5"] = int((score[~is_fake] >= 0.5).sum())
        result["rankings"][name] = row

    real_idx = np.flatnonzero(~is_fake)
    top_real = real_idx[np.lexsort((real_idx, -scores.score[real_idx]))][:100]
    reasons: dict[str, int] = {}
    for i in top_real:
        main_signal = (scores.fired(int(i)) or ["none fired"])[0]
        reasons[main_signal] = reasons.get(main_signal, 0) + 1
    result["top100_real_main_signal"] = reasons
    result["top100_real_min_score"] = round(float(scores.score[top_real[-1]]), 3)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    grid = np.zeros((10 * 50, 10 * 50), dtype=np.uint8) + 255
    for n, i in enumerate(top_real):
        r, c = divmod(n, 10)
        grid[r * 50 + 1:r * 50 + 49, c * 50 + 1:c * 50 + 49] = images[i]
    from PIL import Image

    png = args.out_dir / "top100_real_suspects.png"
    Image.fromarray(grid).resize((1000, 1000), Image.NEAREST).save(png)
    (args.out_dir / "top100_real_suspects.json").write_text(json.dumps(
        [{"rank": n + 1, "score": round(float(scores.score[i]), 4), "reason": scores.reason(int(i))}
         for n, i in enumerate(top_real)], indent=1))
    result["grid_png"] = str(png)
    result["total_s"] = round(time.monotonic() - started, 1)
    print(json.dumps(result, indent=1))

    print("\n| ranking | type | p@n_injected | p@50 | p@100 |\n|---|---|---|---|---|")
    for name, row in result["rankings"].items():
        for kind in ("all", *TYPES):
            if kind in row:
                p = row[kind]
                print(f"| {name} | {kind} | {p['p@n_injected']} | {p['p@50']} | {p['p@100']} |")


if __name__ == "__main__":
    main()
