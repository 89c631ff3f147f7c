"""Serving throughput of the shipped default checkpoint: model forward (images/s) at batch 1 and 256, Grad-CAM
(maps/s) per method at batch 64, and the overlay PNG encoding the prediction task adds per map.

    python benchmarks/bench_inference.py [--checkpoint ml/weights/default.pt] [--methods gradcam scorecam ...]
                                         [--device cpu|cuda] [--seconds 3]

Loads the checkpoint exactly as the worker does (``ml.checkpoint.load_checkpoint``, ``weights_only=True``) and uses
``ml.evaluate.predict_proba`` / ``ml.explain.explain``, the calls ``apps.inference.services.predictions`` makes.
Random faces: throughput does not depend on pixel values. Prints one line per figure.
"""

from __future__ import annotations

import argparse
import io
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # ScoreCAM draws a tqdm bar per image

import numpy as np
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.checkpoint import load_checkpoint  # noqa: E402
from ml.evaluate import pick_device, predict_proba  # noqa: E402
from ml.explain import explain  # noqa: E402

REQUIRED_METHODS = ["gradcam", "gradcam++", "hirescam", "scorecam", "eigencam", "layercam"]
# ScoreCAM runs one forward pass per channel of the target layer for every image (a batch of 64 takes minutes on a
# small CPU), so it is measured on fewer images unless --slow-batch says otherwise; maps/s does not depend on it.
SLOW_METHODS = {"scorecam", "ablationcam"}


def rate(fn, items_per_call: int, seconds: float, min_calls: int = 3) -> tuple[float, int]:
    """Items per second over at least ``min_calls`` calls and ``seconds`` seconds, after one warm-up call."""
    fn()
    calls, start = 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - start < seconds:
        fn()
        calls += 1
    return calls * items_per_call / (time.perf_counter() - start), calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", default=str(ROOT / "ml" / "weights" / "default.pt"))
    parser.add_argument("--methods", nargs="+", default=REQUIRED_METHODS)
    parser.add_argument("--device", default=None)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--slow-batch", type=int, default=4, help="batch for ScoreCAM/AblationCAM (default 4)")
    args = parser.parse_args()

    device = pick_device(args.device)
    checkpoint = load_checkpoint(args.checkpoint, device)
    model = checkpoint.model
    cpu = f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}"
    name = torch.cuda.get_device_name() if device.type == "cuda" else cpu
    print(f"checkpoint {Path(args.checkpoint).name}: {checkpoint.data['arch']} "
          f"({sum(p.numel() for p in model.parameters()):,} parameters), device {device} ({name})")
    load_start = time.perf_counter()
    load_checkpoint(args.checkpoint, device)
    print(f"checkpoint load: {1000 * (time.perf_counter() - load_start):.0f} ms")

    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (256, 48, 48), dtype=np.uint8)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    for batch in (1, 256):
        def forward(batch=batch):
            predict_proba(model, faces[:batch])
            sync()
        per_s, calls = rate(forward, batch, args.seconds)
        print(f"forward batch {batch:>3}: {per_s:9.1f} images/s "
              f"({1000 * batch / per_s:.2f} ms per batch, {calls} calls)")

    targets = rng.integers(0, 7, 64).tolist()
    for method in args.methods:
        n = args.slow_batch if method in SLOW_METHODS else 64

        def cam(method=method, n=n):
            explain(model, faces[:n], method=method, targets=targets[:n])
            sync()
        per_s, calls = rate(cam, n, args.seconds, min_calls=1)
        print(f"grad-cam {method:<10} batch {n:>2}: {per_s:8.2f} maps/s (overlays included, {calls} calls)")

    overlays = explain(model, faces[:64], method="gradcam", targets=targets).overlays

    def encode():
        for overlay in overlays:
            Image.fromarray(overlay).save(io.BytesIO(), format="PNG")
    per_s, _ = rate(encode, len(overlays), args.seconds)
    print(f"overlay PNG encode (192x192 RGB): {per_s:.0f} PNGs/s")


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    main()
