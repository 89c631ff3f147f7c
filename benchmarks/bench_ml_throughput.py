"""Training throughput (full pipeline vs. pure compute), inference throughput, Grad-CAM maps/s.

    python benchmarks/bench_ml_throughput.py [--archs fer_vgg_m fer_cnn ...] [--steps 20] [--device cuda]

``--device`` picks the device (default: CUDA when present, as training does); CUDA timings synchronise before
the clock is read.

Uses the shared FER-2013 file for real faces when it exists (and says so), random faces otherwise: throughput does
not depend on pixel values.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.data import load_fer_csv  # noqa: E402
from ml.evaluate import pick_device, predict_proba  # noqa: E402
from ml.explain import explain  # noqa: E402
from ml.models import count_trainable, create_model  # noqa: E402
from ml.recipes import get_recipe  # noqa: E402
from ml.train import bf16_supported, build_state, train_one_epoch  # noqa: E402

SHARED = ROOT.parent / "shared" / "data" / "fer2013" / "fer2013.csv.gz"


def faces(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    if SHARED.is_file():
        data = load_fer_csv(SHARED, usages=["PublicTest"])
        idx = np.resize(np.arange(len(data)), n)
        return data.images[idx], data.labels[idx], f"real faces from {SHARED.name}"
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 48, 48), dtype=np.uint8), rng.integers(0, 7, n), \
        "random faces (shared FER-2013 file not found)"


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pure_compute(model, recipe, amp: bool, steps: int, device: torch.device) -> float:
    """Forward+backward+step on one ready, normalized channels-last batch: the model's ceiling."""
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=1e-3, momentum=0.9)
    x = torch.randn(recipe.batch_size, model.preprocessing.channels, model.preprocessing.input_size,
                    model.preprocessing.input_size, device=device).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 7, (recipe.batch_size,), device=device)
    model.train()
    for i in range(steps + 3):
        if i == 3:
            sync(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = F.cross_entropy(model(x).float(), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    sync(device)
    return steps * recipe.batch_size / (time.perf_counter() - start)


def bench_training(arch: str, recipe_name: str, steps: int, images, labels, device: torch.device) -> None:
    recipe = get_recipe(recipe_name)
    if arch != recipe.arch:
        recipe = recipe.with_overrides(arch=arch, arch_kwargs={})
    n = recipe.batch_size * steps
    state = build_state(recipe, labels[:n], steps_per_epoch=steps, epochs=1, seed=0, device=device)
    ready = pure_compute(state.model, recipe, state.amp, steps, device)
    # Two epochs' worth of schedule: the warm-up batches must not run a one-cycle schedule past its end.
    state = build_state(recipe, labels[:n], steps_per_epoch=steps, epochs=2, seed=0, device=device)
    imgs, labs = torch.from_numpy(images[:n]), torch.from_numpy(labels[:n].astype(np.int64))
    train_one_epoch(state, imgs[: recipe.batch_size * 3], labs[: recipe.batch_size * 3])  # warm-up
    stats = train_one_epoch(state, imgs, labs)
    print(f"train  {arch:15s} recipe {recipe_name:14s} params {count_trainable(state.model) / 1e6:5.2f}M "
          f"bf16={state.amp!s:5s} batch {recipe.batch_size:3d}: pipeline {stats['images_per_s']:7.1f} img/s, "
          f"pure compute {ready:7.1f} img/s, ratio {stats['images_per_s'] / ready:.2f}", flush=True)


def bench_inference(arch: str, images, device: torch.device) -> None:
    model = create_model(arch).eval().to(device, memory_format=torch.channels_last)
    for batch in (1, 256):
        n = 64 if batch == 1 else 1024
        predict_proba(model, images[:batch], batch_size=batch)
        sync(device)
        start = time.perf_counter()
        predict_proba(model, images[:n], batch_size=batch)  # returns numpy: the device's work is done
        print(f"infer  {arch:15s} batch {batch:3d}: {n / (time.perf_counter() - start):8.1f} img/s (fp32)", flush=True)


def bench_cam(arch: str, images, methods: list[str], device: torch.device) -> None:
    model = create_model(arch).eval().to(device)
    for method in methods:
        explain(model, images[:8], method=method)
        start = time.perf_counter()
        explain(model, images[:64], method=method, batch_size=64)
        print(f"cam    {arch:15s} {method:10s} batch 64: {64 / (time.perf_counter() - start):7.1f} maps/s "
              f"(incl. overlays)", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archs", nargs="+", default=["fer_vgg_m", "fer_vgg", "fer_cnn", "vgg19_transfer"])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cam-methods", nargs="+", default=["gradcam", "scorecam"])
    parser.add_argument("--device", help="cpu, cuda, cuda:1 (default: CUDA when present)")
    args = parser.parse_args()
    device = pick_device(args.device)
    images, labels, source = faces(max(args.steps * 64, 1024))
    bf16 = "available" if bf16_supported(device) else "unavailable"
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"# {where}, bf16 autocast {bf16}; {source}")
    recipes = {"fer_cnn": "seed-keras", "vgg19_transfer": "seed-vgg19-c2"}
    for arch in args.archs:
        bench_training(arch, recipes.get(arch, "default"), args.steps, images, labels, device)
    for arch in args.archs:
        bench_inference(arch, images, device)
    for arch in args.archs[:1]:
        bench_cam(arch, images, args.cam_methods, device)


if __name__ == "__main__":
    main()
