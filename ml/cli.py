"""``python -m ml``: train, evaluate, predict, explain, score-labels, half. Errors are one line on stderr, exit
code 2."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from ml.labels import CLASSES


class CLIError(Exception):
    """A user-facing error: printed as one line, exit code 2."""


def _cmd_train(args: argparse.Namespace) -> int:
    from ml.data import load_fer_csv
    from ml.recipes import apply_overrides, get_recipe
    from ml.train import fit

    recipe = get_recipe(args.recipe)
    given = {"arch": args.arch, "batch_size": args.batch_size, "lr": args.lr}
    overrides = {k: v for k, v in given.items() if v is not None}
    if args.class_weights is not None:
        overrides["class_weights"] = None if args.class_weights == "none" else args.class_weights
    if args.oversample:
        overrides["oversample"] = True
    if args.no_bf16:
        overrides["amp_bf16"] = False
    recipe = recipe.with_overrides(**overrides)
    if args.set:
        try:
            recipe = apply_overrides(recipe, _parse_sets(args.set))
        except ValueError as exc:
            raise CLIError(f"--set: {exc}") from None
    arch_kwargs = {}
    if args.pretrained:
        arch_kwargs["pretrained_path"] = args.pretrained
    if args.arch and args.arch != get_recipe(args.recipe).arch:
        recipe = recipe.with_overrides(arch_kwargs={})
    if recipe.arch == "vgg19_transfer" and not args.pretrained:
        print("note: vgg19_transfer without --pretrained: no ImageNet weights, the network trains from scratch",
              file=sys.stderr)
    data = load_fer_csv(args.csv)
    train, val = data.usage("Training"), data.usage(args.val_usage)
    if len(train) == 0:
        raise CLIError(f"{args.csv}: no Training rows")
    print(f"train: {len(train)} images, {args.val_usage}: {len(val)} images, arch {recipe.arch}, recipe "
          f"{recipe.name} v{recipe.version}, {args.epochs or recipe.epochs} epochs", file=sys.stderr)

    def progress(event: dict) -> None:
        if event["kind"] == "epoch":
            val_part = (f" val_acc {event['val_accuracy']:.4f} val_f1 {event['val_macro_f1']:.4f}"
                        if "val_accuracy" in event else "")
            print(f"epoch {event['epoch']}/{event['epochs']} loss {event['train_loss']:.4f} "
                  f"acc {event['train_accuracy']:.4f}{val_part} {event['images_per_s']:.0f} img/s "
                  f"{event['seconds']:.0f}s", file=sys.stderr, flush=True)

    start = time.perf_counter()
    summary = fit(train, val if len(val) else None, recipe, args.out, epochs=args.epochs, seed=args.seed,
                  resume=args.resume, device=args.device, progress=progress, show_progress=sys.stderr.isatty(),
                  half=args.half, arch_overrides=arch_kwargs, extra={"csv": str(args.csv), "set": args.set or []},
                  init_from=args.init_from, record_dynamics=not args.no_dynamics)
    summary["wall_seconds"] = time.perf_counter() - start
    summary["pretrained"] = bool(args.pretrained) if recipe.arch == "vgg19_transfer" else None
    print(json.dumps({k: v for k, v in summary.items() if k not in ("history", "best_recipe")}))
    return 0


def _parse_sets(items: list[str]) -> dict:
    """``FIELD=VALUE`` pairs, each VALUE read as JSON (``0.2``, ``true``, ``[32,48]``, ``null``) or, where it is
    not JSON, as a string (``scheduler=cosine``)."""
    overrides = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise ValueError(f"{item!r} is not FIELD=VALUE")
        try:
            overrides[name] = json.loads(raw)
        except json.JSONDecodeError:
            overrides[name] = raw
    return overrides


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from ml.checkpoint import load_checkpoint
    from ml.data import load_fer_csv
    from ml.evaluate import evaluate, pick_device

    device = pick_device(args.device)
    loaded = load_checkpoint(args.checkpoint, device=device)
    data = load_fer_csv(args.csv, usages=[args.usage])
    result = evaluate(loaded.model, data.images, data.labels, tta=args.tta, device=device)
    result.update(checkpoint=str(args.checkpoint), usage=args.usage, arch=loaded.data["arch"],
                  pretrained=loaded.data.get("pretrained", False))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.usage}: n={result['n']} accuracy {result['accuracy']:.4f} macro-F1 {result['macro_f1']:.4f} "
              f"(TTA {args.tta})")
        for name, m in result["per_class"].items():
            print(f"  {name:9s} P {m['precision']:.3f} R {m['recall']:.3f} F1 {m['f1']:.3f} n={m['support']}")
    if args.plots:
        from ml.plots import plot_confusion, plot_history

        Path(args.plots).mkdir(parents=True, exist_ok=True)
        plot_confusion(result["confusion_normalized"], Path(args.plots) / "confusion.png")
        if loaded.data.get("history"):
            plot_history(loaded.data["history"], Path(args.plots) / "curves.png")
    return 0


def _load_images(paths: list[str], side: int = 48):
    import numpy as np
    from PIL import Image, ImageOps, UnidentifiedImageError

    faces = []
    for p in paths:
        try:
            with Image.open(p) as im:
                im = ImageOps.exif_transpose(im).convert("L").resize((side, side), Image.BILINEAR)
                faces.append(np.asarray(im, dtype=np.uint8))
        except FileNotFoundError:
            raise CLIError(f"{p}: no such file") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise CLIError(f"{p}: not a readable image ({exc})") from None
    return np.stack(faces)


def _cmd_predict(args: argparse.Namespace) -> int:
    from ml.checkpoint import load_checkpoint
    from ml.evaluate import pick_device, predict_proba

    device = pick_device(args.device)
    loaded = load_checkpoint(args.checkpoint, device=device)
    probs = predict_proba(loaded.model, _load_images(args.images), device=device, tta=args.tta)
    for path, p in zip(args.images, probs, strict=True):
        print(json.dumps({"image": path, "predicted": CLASSES[int(p.argmax())],
                          "probabilities": {c: round(float(v), 4) for c, v in zip(CLASSES, p, strict=True)}}))
    return 0


def _cmd_explain(args: argparse.Namespace) -> int:
    from ml.checkpoint import load_checkpoint
    from ml.evaluate import pick_device
    from ml.explain import explain, save_overlay_png

    device = pick_device(args.device)
    loaded = load_checkpoint(args.checkpoint, device=device)
    images = _load_images([args.image])
    target = None if args.target is None else [CLASSES.index(args.target)]
    result = explain(loaded.model, images, method=args.method, targets=target)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem = Path(args.image).stem
    path = out / f"{stem}_{args.method}_{CLASSES[result.targets[0]]}.png"
    save_overlay_png(result.overlays[0], path)
    print(json.dumps({"image": args.image, "method": args.method, "target": CLASSES[result.targets[0]],
                      "predicted": CLASSES[int(result.probabilities[0].argmax())], "overlay": str(path)}))
    return 0


def _cmd_half(args: argparse.Namespace) -> int:
    from ml.checkpoint import halve_checkpoint

    if Path(args.out).resolve() == Path(args.checkpoint).resolve():
        raise CLIError("--out must differ from --checkpoint: the full-precision file is kept")
    sizes = halve_checkpoint(args.checkpoint, args.out)
    print(json.dumps({"checkpoint": args.checkpoint, "out": args.out, **sizes}))
    return 0


def _cmd_score_labels(args: argparse.Namespace) -> int:
    from ml.data import load_fer_csv
    from ml.recipes import get_recipe
    from ml.scoring import score_labels, scoring_recipe

    data = load_fer_csv(args.csv)  # rows are counted over the whole file, whatever their Usage
    subset = data.usage(args.usage)
    if len(subset) == 0:
        raise CLIError(f"{args.csv}: no {args.usage} rows")
    work_dir = Path(args.work_dir or f"{args.out}.work")
    bar = None
    if sys.stderr.isatty():
        from tqdm import tqdm

        bar = tqdm(total=args.folds, desc="folds", unit="fold")

    def progress(event: dict) -> None:
        if event["kind"] == "fold":
            note = " (reused from an earlier run)" if event["reused"] else ""
            if bar is not None:
                bar.update(1)
            else:
                print(f"fold {event['fold']}/{event['folds']} done{note}", file=sys.stderr, flush=True)
        elif event["kind"] == "epoch" and bar is None:
            print(f"fold {event['fold']}/{event['folds']} epoch {event['epoch']}/{event['epochs']} "
                  f"loss {event['train_loss']:.4f}", file=sys.stderr, flush=True)

    start = time.perf_counter()
    recipe = scoring_recipe(args.device) if args.recipe == "scoring" else get_recipe(args.recipe)
    scores = score_labels(subset, folds=args.folds, recipe=recipe, epochs=args.epochs,
                          seed=args.seed, work_dir=work_dir, device=args.device, ranking=args.ranking,
                          filter_by=args.filter_by, progress=progress)
    if bar is not None:
        bar.close()
    scores.write_csv(args.out)
    print(json.dumps({"scored": len(subset), "issues": int(scores.is_issue.sum()), "out": str(args.out),
                      "ranking": args.ranking, "filter_by": args.filter_by, "folds": args.folds,
                      "wall_seconds": round(time.perf_counter() - start, 1)}))
    return 0


def build_parser() -> argparse.ArgumentParser:
    from ml.explain import METHODS
    from ml.models import available_models
    from ml.recipes import RECIPES

    parser = argparse.ArgumentParser(prog="python -m ml", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model on a Kaggle-layout FER-2013 CSV")
    p.add_argument("--csv", required=True, help="fer2013.csv or .csv.gz (Training rows train, --val-usage selects)")
    p.add_argument("--arch", choices=available_models(), help="architecture (default: the recipe's)")
    p.add_argument("--recipe", default="default", choices=sorted(RECIPES))
    p.add_argument("--epochs", type=int, help="number of epochs (default: the recipe's)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--class-weights", choices=["balanced", "none"])
    p.add_argument("--oversample", action="store_true", help="draw every class equally often")
    p.add_argument("--pretrained", help="local torchvision vgg19 state dict for vgg19_transfer")
    p.add_argument("--val-usage", default="PublicTest", choices=["PublicTest", "PrivateTest"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA when present)")
    p.add_argument("--no-bf16", action="store_true", help="train in float32 even where bf16 is supported")
    p.add_argument("--half", action="store_true", help="store the best model's weights as float16 (small file)")
    p.add_argument("--resume", action="store_true", help="continue from <out>.state if it exists")
    p.add_argument("--init-from", help="checkpoint to start from (recipes with warm_start, e.g. finetune)")
    p.add_argument("--no-dynamics", action="store_true",
                   help="leave out the training dynamics (<out>.dynamics.npz): about 2-10 %% less time, for runs "
                        "whose labels nobody will rank")
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="override one recipe field, the value as JSON (repeatable): --set mixup_alpha=0.2 "
                        "--set progressive_resize=[32,48]; the checkpoint records the resolved recipe")
    p.add_argument("--out", required=True, help="checkpoint path for the best model")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("evaluate", help="accuracy, macro-F1, per-class figures and confusion matrix")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--csv", required=True)
    p.add_argument("--usage", default="PublicTest", choices=["PublicTest", "PrivateTest", "Training"])
    p.add_argument("--tta", nargs="?", const="flip", default="none", choices=["none", "flip", "tencrop"],
                   help="test-time augmentation; a bare --tta means flip")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--plots", help="directory for confusion.png and curves.png")
    p.add_argument("--device")
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser("predict", help="class probabilities for image files (one JSON line each)")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--tta", default="none", choices=["none", "flip", "tencrop"], help="test-time augmentation")
    p.add_argument("--device")
    p.add_argument("images", nargs="+")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("explain", help="Grad-CAM overlay PNG for one image")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--method", default="gradcam", choices=sorted(METHODS))
    p.add_argument("--target", choices=CLASSES, help="class to explain (default: the predicted one)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--device")
    p.add_argument("image")
    p.set_defaults(func=_cmd_explain)

    p = sub.add_parser("half", help="store a finished checkpoint's weights as float16, as train --half does")
    p.add_argument("--checkpoint", required=True)
    p.add_argument("--out", required=True, help="the float16 checkpoint (a new file)")
    p.set_defaults(func=_cmd_half)

    from ml.scoring import DEFAULT_RANKING, FILTER_METHODS, RANKING_METHODS

    p = sub.add_parser("score-labels", help="rank likely-wrong labels by k-fold cross-fitting and cleanlab")
    p.add_argument("--csv", required=True)
    p.add_argument("--usage", default="Training", choices=["Training", "PublicTest", "PrivateTest"])
    p.add_argument("--folds", type=int, default=4)
    p.add_argument("--recipe", default="scoring", choices=sorted(RECIPES))
    p.add_argument("--epochs", type=int, help="epochs per fold (default: the recipe's)")
    p.add_argument("--ranking", default=DEFAULT_RANKING, choices=RANKING_METHODS)
    p.add_argument("--filter-by", default="prune_by_noise_rate", choices=FILTER_METHODS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device")
    p.add_argument("--work-dir", help="where finished folds are kept for resuming (default: <out>.work)")
    p.add_argument("--out", required=True, help="CSV: row,given_label,suggested_label,quality,is_issue")
    p.set_defaults(func=_cmd_score_labels)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ml.checkpoint import CheckpointError
    from ml.data import DataError
    from ml.train import TrainingError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (CLIError, CheckpointError, DataError, TrainingError, FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
