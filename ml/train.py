"""Training loop in the shape of torchvision's reference ``train.py``: ``train_one_epoch``, ``evaluate``, ``fit``.

The whole training set lives in memory as one uint8 tensor; every batch is indexed, augmented on the tensor
(``ml.augment``) and fed channels-last, with bf16 autocast where the hardware supports it.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ml.augment import augment_batch
from ml.checkpoint import build_checkpoint, read_checkpoint, save_atomic
from ml.data import FaceArrays, balanced_class_weights
from ml.evaluate import evaluate, pick_device
from ml.labels import NUM_CLASSES
from ml.models import FerModel, create_model
from ml.recipes import Recipe

Progress = Callable[[dict], None]


class TrainingError(RuntimeError):
    """Training cannot go on (NaN loss, empty data, ...); the message says why."""


def seed_everything(seed: int) -> torch.Generator:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def bf16_supported(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    try:  # oneDNN uses AMX/AVX512-BF16 where present; elsewhere bf16 is slower than fp32
        return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()
    except (AttributeError, RuntimeError):
        return False


def make_optimizer(recipe: Recipe, model: torch.nn.Module) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if recipe.optimizer == "sgd":
        return torch.optim.SGD(params, lr=recipe.lr, momentum=recipe.momentum, nesterov=recipe.nesterov,
                               weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adam":
        return torch.optim.Adam(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    if recipe.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=recipe.lr, weight_decay=recipe.weight_decay)
    raise ValueError(f"unknown optimizer {recipe.optimizer!r}")


def make_scheduler(recipe: Recipe, optimizer: torch.optim.Optimizer, steps_per_epoch: int, epochs: int):
    """Returns ``(scheduler, per_step)``; per-step schedulers are stepped every batch, the rest every epoch."""
    if recipe.scheduler == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, epochs=epochs,
                                                   steps_per_epoch=steps_per_epoch, pct_start=0.2), True
    if recipe.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch), True
    if recipe.scheduler == "exp_decay":  # Keras' legacy `decay`: lr / (1 + decay * iterations)
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda it: 1.0 / (1.0 + recipe.lr_decay * it)), True
    if recipe.scheduler == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, mode="max", factor=recipe.plateau_factor,
                                                          patience=recipe.plateau_patience), False
    if recipe.scheduler == "none":
        return None, False
    raise ValueError(f"unknown scheduler {recipe.scheduler!r}")


@dataclass
class TrainState:
    model: FerModel
    optimizer: torch.optim.Optimizer
    scheduler: object
    per_step: bool
    device: torch.device
    recipe: Recipe
    class_weights: torch.Tensor | None
    generator: torch.Generator
    amp: bool
    epoch: int = 0  # epochs completed
    history: list[dict] = field(default_factory=list)
    best_score: float = -math.inf
    best_epoch: int = 0


def _epoch_order(labels: torch.Tensor, recipe: Recipe, gen: torch.Generator) -> torch.Tensor:
    n = len(labels)
    if recipe.oversample:  # draw every class equally often, with replacement
        counts = torch.bincount(labels, minlength=NUM_CLASSES).float()
        weights = (1.0 / counts.clamp(min=1))[labels]
        return torch.multinomial(weights, n, replacement=True, generator=gen)
    return torch.randperm(n, generator=gen)


def _targets(idx: torch.Tensor, labels: torch.Tensor, soft: torch.Tensor | None, recipe: Recipe,
             gen: torch.Generator) -> torch.Tensor:
    """Hard labels (N,) or probability targets (N, 7), by the recipe's soft-label mode."""
    if soft is None or recipe.soft_label_mode == "majority":
        return labels[idx]
    dist = soft[idx]
    if recipe.soft_label_mode == "probability":  # FER+'s "probability" mode: sample one label from the votes
        return torch.multinomial(dist, 1, generator=gen).squeeze(1)
    if recipe.soft_label_mode == "crossentropy":
        return dist
    raise ValueError(f"unknown soft-label mode {recipe.soft_label_mode!r}")


def train_one_epoch(state: TrainState, images: torch.Tensor, labels: torch.Tensor, soft: torch.Tensor | None = None,
                    progress: Progress | None = None, show_progress: bool = False) -> dict:
    model, recipe, gen, device = state.model, state.recipe, state.generator, state.device
    model.train()
    order = _epoch_order(labels, recipe, gen)
    bs = recipe.batch_size
    steps = len(order) // bs if len(order) >= bs else 1  # drop the last partial batch (batch norm)
    iterator = range(steps)
    if show_progress:
        from tqdm import tqdm

        iterator = tqdm(iterator, desc=f"epoch {state.epoch + 1}", leave=False, unit="batch")
    total_loss, correct, seen = 0.0, 0, 0
    start = time.perf_counter()
    for step in iterator:
        idx = order[step * bs:(step + 1) * bs]
        x = images[idx].to(device, non_blocking=True).unsqueeze(1).float().div_(255.0)
        y = _targets(idx, labels, soft, recipe, gen).to(device)
        x = augment_batch(x, recipe.augment, gen if device.type == "cpu" else None)
        x = model.preprocessing.apply(x).contiguous(memory_format=torch.channels_last)
        if recipe.mixup_alpha > 0:
            lam = float(np.random.beta(recipe.mixup_alpha, recipe.mixup_alpha))
            perm = torch.randperm(len(idx), generator=gen).to(device)
            x = lam * x + (1 - lam) * x[perm]
            y1 = F.one_hot(y, NUM_CLASSES).float() if y.ndim == 1 else y
            y = lam * y1 + (1 - lam) * y1[perm]
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=state.amp):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y, weight=state.class_weights, label_smoothing=recipe.label_smoothing)
        if not torch.isfinite(loss):
            raise TrainingError(f"loss became {loss.item()} at epoch {state.epoch + 1}, step {step + 1}")
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        state.optimizer.step()
        if state.scheduler is not None and state.per_step:
            state.scheduler.step()
        total_loss += loss.item() * len(idx)
        hard = y if y.ndim == 1 else y.argmax(1)
        correct += (logits.argmax(1) == hard).sum().item()
        seen += len(idx)
        if progress is not None and (step % 20 == 0 or step == steps - 1):
            progress({"kind": "batch", "epoch": state.epoch + 1, "step": step + 1, "steps": steps,
                      "loss": total_loss / seen})
    seconds = time.perf_counter() - start
    return {"train_loss": total_loss / max(seen, 1), "train_accuracy": correct / max(seen, 1),
            "seconds": seconds, "images_per_s": seen / seconds if seconds else 0.0,
            "lr": state.optimizer.param_groups[0]["lr"]}


def build_state(recipe: Recipe, train_labels: np.ndarray, *, steps_per_epoch: int, epochs: int, seed: int,
                device: torch.device | None = None, arch_overrides: dict | None = None) -> TrainState:
    device = device or pick_device()
    gen = seed_everything(seed)
    model = create_model(recipe.arch, **{**recipe.arch_kwargs, **(arch_overrides or {})})
    model.to(device).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(recipe, model)
    scheduler, per_step = make_scheduler(recipe, optimizer, steps_per_epoch, epochs)
    weights = None
    if recipe.class_weights == "balanced":
        weights = torch.tensor(balanced_class_weights(train_labels), dtype=torch.float32, device=device)
    elif recipe.class_weights is not None:
        raise ValueError(f"unknown class_weights {recipe.class_weights!r}")
    amp = recipe.amp_bf16 and bf16_supported(device)
    return TrainState(model, optimizer, scheduler, per_step, device, recipe, weights, gen, amp)


def _state_path(out: Path) -> Path:
    return out.with_name(out.name + ".state")


def fit(train: FaceArrays, val: FaceArrays | None, recipe: Recipe, out: str | Path, *, epochs: int | None = None,
        seed: int = 0, resume: bool = False, device: torch.device | str | None = None,
        progress: Progress | None = None, show_progress: bool = False, half: bool = False,
        arch_overrides: dict | None = None, extra: dict | None = None) -> dict:
    """Train, checkpoint every epoch (``<out>.state``, resumable), and write the best-on-``val`` model to ``out``.

    Returns the final summary: history, best epoch and the best model's validation metrics.
    """
    if len(train) == 0:
        raise TrainingError("no training images")
    out = Path(out)
    epochs = epochs or recipe.epochs
    device = pick_device(device if isinstance(device, str) else None) if not isinstance(device, torch.device) \
        else device
    steps = max(len(train) // recipe.batch_size, 1)
    state = build_state(recipe, train.labels, steps_per_epoch=steps, epochs=epochs, seed=seed, device=device,
                        arch_overrides=arch_overrides)
    if resume and _state_path(out).is_file():
        saved = read_checkpoint(_state_path(out))
        if saved["recipe"].get("epochs") != epochs:
            raise TrainingError(f"{_state_path(out)} was started for {saved['recipe'].get('epochs')} epochs; "
                                f"resume with --epochs {saved['recipe'].get('epochs')}")
        _restore(state, saved)
    images = torch.from_numpy(np.ascontiguousarray(train.images))
    labels = torch.from_numpy(train.labels.astype(np.int64))
    soft = None if train.soft_labels is None else torch.from_numpy(np.asarray(train.soft_labels, dtype=np.float32))
    record = {"recipe": recipe.as_dict(), "epochs": epochs, "seed": seed, "n_train": len(train),
              "n_val": len(val) if val is not None else 0, "device": str(device), "bf16": state.amp, **(extra or {})}
    bad_epochs = 0
    while state.epoch < epochs:
        stats = train_one_epoch(state, images, labels, soft, progress, show_progress)
        state.epoch += 1
        entry = {"epoch": state.epoch, **stats}
        if val is not None and len(val):
            m = evaluate(state.model, val.images, val.labels, device=device)
            entry.update(val_accuracy=m["accuracy"], val_macro_f1=m["macro_f1"], val_loss=m["nll"])
            score = m["accuracy"]
        else:
            score = -stats["train_loss"]
        if state.scheduler is not None and not state.per_step:
            state.scheduler.step(score)
        improved = score > state.best_score
        if improved:
            state.best_score, state.best_epoch, bad_epochs = score, state.epoch, 0
            save_atomic(build_checkpoint(state.model, recipe=record, epoch=state.epoch, history=state.history + [entry],
                                         half=half), out)
        else:
            bad_epochs += 1
        state.history.append(entry)
        save_atomic(build_checkpoint(state.model, recipe=record, epoch=state.epoch, history=state.history,
                                     optimizer=state.optimizer, scheduler=state.scheduler,
                                     extra={"best_score": state.best_score, "best_epoch": state.best_epoch,
                                            "rng": state.generator.get_state(), "bad_epochs": bad_epochs}),
                    _state_path(out))
        if progress is not None:
            progress({"kind": "epoch", "epochs": epochs, **entry})
        if recipe.early_stopping_patience and bad_epochs >= recipe.early_stopping_patience:
            break
    summary = {"history": state.history, "best_epoch": state.best_epoch, "epochs_run": state.epoch,
               "bf16": state.amp, "device": str(device)}
    if val is not None and len(val):
        best = read_checkpoint(out)
        summary["best_val_accuracy"] = max(h.get("val_accuracy", 0) for h in state.history) if state.history \
            else None
        summary["best_recipe"] = best["recipe"]
    return summary


def _restore(state: TrainState, data: dict) -> None:
    state.model.load_state_dict(data["model"])
    state.optimizer.load_state_dict(data["optimizer"])
    if state.scheduler is not None and "scheduler" in data:
        state.scheduler.load_state_dict(data["scheduler"])
    state.epoch = int(data["epoch"])
    state.history = list(data["history"])
    state.best_score = float(data.get("best_score", -math.inf))
    state.best_epoch = int(data.get("best_epoch", 0))
    if "rng" in data:
        state.generator.set_state(data["rng"])
