"""PNG plots for reports: the normalized confusion matrix and training curves (matplotlib, no display)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ml.labels import CLASSES  # noqa: E402


def plot_confusion(normalized: list[list[float]] | np.ndarray, path: str | Path,
                   title: str = "Confusion (row-normalized)"):
    cm = np.asarray(normalized, dtype=float)
    fig, ax = plt.subplots(figsize=(6, 5), dpi=110)
    im = ax.imshow(cm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(CLASSES)), CLASSES, rotation=45, ha="right")
    ax.set_yticks(range(len(CLASSES)), CLASSES)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{cm[i, j]:.2f}", ha="center", va="center", fontsize=8,
                    color="white" if cm[i, j] > 0.5 else "black")
    ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


def _series(history: list[dict], key: str) -> tuple[list[int], list[float]]:
    """Epochs that recorded ``key`` and its values: recipes may validate only every few epochs."""
    points = [(h["epoch"], h[key]) for h in history if h.get(key) is not None]
    return [e for e, _ in points], [v for _, v in points]


def plot_history(history: list[dict], path: str | Path, title: str = "Training curves"):
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.5), dpi=110)
    ax1.plot(epochs, [h["train_loss"] for h in history], label="train loss")
    if any("val_loss" in h for h in history):
        ax1.plot(*_series(history, "val_loss"), marker=".", label="PublicTest NLL")
    ax1.set_xlabel("epoch")
    ax1.legend()
    ax2.plot(epochs, [h["train_accuracy"] for h in history], label="train accuracy (augmented)")
    if any("val_accuracy" in h for h in history):
        ax2.plot(*_series(history, "val_accuracy"), marker=".", label="PublicTest accuracy")
        ax2.plot(*_series(history, "val_macro_f1"), marker=".", label="PublicTest macro-F1")
    ax2.set_xlabel("epoch")
    ax2.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)
