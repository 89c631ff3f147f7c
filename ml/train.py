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
from torch.optim.swa_utils import AveragedModel

from ml.augment import augment_batch
from ml.checkpoint import build_checkpoint, read_checkpoint, save_atomic
from ml.data import FaceArrays, balanced_class_weights
from ml.dynamics import DynamicsError, TrainingDynamics, dynamics_path, snapshot_epochs
from ml.evaluate import bf16_supported, evaluate, pick_device, predict_proba
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


def ema_multi_avg_fn(decay: float):
    """EMA update for ``AveragedModel`` whose decay warms up as (1 + n) / (10 + n), so that short runs are not
    dominated by the random initial weights (timm's ModelEmaV3 does the same)."""

    @torch.no_grad()
    def update(ema: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        n = float(num_averaged)
        weight = 1.0 - min(decay, (1.0 + n) / (10.0 + n))
        if torch.is_floating_point(ema[0]):
            torch._foreach_lerp_(ema, current, weight)
        else:  # integer buffers (batch-norm step counters) follow the model
            for e, c in zip(ema, current, strict=True):
                e.copy_(c)

    return update


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
        # PyTorch divides by pct_start * total_steps - 1, which is 0 for exactly 5 steps at 0.2: warm up 1.25 steps.
        pct_start = 0.25 if epochs * steps_per_epoch == 5 else 0.2
        return torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=recipe.lr, epochs=epochs,
                                                   steps_per_epoch=steps_per_epoch, pct_start=pct_start), True
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
    ema: AveragedModel | None = None  # its ``.module`` is what gets evaluated and saved when the recipe asks for EMA
    epoch: int = 0  # epochs completed
    history: list[dict] = field(default_factory=list)
    best_score: float = -math.inf
    best_epoch: int = 0
    bad_epochs: int = 0  # validated epochs since the best one (early stopping)

    @property
    def eval_model(self) -> FerModel:
        return self.ema.module if self.ema is not None else self.model


def train_size(recipe: Recipe, epoch: int, epochs: int) -> int | None:
    """Side length to train at in 0-based ``epoch`` (None: the model's own input size)."""
    if not recipe.progressive_resize:
        return None
    small, large = recipe.progressive_resize
    ramp = max(1, round(recipe.progressive_until * epochs))
    if epoch >= ramp:
        return int(large)
    return int(round((small + (large - small) * epoch / ramp) / 4) * 4)


def validate_epoch(recipe: Recipe, epoch: int, epochs: int) -> bool:
    """Whether 1-based ``epoch`` is validated: every ``eval_every``-th, and every one in the last fifth."""
    return epoch % max(recipe.eval_every, 1) == 0 or epoch > epochs - max(1, epochs // 5)


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
                    progress: Progress | None = None, show_progress: bool = False, size: int | None = None,
                    epochs: int | None = None, dynamics: TrainingDynamics | None = None) -> dict:
    """One pass over ``images``; with ``dynamics``, each row's margin in this pass is recorded there."""
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
        x = augment_batch(x, recipe.augment, gen if device.type == "cpu" else None, out_size=size)
        x = model.preprocessing.apply(x, resize=size is None).contiguous(memory_format=torch.channels_last)
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
        if dynamics is not None:
            dynamics.record_margins(state.epoch, idx, logits, labels[idx].to(device))
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        state.optimizer.step()
        if state.ema is not None:
            state.ema.update_parameters(model)
        if state.scheduler is not None and state.per_step:
            state.scheduler.step()
        total_loss += loss.item() * len(idx)
        hard = y if y.ndim == 1 else y.argmax(1)
        correct += (logits.argmax(1) == hard).sum().item()
        seen += len(idx)
        if progress is not None and (step % 20 == 0 or step == steps - 1):
            progress({"kind": "batch", "epoch": state.epoch + 1, "step": step + 1, "steps": steps,
                      "loss": total_loss / seen, **({"epochs": epochs} if epochs else {})})
    seconds = time.perf_counter() - start
    return {"train_loss": total_loss / max(seen, 1), "train_accuracy": correct / max(seen, 1),
            "seconds": seconds, "images_per_s": seen / seconds if seconds else 0.0,
            "lr": state.optimizer.param_groups[0]["lr"], "size": size or model.preprocessing.input_size}


def build_state(recipe: Recipe, train_labels: np.ndarray, *, steps_per_epoch: int, epochs: int, seed: int,
                device: torch.device | None = None, arch_overrides: dict | None = None,
                init_from: str | Path | None = None) -> TrainState:
    device = device or pick_device()
    gen = seed_everything(seed)
    model = create_model(recipe.arch, **{**recipe.arch_kwargs, **(arch_overrides or {})})
    if init_from is not None:  # before the EMA copies the model, so that the average starts from these weights
        _load_initial_weights(model, recipe, init_from)
    model.to(device).to(memory_format=torch.channels_last)
    optimizer = make_optimizer(recipe, model)
    scheduler, per_step = make_scheduler(recipe, optimizer, steps_per_epoch, epochs)
    weights = None
    if recipe.class_weights == "balanced":
        weights = torch.tensor(balanced_class_weights(train_labels), dtype=torch.float32, device=device)
    elif recipe.class_weights is not None:
        raise ValueError(f"unknown class_weights {recipe.class_weights!r}")
    amp = recipe.amp_bf16 and bf16_supported(device)
    ema = None
    if recipe.ema_decay:  # buffers too, so the averaged model carries batch-norm statistics of its own
        ema = AveragedModel(model, multi_avg_fn=ema_multi_avg_fn(recipe.ema_decay), use_buffers=True)
    return TrainState(model, optimizer, scheduler, per_step, device, recipe, weights, gen, amp, ema)


def _load_initial_weights(model: FerModel, recipe: Recipe, path: str | Path) -> None:
    """Warm start: the weights and preprocessing of a checkpoint of the same architecture."""
    from ml.checkpoint import CheckpointError, load_checkpoint

    try:
        loaded = load_checkpoint(path)
    except CheckpointError as exc:
        raise TrainingError(f"cannot start from {path}: {exc}") from None
    if loaded.data["arch"] != recipe.arch:
        raise TrainingError(f"cannot start from {path}: it is a {loaded.data['arch']} checkpoint and the recipe trains "
                            f"{recipe.arch}")
    model.load_state_dict(loaded.model.state_dict())
    model.preprocessing = loaded.model.preprocessing


def _state_path(out: Path) -> Path:
    return out.with_name(out.name + ".state")


def fit(train: FaceArrays, val: FaceArrays | None, recipe: Recipe, out: str | Path, *, epochs: int | None = None,
        seed: int = 0, resume: bool = False, device: torch.device | str | None = None,
        progress: Progress | None = None, show_progress: bool = False, half: bool = False,
        arch_overrides: dict | None = None, extra: dict | None = None, init_from: str | Path | None = None,
        record_dynamics: bool = True) -> dict:
    """Train, checkpoint every epoch (``<out>.state``, resumable), and write the best-on-``val`` model to ``out``.

    ``extra`` (a run's ids, say) is added to the run record that both checkpoints carry. ``init_from`` is the
    checkpoint a ``warm_start`` recipe starts from (required there, refused elsewhere). ``record_dynamics``: how the
    model saw each training row's label along the run (``ml.dynamics``), written to ``dynamics_path(out)`` every
    epoch. Returns the final summary: history, best epoch, the best model's validation metrics and the dynamics'
    path and cost.
    """
    if len(train) == 0:
        raise TrainingError("no training images")
    if recipe.warm_start and init_from is None:
        raise TrainingError(f"recipe {recipe.name!r} starts from existing weights: give the checkpoint to start from")
    if init_from is not None and not recipe.warm_start:
        raise TrainingError(f"recipe {recipe.name!r} trains from scratch; it does not take starting weights")
    out = Path(out)
    epochs = epochs or recipe.epochs
    device = pick_device(device if isinstance(device, str) else None) if not isinstance(device, torch.device) \
        else device
    steps = max(len(train) // recipe.batch_size, 1)
    state = build_state(recipe, train.labels, steps_per_epoch=steps, epochs=epochs, seed=seed, device=device,
                        arch_overrides=arch_overrides, init_from=init_from)
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
              "n_val": len(val) if val is not None else 0, "device": str(device), "bf16": state.amp,
              **({"init_from": str(init_from)} if init_from is not None else {}), **(extra or {})}
    has_val = val is not None and len(val) > 0
    dynamics = _dynamics_for(out, train, epochs, resumed=state.epoch) if record_dynamics else None
    snapshots = snapshot_epochs(epochs)
    while state.epoch < epochs:
        size = train_size(recipe, state.epoch, epochs)
        stats = train_one_epoch(state, images, labels, soft, progress, show_progress, size=size, epochs=epochs,
                                dynamics=dynamics)
        state.epoch += 1
        entry = {"epoch": state.epoch, **stats}
        if dynamics is not None:
            if state.epoch in snapshots:
                _snapshot(dynamics, state, train, device)
            dynamics.save(dynamics_path(out))
        score = None
        if has_val and validate_epoch(recipe, state.epoch, epochs):
            m = evaluate(state.eval_model, val.images, val.labels, device=device)
            entry.update(val_accuracy=m["accuracy"], val_macro_f1=m["macro_f1"], val_loss=m["nll"])
            score = m["accuracy"]
        elif not has_val:
            score = -stats["train_loss"]
        if score is not None:
            if state.scheduler is not None and not state.per_step:
                state.scheduler.step(score)
            if score > state.best_score:
                state.best_score, state.best_epoch, state.bad_epochs = score, state.epoch, 0
                save_atomic(build_checkpoint(state.eval_model, recipe=record, epoch=state.epoch,
                                             history=state.history + [entry], half=half), out)
            else:
                state.bad_epochs += 1
        state.history.append(entry)
        resume_state = {"best_score": state.best_score, "best_epoch": state.best_epoch,
                        "rng": state.generator.get_state(), "bad_epochs": state.bad_epochs}
        if state.ema is not None:
            resume_state["ema"] = state.ema.state_dict()
        save_atomic(build_checkpoint(state.model, recipe=record, epoch=state.epoch, history=state.history,
                                     optimizer=state.optimizer, scheduler=state.scheduler, extra=resume_state),
                    _state_path(out))
        if progress is not None:
            progress({"kind": "epoch", "epochs": epochs, **entry})
        if recipe.early_stopping_patience and state.bad_epochs >= recipe.early_stopping_patience:
            break
    summary = {"history": state.history, "best_epoch": state.best_epoch, "epochs_run": state.epoch,
               "bf16": state.amp, "device": str(device)}
    if dynamics is not None and state.epoch and state.epoch not in dynamics.snapshots:  # stopped early
        _snapshot(dynamics, state, train, device)
        dynamics.save(dynamics_path(out))
    if dynamics is not None:
        summary["dynamics"] = {"path": str(dynamics_path(out)), "snapshot_epochs": sorted(dynamics.snapshots),
                               "snapshot_seconds": round(dynamics.seconds, 2)}
    if has_val:
        best = read_checkpoint(out)
        scores = [h["val_accuracy"] for h in state.history if "val_accuracy" in h]
        summary["best_val_accuracy"] = max(scores) if scores else None
        summary["best_recipe"] = best["recipe"]
    return summary


def _dynamics_for(out: Path, train: FaceArrays, epochs: int, *, resumed: int) -> TrainingDynamics:
    """A resumed run goes on with the dynamics it wrote; a fresh one (or one whose file does not fit) starts anew."""
    path = dynamics_path(out)
    if resumed and path.is_file():
        try:
            saved = TrainingDynamics.load(path)
        except DynamicsError:
            saved = None
        if saved is not None and saved.matches(train.labels, epochs):
            return saved
    return TrainingDynamics.empty(train.rows, train.labels, epochs)


def _snapshot(dynamics: TrainingDynamics, state: TrainState, train: FaceArrays, device: torch.device) -> None:
    """Every training row's probabilities now, from a clean pass of the model that is evaluated and saved."""
    started = time.perf_counter()
    probs = predict_proba(state.eval_model, train.images, device=device, amp_bf16=True)
    dynamics.record_snapshot(state.epoch, probs, time.perf_counter() - started)


def _restore(state: TrainState, data: dict) -> None:
    state.model.load_state_dict(data["model"])
    state.optimizer.load_state_dict(data["optimizer"])
    if state.scheduler is not None and "scheduler" in data:
        state.scheduler.load_state_dict(data["scheduler"])
    state.epoch = int(data["epoch"])
    state.history = list(data["history"])
    state.best_score = float(data.get("best_score", -math.inf))
    state.best_epoch = int(data.get("best_epoch", 0))
    state.bad_epochs = int(data.get("bad_epochs", 0))
    if state.ema is not None and "ema" in data:
        state.ema.load_state_dict(data["ema"])
    if "rng" in data:
        state.generator.set_state(data["rng"])
