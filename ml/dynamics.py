"""Training dynamics: how a model saw each training row's label along its run, recorded while it trains.

Two signals, both cheap next to the training itself:

- **margins**, every epoch, from the training passes themselves (the logits the loss is computed on, augmented):
  the assigned label's logit minus the largest other. A row whose label the model keeps arguing with has a low or
  negative margin throughout; averaged over the run this is the "area under the margin" (Pleiss et al., 2020).
  Free: the logits are there anyway. A row not drawn in an epoch (the dropped last batch) is NaN there.
- **snapshots**: class probabilities of every row from a clean pass (no augmentation, the evaluated model) at a few
  epochs, early ones before the model has memorised its labels as well as the last. A pass costs about a third of
  a training epoch, so ``snapshot_epochs`` takes at most one per ``SNAPSHOT_EPOCHS_EACH`` epochs (under 10 % of the
  run) and at most ``SNAPSHOTS_MAX``.

``fit`` writes them next to its checkpoint (``dynamics_path``), every epoch, so a resumed run goes on with them.
What ranks best from them is chosen on real relabels: ``benchmarks/bench_ferplus_ranking.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ml.labels import NUM_CLASSES

SNAPSHOTS_MAX = 4
SNAPSHOT_EPOCHS_EACH = 4  # a clean pass costs about 1/3 of an epoch: one per 4 epochs stays under 10 %
FORMAT = "ferplatform-dynamics-1"
MARGIN_LIMIT = 1000.0  # stored as float16 (at most 65504); a margin past this says nothing more


class DynamicsError(ValueError):
    """A dynamics file that cannot be read, or does not fit the run it is read for."""


def dynamics_path(checkpoint: str | Path) -> Path:
    checkpoint = Path(checkpoint)
    return checkpoint.with_name(checkpoint.name + ".dynamics.npz")


def snapshot_epochs(epochs: int) -> tuple[int, ...]:
    """The 1-based epochs after which every row's probabilities are taken: evenly spaced, ending with the last."""
    count = max(1, min(SNAPSHOTS_MAX, epochs // SNAPSHOT_EPOCHS_EACH))
    return tuple(sorted({max(1, round(epochs * (i + 1) / count)) for i in range(count)}))


def batch_margins(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Assigned logit minus the largest other, per row (float32)."""
    logits = logits.detach().float()
    assigned = logits.gather(1, labels.view(-1, 1)).squeeze(1)
    others = logits.scatter(1, labels.view(-1, 1), float("-inf")).amax(1)
    return assigned - others


@dataclass
class TrainingDynamics:
    rows: np.ndarray  # (n,) the rows' data rows in the source file
    labels: np.ndarray  # (n,) the labels trained on (hard)
    margins: np.ndarray  # (epochs, n) float16, NaN where not seen
    snapshots: dict[int, np.ndarray] = field(default_factory=dict)  # 1-based epoch -> (n, 7) float16
    seconds: float = 0.0  # spent on snapshots (margins cost nothing measurable)

    @classmethod
    def empty(cls, rows: np.ndarray, labels: np.ndarray, epochs: int) -> TrainingDynamics:
        n = len(labels)
        return cls(np.asarray(rows, dtype=np.int64), np.asarray(labels, dtype=np.int64),
                   np.full((epochs, n), np.nan, dtype=np.float16))

    @property
    def epochs(self) -> int:
        return self.margins.shape[0]

    def record_margins(self, epoch: int, index: torch.Tensor, logits: torch.Tensor, labels: torch.Tensor) -> None:
        """``epoch`` 0-based; ``index`` the batch's rows; ``labels`` their hard labels."""
        margins = batch_margins(logits, labels).clamp(-MARGIN_LIMIT, MARGIN_LIMIT)
        self.margins[epoch, index.cpu().numpy()] = margins.cpu().numpy()

    def record_snapshot(self, epoch: int, probabilities: np.ndarray, seconds: float = 0.0) -> None:
        if probabilities.shape != (len(self.labels), NUM_CLASSES):
            raise DynamicsError(f"a snapshot has shape {probabilities.shape}, expected {(len(self.labels), 7)}")
        self.snapshots[int(epoch)] = probabilities.astype(np.float16)
        self.seconds += seconds

    # --- what ranks from them -------------------------------------------------------------------------------

    def epochs_seen(self) -> int:
        """Epochs with at least one margin recorded (fewer than ``epochs`` after an early stop)."""
        return int((~np.isnan(self.margins)).any(axis=1).sum())

    def mean_margin(self) -> np.ndarray:
        """The area under the margin, per row (mean over the epochs it was seen; 0 where never seen)."""
        margins = self.margins.astype(np.float32)
        seen = ~np.isnan(margins)
        total = np.where(seen, margins, 0.0).sum(0)
        return np.divide(total, seen.sum(0), out=np.zeros(margins.shape[1], np.float32), where=seen.sum(0) > 0)

    def negative_epochs(self) -> tuple[np.ndarray, np.ndarray]:
        """Per row: in how many of the epochs it was seen its margin was negative, and how many it was seen."""
        margins = self.margins.astype(np.float32)
        seen = ~np.isnan(margins)
        return (np.where(seen, margins < 0, False).sum(0), seen.sum(0))

    def snapshot_probabilities(self, which: str = "mean") -> np.ndarray:
        """(n, 7) float32: ``first``, ``last``, ``early`` (the mean of those before the last) or ``mean`` (all)."""
        if not self.snapshots:
            raise DynamicsError("no snapshot was taken")
        epochs = sorted(self.snapshots)
        chosen = {"first": epochs[:1], "last": epochs[-1:], "mean": epochs,
                  "early": epochs[:-1] or epochs}.get(which)
        if chosen is None:
            raise DynamicsError(f"unknown snapshot choice {which!r}: first, last, early or mean")
        probs = np.mean([self.snapshots[e].astype(np.float32) for e in chosen], axis=0)
        return probs / probs.sum(1, keepdims=True)

    def row_signals(self, suggested: np.ndarray) -> list[dict]:
        """Per row, what a reviewer can read: in how many of the epochs it was seen its margin was negative (the
        model kept arguing with the label), and in how many snapshots the model read ``suggested``."""
        negative, seen = self.negative_epochs()
        epochs = sorted(self.snapshots)
        agree = sum((self.snapshots[e].argmax(1) == np.asarray(suggested)).astype(np.int64) for e in epochs) \
            if epochs else np.zeros(len(self.labels), dtype=np.int64)
        return [{"negative_epochs": int(negative[i]), "epochs": int(seen[i]), "snapshots_agree": int(agree[i]),
                 "snapshots": len(epochs)} for i in range(len(self.labels))]

    # --- file ---------------------------------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Whole or not at all (``ml.files.atomic_open``: a full disk leaves no partial file and says so), uncompressed
        (float16: about 3.4 MB per 60 epochs of 28,709 rows, and 0.4 MB per snapshot)."""
        from ml.files import atomic_open

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        epochs = np.array(sorted(self.snapshots), dtype=np.int64)
        snaps = (np.stack([self.snapshots[e] for e in epochs]) if len(epochs)
                 else np.zeros((0, len(self.labels), NUM_CLASSES), np.float16))
        with atomic_open(path, what="training dynamics") as fh:
            np.savez(fh, format=np.array(FORMAT), rows=self.rows, labels=self.labels, margins=self.margins,
                     snapshot_epochs=epochs, snapshots=snaps, seconds=np.array(self.seconds))

    @classmethod
    def load(cls, path: str | Path) -> TrainingDynamics:
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["format"]) != FORMAT:
                    raise DynamicsError(f"{path} is not a {FORMAT} file")
                epochs, snaps = data["snapshot_epochs"], data["snapshots"]
                return cls(data["rows"], data["labels"], data["margins"],
                           {int(e): snaps[i] for i, e in enumerate(epochs)}, float(data["seconds"]))
        except (OSError, KeyError, ValueError) as exc:
            if isinstance(exc, DynamicsError):
                raise
            raise DynamicsError(f"cannot read training dynamics {path}: {exc}") from None

    def matches(self, labels: np.ndarray, epochs: int) -> bool:
        """Whether this was recorded for a run on these labels over this many epochs (what resuming needs)."""
        return self.epochs == epochs and np.array_equal(self.labels, np.asarray(labels, dtype=np.int64))
