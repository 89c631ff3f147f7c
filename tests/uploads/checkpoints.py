from __future__ import annotations

from pathlib import Path

import torch

from ml.checkpoint import build_checkpoint, save_atomic
from ml.models import create_model


def tiny_checkpoint_write(path: Path) -> Path:
    """A small untrained fer_vgg: fast on CPU, and enough to produce probabilities and heatmaps."""
    torch.manual_seed(0)
    model = create_model("fer_vgg", widths=(8, 16, 16, 32), depths=(1, 1, 1, 1))
    save_atomic(build_checkpoint(model, recipe={}, epoch=0, history=[]), path)
    return path
