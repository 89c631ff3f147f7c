"""PublicTest accuracy against training time: a recipe (``default`` unless ``--recipe``) at a few epoch budgets,
and ``seed-keras`` with ``fer_cnn`` for the epochs this machine affords, next to the first seed paper's published
70.13%.

    python benchmarks/bench_accuracy_budget.py --budgets 5 10 20 [--recipe fast-2h] [--arch fer_vgg]
    python benchmarks/bench_accuracy_budget.py --budgets --seed-keras-epochs 10      # seed-keras only
    python benchmarks/bench_accuracy_budget.py --from-checkpoint ml/weights/default.pt   # curve of a finished run
    python benchmarks/bench_accuracy_budget.py --evaluate runs/*/model.pt                # candidates, over seeds

Each budget is a separate one-cycle run (the schedule is stretched to the budget), so the figures are what a user
who can spend that much time gets, not intermediate epochs of one long run. ``--from-checkpoint`` prints the
per-epoch PublicTest accuracy and cumulative training time recorded in a checkpoint's history instead.
``--evaluate`` reads finished runs' checkpoints (``ml train --out``) and prints, per run and then per candidate (the
same recipe, overrides, architecture and epochs; the mean and sample standard deviation over its seeds), PublicTest
accuracy and macro-F1 without TTA, with flip TTA and with ten-crop TTA, minutes of training and the training
images/s at 48 px (the machine's speed, to set a time beside other machines). Minutes come from the run's
``.state`` file (every epoch) when it is there, else from the checkpoint (epochs up to the best one).
Needs the shared FER-2013 file; says so and exits when it is absent.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.checkpoint import load_checkpoint, read_checkpoint  # noqa: E402
from ml.data import load_fer_csv  # noqa: E402
from ml.evaluate import evaluate  # noqa: E402
from ml.recipes import RECIPES, get_recipe  # noqa: E402
from ml.train import fit  # noqa: E402

SHARED = Path(os.environ.get("FER2013_CSV") or ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz")
PUBLISHED_KERAS = 0.7013


def run(recipe, train, val, epochs: int, label: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        fit(train, val, recipe, Path(tmp) / "m.pt", epochs=epochs, seed=0)
        minutes = (time.perf_counter() - start) / 60
        model = load_checkpoint(Path(tmp) / "m.pt").model
    plain = evaluate(model, val.images, val.labels, tta="none")
    flip = evaluate(model, val.images, val.labels, tta="flip")
    print(f"{label:34s} {epochs:3d} epochs {minutes:6.1f} min  PublicTest acc {plain['accuracy']:.4f} "
          f"(flip TTA {flip['accuracy']:.4f})  macro-F1 {plain['macro_f1']:.4f} (flip {flip['macro_f1']:.4f})",
          flush=True)


def curve(path: Path) -> None:
    data = read_checkpoint(path)
    recipe = data["recipe"]
    print(f"# {path}: arch {data['arch']}, recipe {recipe.get('recipe', {}).get('name')}, "
          f"{recipe.get('epochs')} epochs planned; PublicTest (no TTA) after each epoch")
    total = 0.0
    for h in data["history"]:
        total += h["seconds"]
        if "val_accuracy" not in h:  # recipes may validate only every few epochs
            print(f"epoch {h['epoch']:3d}  {total / 60:6.1f} min  (not validated; trained at {h.get('size', 48)} px)")
            continue
        print(f"epoch {h['epoch']:3d}  {total / 60:6.1f} min  acc {h['val_accuracy']:.4f}  "
              f"macro-F1 {h['val_macro_f1']:.4f}  (trained at {h.get('size', 48)} px)")


def candidate_label(data: dict) -> str:
    run = data["recipe"]
    recipe = run.get("recipe", {})
    sets = " ".join(f"--set {item}" for item in run.get("set", []) if not item.startswith("epochs="))
    return f"{recipe.get('name')} v{recipe.get('version')} {data['arch']} {run.get('epochs')} ep {sets}".strip()


def run_minutes(path: Path, data: dict) -> tuple[float, int, float | None]:
    """Minutes of training, epochs they cover, and the mean training images/s of the 48-px epochs."""
    history = data["history"]
    state = path.with_name(path.name + ".state")
    if state.is_file():
        history = read_checkpoint(state)["history"]
    full = [h["images_per_s"] for h in history if h.get("size", 48) == 48 and "images_per_s" in h]
    return sum(h["seconds"] for h in history) / 60, len(history), (sum(full) / len(full) if full else None)


def evaluate_runs(paths: list[Path], csv: Path) -> None:
    data = load_fer_csv(csv, usages=["PublicTest"])
    groups: dict[str, list[dict]] = defaultdict(list)
    tta = ("none", "flip", "tencrop")
    print(f"# PublicTest, {len(data)} faces; accuracy (macro-F1) per TTA")
    for path in paths:
        ckpt = read_checkpoint(path)
        model = load_checkpoint(path).model
        minutes, epochs_timed, speed = run_minutes(path, ckpt)
        row = {t: evaluate(model, data.images, data.labels, tta=t) for t in tta}
        row.update(minutes=minutes, speed=speed)
        label = candidate_label(ckpt)
        groups[label].append(row)
        speed_part = f"{speed:.0f} img/s at 48 px" if speed else "no 48-px epoch timed"
        print(f"{path}: {label}, seed {ckpt['recipe'].get('seed')}, best epoch {ckpt['epoch']}: "
              + "  ".join(f"{t} {row[t]['accuracy']:.4f} ({row[t]['macro_f1']:.4f})" for t in tta)
              + f"  {minutes:.1f} min over {epochs_timed} epochs, {speed_part}", flush=True)
    print("# candidates: mean ± sd over seeds")
    for label, rows in groups.items():
        def spread(values: list[float], fmt: str = ".4f") -> str:
            sd = statistics.stdev(values) if len(values) > 1 else float("nan")
            return f"{statistics.mean(values):{fmt}} ± {sd:{fmt}}"
        print(f"{label} ({len(rows)} seeds): " + "  ".join(
            f"{t} {spread([r[t]['accuracy'] for r in rows])}" for t in tta)
            + f"  minutes {spread([r['minutes'] for r in rows], '.1f')}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budgets", nargs="*", type=int, default=[5, 10, 20])
    parser.add_argument("--recipe", default="default", choices=sorted(RECIPES), help="recipe for the budgets")
    parser.add_argument("--arch", help="architecture for the budgets (default: the recipe's)")
    parser.add_argument("--seed-keras-epochs", type=int, default=0)
    parser.add_argument("--from-checkpoint", type=Path)
    parser.add_argument("--evaluate", nargs="+", type=Path, metavar="CHECKPOINT",
                        help="finished runs to evaluate with and without TTA, grouped into candidates")
    args = parser.parse_args()
    if args.from_checkpoint:
        curve(args.from_checkpoint)
        return
    if not SHARED.is_file():
        print(f"shared FER-2013 file not found at {SHARED}: nothing to measure")
        sys.exit(1)
    if args.evaluate:
        evaluate_runs(args.evaluate, SHARED)
        return
    data = load_fer_csv(SHARED)
    train, val = data.usage("Training"), data.usage("PublicTest")
    recipe = get_recipe(args.recipe)
    if args.arch and args.arch != recipe.arch:
        recipe = recipe.with_overrides(arch=args.arch, arch_kwargs={})
    for epochs in args.budgets:
        run(recipe, train, val, epochs, f"{recipe.name} v{recipe.version} ({recipe.arch})")
    if args.seed_keras_epochs:
        run(get_recipe("seed-keras"), train, val, args.seed_keras_epochs, "seed-keras (fer_cnn)")
        print(f"{'published (first seed paper)':34s} Keras CNN on FER-2013 test: {PUBLISHED_KERAS:.4f} "
              "(published figure, not measured here)")


if __name__ == "__main__":
    main()
