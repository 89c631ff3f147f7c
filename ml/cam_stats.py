"""Statistics over stored CAM maps: class-average maps, their pictures, and ROAD faithfulness scores.

Pure numpy / matplotlib / PyTorch: callers pass arrays and a model, never database rows.
"""

from __future__ import annotations

import io
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from pytorch_grad_cam.metrics.road import ROADCombined  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget  # noqa: E402

from ml.evaluate import to_input  # noqa: E402
from ml.models import FerModel  # noqa: E402

ROAD_PERCENTILES: tuple[int, ...] = (20, 40, 60, 80)


class MapAverager:
    """Running means of 8-bit maps per key (a class, a confusion cell), in constant memory."""

    def __init__(self, shape: tuple[int, int] = (48, 48)) -> None:
        self.shape = shape
        self._sums: dict[Hashable, np.ndarray] = {}
        self._counts: dict[Hashable, int] = {}

    def add(self, key: Hashable, cam: np.ndarray | bytes) -> None:
        if isinstance(cam, (bytes, bytearray, memoryview)):
            cam = np.frombuffer(bytes(cam), dtype=np.uint8).reshape(self.shape)
        if key not in self._sums:
            self._sums[key] = np.zeros(self.shape, dtype=np.float64)
            self._counts[key] = 0
        self._sums[key] += cam
        self._counts[key] += 1

    def count(self, key: Hashable) -> int:
        return self._counts.get(key, 0)

    def mean(self, key: Hashable) -> np.ndarray | None:
        """float32 map in [0, 1], or None when nothing was added under ``key``."""
        n = self._counts.get(key, 0)
        return (self._sums[key] / (255.0 * n)).astype(np.float32) if n else None

    def keys(self) -> list[Hashable]:
        return list(self._sums)


def map_grid_png(panels: Sequence[tuple[str, np.ndarray | None]], *, columns: int = 7,
                 title: str = "") -> bytes:
    """One PNG with a jet-coloured panel per (caption, map in [0, 1]); a None map is drawn as an empty panel."""
    columns = max(1, min(columns, len(panels) or 1))
    rows = max(1, -(-len(panels) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.7 * columns, 1.95 * rows + (0.3 if title else 0)), dpi=100,
                             squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (caption, cam) in zip(axes.flat, panels, strict=False):
        if cam is not None:
            ax.imshow(cam, cmap="jet", vmin=0, vmax=1, interpolation="bilinear")
        else:
            ax.text(0.5, 0.5, "no maps", ha="center", va="center", fontsize=8, color="grey",
                    transform=ax.transAxes)
        ax.set_title(caption, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def road_scores(model: FerModel, faces: np.ndarray, maps: np.ndarray, targets: Sequence[int], *,
                percentiles: Sequence[int] = ROAD_PERCENTILES, batch_size: int = 32,
                seed: int | None = 0) -> np.ndarray:
    """pytorch-grad-cam's ROAD (combined MoRF/LeRF, softmax scores) for each face: higher means the map points at
    pixels the model really uses. ``faces`` uint8 (N, 48, 48), ``maps`` (N, 48, 48) uint8 or floats in [0, 1].
    ROAD's imputer adds noise: ``seed`` fixes it (None: unseeded), so two maps of the same faces are compared under
    the same noise and a figure can be measured again."""
    faces = np.asarray(faces, dtype=np.uint8)
    maps = np.asarray(maps)
    maps = maps.astype(np.float32) / 255.0 if maps.dtype == np.uint8 else maps.astype(np.float32)
    if not (len(faces) == len(maps) == len(targets)):
        raise ValueError(f"{len(faces)} faces, {len(maps)} maps and {len(targets)} targets differ in length")
    device = next(model.parameters()).device
    model.eval()
    metric = ROADCombined(percentiles=list(percentiles))
    generator_state = torch.random.get_rng_state()
    if seed is not None:
        torch.manual_seed(seed)
    scores = []
    for start in range(0, len(faces), batch_size):
        x = to_input(faces[start:start + batch_size], model, device)
        cams = torch.from_numpy(maps[start:start + batch_size]).unsqueeze(1)
        if cams.shape[-2:] != x.shape[-2:]:  # transfer models take larger inputs than the 48x48 maps
            cams = torch.nn.functional.interpolate(cams, size=x.shape[-2:], mode="bilinear", align_corners=False)
        batch_targets = [ClassifierOutputSoftmaxTarget(int(t)) for t in targets[start:start + batch_size]]
        scores.append(np.asarray(metric(x, cams.squeeze(1).numpy(), batch_targets, model), dtype=np.float32))
    if seed is not None:
        torch.random.set_rng_state(generator_state)  # leave the caller's random stream as it was
    return np.concatenate(scores) if scores else np.zeros(0, dtype=np.float32)


@dataclass(frozen=True)
class BaselineComparison:
    """Per-face ROAD of a CAM method against the random-map baseline on the same faces."""

    mean: float
    std: float
    baseline_mean: float
    beats: float  # share of faces whose map scores above the random map's
    beats_per_class: dict[int, tuple[int, int]]  # class -> (faces beating the baseline, faces)


def compare_to_baseline(scores: np.ndarray, baseline: np.ndarray, targets: Sequence[int]) -> BaselineComparison:
    """Summarise per-face ``scores`` against the ``baseline`` scores of the same faces, overall and per target
    class (a tie does not beat the baseline)."""
    scores, baseline = np.asarray(scores, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.int64)
    if not (len(scores) == len(baseline) == len(targets)) or not len(scores):
        raise ValueError(f"{len(scores)} scores, {len(baseline)} baseline scores and {len(targets)} targets: "
                         "need as many of each, at least one")
    wins = scores > baseline
    per_class = {int(c): (int(wins[targets == c].sum()), int((targets == c).sum())) for c in np.unique(targets)}
    return BaselineComparison(float(scores.mean()), float(scores.std()), float(baseline.mean()), float(wins.mean()),
                              per_class)
