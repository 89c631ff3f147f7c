"""Detection quality on injected label noise: flip a share of FER-2013 Training labels (uniformly, or
class-conditionally like a model's PublicTest confusions), cross-fit out-of-fold probabilities, train one model on all
noisy rows (the stand-in for the active model, which was trained on the noisy labels), and measure how well every
ranking, filter and variant finds the flipped rows.

    python benchmarks/bench_label_noise.py [--noise-kind uniform|class_conditional|both] [--noise 0.1] [--folds 4]
        [--epochs N] [--limit N] [--out-dir DIR]

Everything expensive is kept in ``--out-dir`` (finished folds, the full-data model's probabilities and features), so a
rerun resumes and comparing methods costs seconds. The full run takes long on a 2-core CPU; ``--limit 1500 --epochs 1``
checks the script. FER-2013's own wrong labels are flagged too and count as false positives here, so precision cannot
reach 1. Prints one JSON object and a markdown table per noise kind, and writes ``result.json`` to ``--out-dir``.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DEFAULT_CSV = ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz"
DEFAULT_CHECKPOINT = ROOT / "ml" / "weights" / "default.pt"
NOISE_KINDS = ("uniform", "class_conditional")
TOP_K = (100, 500, 1000)
KNN_K = (10, 25)
DEFAULT_FILTER = "prune_by_noise_rate"


def log(message: str) -> None:
    print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


# --- metrics against the flipped rows ---------------------------------------------------------------------------------


def ranking_metrics(quality: np.ndarray, flipped: np.ndarray, queue: np.ndarray | None = None) -> dict:
    """Precision at the top k and average precision of rows ordered by ascending quality. With ``queue`` (a bool mask:
    the flagged set) only queued rows are ranked, as a reviewer sees them; flipped rows outside it are never found."""
    order = np.argsort(quality, kind="stable")
    if queue is not None:
        order = order[queue[order]]
    hits = flipped[order]
    out = {f"p@{k}": round(float(hits[:k].mean()), 4) if len(hits) >= k else None for k in TOP_K}
    found = np.cumsum(hits)
    precision_at_hit = found[hits] / (np.flatnonzero(hits) + 1)
    out["ap"] = round(float(precision_at_hit.sum() / max(flipped.sum(), 1)), 4)
    return out


def flagged_metrics(is_issue: np.ndarray, flipped: np.ndarray) -> dict:
    hits = int((is_issue & flipped).sum())
    flagged = int(is_issue.sum())
    return {"flagged": flagged, "precision": round(hits / flagged, 4) if flagged else None,
            "recall": round(hits / int(flipped.sum()), 4) if flipped.any() else None}


def cleanlab_scores(labels: np.ndarray, probs: np.ndarray) -> tuple[dict, dict]:
    """Label quality per ranking method and the flagged mask per filter, with ``score_from_probabilities``'s calls
    (each computed once, not once per pair)."""
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    from ml.scoring import FILTER_METHODS, RANKING_METHODS

    probs = np.asarray(probs, dtype=np.float64)
    probs = probs / probs.sum(1, keepdims=True)
    quality = {r: np.asarray(get_label_quality_scores(labels, probs, method=r)) for r in RANKING_METHODS}
    issues = {f: np.asarray(find_label_issues(labels, probs, filter_by=f), dtype=bool) for f in FILTER_METHODS}
    return quality, issues


# --- steps ------------------------------------------------------------------------------------------------------------


class StepTimes:
    """Minutes per step, persisted so that a resumed run still reports what the first one measured."""

    def __init__(self, path: Path):
        self.path = path
        self.minutes: dict[str, float] = json.loads(path.read_text()) if path.is_file() else {}

    def run(self, name: str, fn: Callable[[], object], *, cached: bool) -> object:
        started = time.perf_counter()
        value = fn()
        if not cached or name not in self.minutes:
            self.record(name, time.perf_counter() - started)
        return value

    def record(self, name: str, seconds: float) -> None:
        self.minutes[name] = round(seconds / 60, 2)
        self.path.write_text(json.dumps(self.minutes, indent=2))


def confusion_of(checkpoint: Path, public_test, out_dir: Path) -> list[list[int]]:
    """PublicTest confusion (rows: true, columns: predicted) of ``checkpoint``, without TTA; cached in ``out_dir``."""
    cache = out_dir / "confusion.json"
    if cache.is_file():
        return json.loads(cache.read_text())["confusion"]
    from ml.checkpoint import load_checkpoint
    from ml.evaluate import evaluate

    metrics = evaluate(load_checkpoint(checkpoint).model, public_test.images, public_test.labels, tta="none")
    cache.write_text(json.dumps({"checkpoint": str(checkpoint), "accuracy": metrics["accuracy"],
                                 "confusion": metrics["confusion"]}))
    return metrics["confusion"]


def write_noisy_csv(path: Path, images: np.ndarray, labels: np.ndarray) -> None:
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["emotion", "pixels", "Usage"])
        for image, label in zip(images, labels, strict=True):
            writer.writerow([int(label), " ".join(map(str, image.ravel().tolist())), "Training"])
    tmp.replace(path)


def full_data_model(noisy, recipe, *, epochs: int, seed: int, work: Path, times: StepTimes) -> dict:
    """Train one model on every noisy row; return its in-sample probabilities (flip TTA) and pooled features."""
    from ml.checkpoint import load_checkpoint
    from ml.evaluate import predict_proba
    from ml.scoring import pooled_features
    from ml.train import fit

    h = hashlib.sha256(noisy.labels.tobytes())
    h.update(json.dumps([recipe.as_dict(), epochs, seed, len(noisy)], sort_keys=True, default=str).encode())
    tag = h.hexdigest()[:16]
    done = work / f"full-{tag}.npz"
    ckpt = work / f"full-{tag}.pt"
    cached = done.is_file()

    def train() -> None:
        def on_event(event: dict) -> None:
            if event["kind"] == "epoch":
                log(f"  full-data model epoch {event['epoch']}/{event['epochs']} loss {event['train_loss']:.4f}")

        if not cached:
            fit(noisy, None, recipe, ckpt, epochs=epochs, seed=seed, resume=True, progress=on_event)

    def predict() -> dict:
        if cached:
            return dict(np.load(done))
        model = load_checkpoint(ckpt).model
        saved = {"probs": predict_proba(model, noisy.images, tta="flip"),
                 "features": pooled_features(model, noisy.images)}
        np.savez(done, **saved)
        return saved

    times.run("full_data_model_training", train, cached=cached)
    return times.run("full_data_model_probabilities_and_features", predict, cached=cached)


def run_kind(kind: str, train, confusion, args: argparse.Namespace, work: Path) -> dict:
    from ml.data import FaceArrays
    from ml.noise import class_conditional_noise, uniform_noise
    from ml.recipes import get_recipe
    from ml.scoring import cross_fit, knn_label_quality, rank_average

    work.mkdir(parents=True, exist_ok=True)
    times = StepTimes(work / "minutes.json")
    log(f"[{kind}] injecting {args.noise:.0%} noise into {len(train)} Training rows")
    if kind == "uniform":
        noise = uniform_noise(train.labels, args.noise, args.seed)
    else:
        noise = class_conditional_noise(train.labels, args.noise, np.asarray(confusion), args.seed)
    flipped = noise.flipped
    noisy_csv = work / "noisy.csv"
    times.run("write_noisy_csv", lambda: noisy_csv.is_file() or write_noisy_csv(noisy_csv, train.images, noise.labels),
              cached=noisy_csv.is_file())
    np.save(work / "flipped.npy", flipped)
    noisy = FaceArrays(train.images, noise.labels, np.arange(len(train)), train.usages)
    recipe = get_recipe("scoring")
    epochs = args.epochs or recipe.epochs

    last = [time.perf_counter()]

    def on_event(event: dict) -> None:
        if event["kind"] == "epoch":
            log(f"  fold {event['fold']}/{event['folds']} epoch {event['epoch']}/{event['epochs']} "
                f"loss {event['train_loss']:.4f}")
        elif event["kind"] == "fold":
            log(f"  fold {event['fold']}/{event['folds']} done" + (" (reused)" if event["reused"] else ""))
            if not event["reused"]:  # a reused fold keeps the minutes its first run measured
                times.record(f"cross_fit_fold{event['fold']}", time.perf_counter() - last[0])
            last[0] = time.perf_counter()

    log(f"[{kind}] cross-fitting {args.folds} folds x {epochs} epochs")
    oof = cross_fit(noisy, folds=args.folds, recipe=recipe, epochs=epochs, seed=args.seed, work_dir=work / "work",
                    progress=on_event)
    log(f"[{kind}] full-data model, {epochs} epochs")
    full = full_data_model(noisy, recipe, epochs=epochs, seed=args.seed + 100, work=work, times=times)

    log(f"[{kind}] scoring")
    started = time.perf_counter()
    labels = noise.labels
    sources = {"oof_flip_tta": oof.probs, "in_sample": full["probs"],
               "oof_avg_in_sample": 0.5 * oof.probs + 0.5 * full["probs"]}
    if not np.isnan(oof.probs_no_tta).any():
        sources["oof_no_tta"] = oof.probs_no_tta
    scored = {name: cleanlab_scores(labels, probs) for name, probs in sources.items()}
    quality, issues = scored["oof_flip_tta"]
    by_filter = {}
    for f, mask in issues.items():
        by_filter[f] = {**flagged_metrics(mask, flipped),
                        "queue": {r: ranking_metrics(q, flipped, mask) for r, q in quality.items()}}
    variants = {}
    for name, (q_by_rank, i_by_filter) in scored.items():
        for r, q in q_by_rank.items():
            variants[f"{name} / {r}"] = {**ranking_metrics(q, flipped),
                                         **{f"{DEFAULT_FILTER}_{k}": v for k, v in
                                            flagged_metrics(i_by_filter[DEFAULT_FILTER], flipped).items()}}
    # The best out-of-fold ranking is picked on the flipped rows themselves: fine for a benchmark, not for the product.
    best = max(quality, key=lambda r: variants[f"oof_flip_tta / {r}"]["ap"])
    for k in KNN_K:
        knn = knn_label_quality(full["features"], labels, k=k)
        variants[f"knn{k} (full-data features)"] = ranking_metrics(knn, flipped)
        variants[f"knn{k} + oof_flip_tta / {best} (rank average)"] = ranking_metrics(rank_average(knn, quality[best]),
                                                                                     flipped)
    times.record("scoring_and_metrics", time.perf_counter() - started)
    flips = np.zeros((7, 7), dtype=int)
    np.add.at(flips, (train.labels[flipped], labels[flipped]), 1)
    return {"rows": len(train), "flipped": int(flipped.sum()), "achieved_rate": round(float(flipped.mean()), 4),
            "flips_true_to_noisy": flips.tolist(), "epochs": epochs, "folds": args.folds,
            "best_oof_ranking": best, "by_filter": by_filter, "variants": variants, "minutes": times.minutes}


# --- report -----------------------------------------------------------------------------------------------------------


def markdown(kind: str, r: dict) -> str:
    def fmt(v) -> str:
        return "-" if v is None else (f"{v:.3f}" if isinstance(v, float) else str(v))

    lines = [f"### {kind}: {r['rows']} rows, {r['flipped']} flipped ({r['achieved_rate']:.1%}), "
             f"{r['folds']} folds x {r['epochs']} epochs", "",
             "Out-of-fold probabilities with flip TTA; the queue is the flagged set ordered by the ranking.", "",
             "| filter | flagged | precision | recall | ranking | queue p@100 | queue p@500 | queue p@1000 "
             "| queue AP |",
             "|---|---|---|---|---|---|---|---|---|"]
    for f, m in r["by_filter"].items():
        for rank, q in m["queue"].items():
            lines.append(f"| {f} | {m['flagged']} | {fmt(m['precision'])} | {fmt(m['recall'])} | {rank} | "
                         f"{fmt(q['p@100'])} | {fmt(q['p@500'])} | {fmt(q['p@1000'])} | {fmt(q['ap'])} |")
    lines += ["", f"Whole ranking (every row); flagged set by `{DEFAULT_FILTER}` where the variant has one.", "",
              "| variant / ranking | p@100 | p@500 | p@1000 | AP | flagged | precision | recall |",
              "|---|---|---|---|---|---|---|---|"]
    for name, m in r["variants"].items():
        lines.append(f"| {name} | {fmt(m['p@100'])} | {fmt(m['p@500'])} | {fmt(m['p@1000'])} | {fmt(m['ap'])} | "
                     f"{fmt(m.get(DEFAULT_FILTER + '_flagged'))} | {fmt(m.get(DEFAULT_FILTER + '_precision'))} | "
                     f"{fmt(m.get(DEFAULT_FILTER + '_recall'))} |")
    lines += ["", "| step | minutes |", "|---|---|"] + [f"| {k} | {v} |" for k, v in r["minutes"].items()]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=DEFAULT_CSV)
    parser.add_argument("--noise", type=float, default=0.1)
    parser.add_argument("--noise-kind", choices=[*NOISE_KINDS, "both"], default="both")
    parser.add_argument("--confusion-checkpoint", type=Path, default=DEFAULT_CHECKPOINT,
                        help="model whose PublicTest confusions shape the class-conditional noise")
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--epochs", type=int, help="epochs per fold and for the full-data model (default: recipe's)")
    parser.add_argument("--limit", type=int, help="use only the first N Training rows")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", type=Path, help="keep noisy CSVs, folds, models and result here (default: temp)")
    args = parser.parse_args()
    if not args.csv.is_file():
        print(f"FER-2013 file not found at {args.csv} (the shared data file is missing)", file=sys.stderr)
        return 2
    kinds = NOISE_KINDS[::-1] if args.noise_kind == "both" else (args.noise_kind,)  # the realistic kind first
    if "class_conditional" in kinds and not args.confusion_checkpoint.is_file():
        print(f"checkpoint not found at {args.confusion_checkpoint}", file=sys.stderr)
        return 2
    out_dir = args.out_dir or Path(tempfile.mkdtemp(prefix="ferplatform-noise-"))
    out_dir.mkdir(parents=True, exist_ok=True)

    from ml.data import load_fer_csv

    started = time.perf_counter()
    data = load_fer_csv(args.csv, usages=["Training", "PublicTest"])
    train = data.usage("Training")
    if args.limit:
        train = train.subset(np.arange(min(args.limit, len(train))))
    load_minutes = round((time.perf_counter() - started) / 60, 2)
    confusion = confusion_of(args.confusion_checkpoint, data.usage("PublicTest"), out_dir) \
        if "class_conditional" in kinds else None
    del data
    result = {"noise": args.noise, "seed": args.seed, "limit": args.limit, "load_csv_minutes": load_minutes,
              "confusion_checkpoint": str(args.confusion_checkpoint), "confusion": confusion, "kinds": {}}
    tag = f"n{len(train)}-r{args.noise}-s{args.seed}-e{args.epochs or 'recipe'}-f{args.folds}"
    for kind in kinds:
        result["kinds"][kind] = run_kind(kind, train, confusion, args, out_dir / f"{kind}-{tag}")
        (out_dir / "result.json").write_text(json.dumps(result, indent=2))
        print(markdown(kind, result["kinds"][kind]) + "\n", file=sys.stderr, flush=True)
    print(json.dumps(result))
    for kind, r in result["kinds"].items():
        print("\n" + markdown(kind, r))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
