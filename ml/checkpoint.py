"""Checkpoints: one dict of tensors and plain values, loaded with ``weights_only=True``, written atomically."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ml.files import atomic_open
from ml.labels import CLASSES
from ml.models import FerModel, Preprocessing, create_model

FORMAT = "ferplatform-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a usable ferplatform checkpoint; the message says why."""


@dataclass
class LoadedCheckpoint:
    model: FerModel
    data: dict  # the raw checkpoint dict (optimizer state, history, recipe, ...)

    @property
    def preprocessing(self) -> Preprocessing:
        return self.model.preprocessing

    @property
    def classes(self) -> list[str]:
        return list(self.data["classes"])


def save_atomic(obj: dict, path: str | Path) -> None:
    """Write to an unnamed (or temp) file in the same directory, fsync, then rename over ``path``: readers never see
    half a file, and a full disk leaves no partial file (``ml.files.FileWriteError`` says so)."""
    with atomic_open(path, what="a checkpoint") as fh:
        torch.save(obj, fh)


def build_checkpoint(model: FerModel, *, recipe: dict, epoch: int, history: list[dict], optimizer=None, scheduler=None,
                     extra: dict | None = None, half: bool = False) -> dict:
    """``half`` stores float weights as float16 (the shipped checkpoint); they load back as float32."""
    state = _stored_weights(model.state_dict(), half=half)
    ckpt = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": model.arch,
        "arch_kwargs": _plain(model.arch_kwargs),
        "classes": list(CLASSES),
        "preprocessing": model.preprocessing.as_dict(),
        "pretrained": bool(getattr(model, "pretrained", False)),
        "model": state,
        "recipe": recipe,
        "epoch": epoch,
        "history": history,
    }
    if optimizer is not None:
        ckpt["optimizer"] = optimizer.state_dict()
    if scheduler is not None:
        ckpt["scheduler"] = scheduler.state_dict()
    ckpt.update(extra or {})
    return ckpt


def _stored_weights(state: dict, *, half: bool) -> dict:
    return {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
            for k, v in state.items()}


def halve_checkpoint(src: str | Path, dst: str | Path) -> dict:
    """Store a finished checkpoint's float weights as float16, as ``train --half`` would have stored them (the same
    rounding), and leave the rest as it was. Returns the files' sizes in bytes; the new file is loaded once to check
    it."""
    data = read_checkpoint(src)
    data["model"] = _stored_weights(data["model"], half=True)
    save_atomic(data, dst)
    load_checkpoint(dst)
    return {"bytes_before": Path(src).stat().st_size, "bytes_after": Path(dst).stat().st_size}


def _plain(d: dict) -> dict:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}


def read_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for corrupt or foreign files
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a ferplatform checkpoint (no '{FORMAT}' marker)")
    if data.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format {data['format_version']} is newer than this code supports")
    return data


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> LoadedCheckpoint:
    """Rebuild the model from a checkpoint; raise ``CheckpointError`` for anything that does not fit."""
    data = read_checkpoint(path)
    kwargs = dict(data.get("arch_kwargs") or {})
    kwargs.pop("pretrained_path", None)  # the trained weights below replace the ImageNet ones
    try:
        model = create_model(data["arch"], **kwargs)
        state = {k: v.float() if v.is_floating_point() else v for k, v in data["model"].items()}
        model.load_state_dict(state)
    except (KeyError, ValueError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"{path}: weights do not fit architecture {data.get('arch')!r} ({exc})"[:400]) from None
    model.preprocessing = Preprocessing.from_dict(data["preprocessing"])
    model.pretrained = bool(data.get("pretrained", False))
    model.to(device).eval()
    return LoadedCheckpoint(model, data)
