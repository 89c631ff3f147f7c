"""Detection quality on injected label noise: flip a share of FER-2013 Training labels, run ``ml score-labels``,
and measure how well the flagged set and the ranking find the flipped rows.

    python benchmarks/bench_label_noise.py [--csv PATH] [--noise 0.1] [--folds 4] [--epochs N] [--limit N]

The full run (all 28,709 Training rows, 4 folds, the scoring recipe's epochs) takes long on a 2-core CPU; use
``--limit 2000 --epochs 1`` to check the script. FER-2013's own wrong labels are flagged too and count as false
positives here, so precision cannot reach 1. Prints one JSON object (and writes it to ``--out-dir``).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz"


def write_noisy_csv(source: Path, target: Path, *, noise: float, limit: int | None, seed: int) -> tuple[int, set[int]]:
    """Copy the Training rows (the first ``limit`` of them) with ``noise`` of their labels flipped to another class.
    Returns the number of rows written and the 0-based data rows (in the new file) that were flipped."""
    sys.path.insert(0, str(ROOT))
    from ml.data import iter_fer_csv

    rows = []
    for _, _, record in iter_fer_csv(source):
        if record["Usage"] != "Training":
            continue
        rows.append((int(record["emotion"]), record["pixels"]))
        if limit and len(rows) >= limit:
            break
    rng = np.random.default_rng(seed)
    flipped = set(rng.choice(len(rows), size=int(round(noise * len(rows))), replace=False).tolist())
    with open(target, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["emotion", "pixels", "Usage"])
        for i, (label, pixels) in enumerate(rows):
            if i in flipped:
                label = int((label + rng.integers(1, 7)) % 7)  # any other class, uniformly
            writer.writerow([label, pixels, "Training"])
    return len(rows), flipped


def evaluate(scores_csv: Path, flipped: set[int]) -> dict:
    with open(scores_csv, newline="") as fh:
        rows = list(csv.DictReader(fh))  # sorted by ascending quality (most likely wrong first)
    ranked = [int(r["row"]) for r in rows]
    flagged = {int(r["row"]) for r in rows if r["is_issue"] == "1"}
    hits = flagged & flipped
    result = {
        "scored": len(rows), "flipped": len(flipped), "flagged": len(flagged), "flagged_and_flipped": len(hits),
        "precision": round(len(hits) / len(flagged), 4) if flagged else None,
        "recall": round(len(hits) / len(flipped), 4) if flipped else None,
    }
    for k in (500, 1000):
        top = ranked[:k]
        result[f"precision_at_{k}"] = round(sum(r in flipped for r in top) / len(top), 4) if len(top) >= k else None
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--epochs", type=int, help="epochs per fold (default: the scoring recipe's)")
    parser.add_argument("--limit", type=int, help="use only the first N Training rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ranking", default="self_confidence")
    parser.add_argument("--filter-by", default="prune_by_noise_rate")
    parser.add_argument("--out-dir", type=Path, help="keep the noisy CSV, scores and result here (default: temp)")
    args = parser.parse_args()
    if not args.csv.is_file():
        print(f"FER-2013 file not found at {args.csv}", file=sys.stderr)
        return 2
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="ferplatform-noise-"))
    out_dir.mkdir(parents=True, exist_ok=True)
    noisy = out_dir / "noisy.csv"
    n, flipped = write_noisy_csv(args.csv, noisy, noise=args.noise, limit=args.limit, seed=args.seed)
    scores = out_dir / "scores.csv"
    command = [sys.executable, "-m", "ml", "score-labels", "--csv", str(noisy), "--usage", "Training",
               "--folds", str(args.folds), "--ranking", args.ranking, "--filter-by", args.filter_by,
               "--seed", str(args.seed), "--out", str(scores), "--work-dir", str(out_dir / "work")]
    if args.epochs:
        command += ["--epochs", str(args.epochs)]
    print("running:", " ".join(command), file=sys.stderr, flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    elapsed = time.perf_counter() - started
    result = {"rows": n, "noise": args.noise, "folds": args.folds, "epochs": args.epochs or "recipe",
              "ranking": args.ranking, "filter_by": args.filter_by, "score_labels_seconds": round(elapsed, 1),
              **evaluate(scores, flipped)}
    (out_dir / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
