"""Grad-CAM and its relatives over pytorch-grad-cam, batched, for any target class.

Each call opens the CAM object in a ``with`` block so its forward/backward hooks are released afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytorch_grad_cam as pgc
import torch
from PIL import Image
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

from ml.evaluate import to_input
from ml.labels import NUM_CLASSES
from ml.models import CAM_LAYERS, DEFAULT_CAM_LAYER, FerModel, cam_layer

METHODS: dict[str, type] = {
    "gradcam": pgc.GradCAM,
    "gradcam++": pgc.GradCAMPlusPlus,
    "hirescam": pgc.HiResCAM,
    "scorecam": pgc.ScoreCAM,
    "eigencam": pgc.EigenCAM,
    "layercam": pgc.LayerCAM,
    "xgradcam": pgc.XGradCAM,
    "eigengradcam": pgc.EigenGradCAM,
    "ablationcam": pgc.AblationCAM,
    "gradcamelementwise": pgc.GradCAMElementWise,
    "fullgrad": pgc.FullGrad,
}
DEFAULT_METHOD = "gradcam"
# The methods that may hook the fine (12x12) layer: both weight each activation by its own gradient, so a shallow
# layer's map stays sharp. Methods that average gradients over the map (Grad-CAM and kin) or project activations
# (Eigen-CAM) give noise there, and ScoreCAM/AblationCAM would cost one forward pass per channel of a wider map.
LAYER_METHODS: dict[str, frozenset[str]] = {
    "last": frozenset(METHODS),
    "fine": frozenset({"hirescam", "layercam"}),
}
assert set(LAYER_METHODS) == set(CAM_LAYERS)


def layer_check(method: str, layer: str) -> None:
    """``ValueError`` naming the choices when ``layer`` is unknown or does not suit ``method``."""
    if layer not in LAYER_METHODS:
        raise ValueError(f"unknown CAM layer {layer!r}; available: {', '.join(CAM_LAYERS)}")
    if method not in LAYER_METHODS[layer]:
        raise ValueError(f"CAM method {method!r} does not suit the {layer!r} layer; use one of: "
                         f"{', '.join(sorted(LAYER_METHODS[layer]))}")


def random_maps(n: int, *, seed: int = 0, size: int = 48) -> np.ndarray:
    """The baseline a CAM method must beat: uniform random maps (N, size, size) in [0, 1], reproducible by ``seed``."""
    return np.random.default_rng(seed).random((n, size, size), dtype=np.float32)


@dataclass
class Explanation:
    maps: np.ndarray  # float32 (N, 48, 48) in [0, 1]
    overlays: np.ndarray  # uint8 (N, S, S, 3) colour overlays, S = ``overlay_size``
    targets: list[int]  # the class each map explains
    probabilities: np.ndarray  # (N, 7) softmax of the model on the un-augmented input


def _colormap(maps: np.ndarray) -> np.ndarray:
    """Jet-like colormap without OpenCV or matplotlib state: (N, H, W) in [0, 1] -> uint8 (N, H, W, 3)."""
    x = np.clip(maps, 0, 1)
    r = np.clip(1.5 - np.abs(4 * x - 3), 0, 1)
    g = np.clip(1.5 - np.abs(4 * x - 2), 0, 1)
    b = np.clip(1.5 - np.abs(4 * x - 1), 0, 1)
    return (np.stack([r, g, b], axis=-1) * 255).astype(np.uint8)


def make_overlays(faces: np.ndarray, maps: np.ndarray, size: int = 192, alpha: float = 0.45) -> np.ndarray:
    """Upscale faces (nearest, crisp) and maps (bilinear) to ``size`` and blend the coloured map over the face."""
    out = np.empty((len(faces), size, size, 3), dtype=np.uint8)
    for i, (face, cam) in enumerate(zip(faces, maps, strict=True)):
        grey = np.asarray(Image.fromarray(face).resize((size, size), Image.NEAREST), dtype=np.float32)
        heat = np.asarray(Image.fromarray((cam * 255).astype(np.uint8)).resize((size, size), Image.BILINEAR),
                          dtype=np.float32) / 255.0
        colour = _colormap(heat[None])[0].astype(np.float32)
        out[i] = np.clip((1 - alpha) * grey[..., None] + alpha * colour, 0, 255).astype(np.uint8)
    return out


def explain(model: FerModel, faces: np.ndarray, *, method: str = DEFAULT_METHOD, targets: list[int] | None = None,
            layer: str = DEFAULT_CAM_LAYER, overlay_size: int = 192, batch_size: int = 64) -> Explanation:
    """Maps for uint8 faces (N, 48, 48). ``targets``: one class per face, or None for the predicted class.
    ``layer``: ``last`` (the coarse last stage) or ``fine`` (the stage before it; only the ``LAYER_METHODS``)."""
    if method not in METHODS:
        raise ValueError(f"unknown CAM method {method!r}; available: {', '.join(sorted(METHODS))}")
    layer_check(method, layer)
    target_layer = cam_layer(model, layer).module
    faces = np.asarray(faces, dtype=np.uint8)
    if targets is not None:
        _check_targets(targets, len(faces))
    device = next(model.parameters()).device
    model.eval()
    maps, probs, chosen = [], [], []
    for start in range(0, len(faces), batch_size):
        x = to_input(faces[start:start + batch_size], model, device)
        with torch.inference_mode():
            p = torch.softmax(model(x).float(), dim=1).cpu().numpy()
        batch_targets = targets[start:start + batch_size] if targets is not None else p.argmax(1).tolist()
        with METHODS[method](model=model, target_layers=[target_layer]) as cam:
            if hasattr(cam, "batch_size"):
                cam.batch_size = 64  # ScoreCAM/AblationCAM: masked copies per forward pass
            grey = cam(input_tensor=x.clone().requires_grad_(True),
                       targets=[ClassifierOutputTarget(int(t)) for t in batch_targets])
        maps.append(_to_48(grey))
        probs.append(p)
        chosen += [int(t) for t in batch_targets]
    maps_arr = np.concatenate(maps).astype(np.float32)
    return Explanation(maps_arr, make_overlays(faces, maps_arr, overlay_size), chosen, np.concatenate(probs))


def _check_targets(targets: list[int], n_faces: int) -> None:
    """Refuse bad targets before any CAM runs: pytorch-grad-cam's ``with`` block swallows the IndexError of an
    out-of-range class, which leaves the map unbound or left over from the previous batch (and -1 would silently
    explain the last class)."""
    if len(targets) != n_faces:
        raise ValueError(f"{n_faces} faces but {len(targets)} targets")
    for i, t in enumerate(targets):
        if not 0 <= int(t) < NUM_CLASSES:
            raise ValueError(f"target {int(t)} (face {i}) out of range 0..{NUM_CLASSES - 1}")


def _to_48(grey: np.ndarray) -> np.ndarray:
    if grey.shape[-1] == 48:
        return grey
    t = torch.from_numpy(grey).unsqueeze(1)
    return torch.nn.functional.interpolate(t, size=(48, 48), mode="bilinear", align_corners=False).squeeze(1).numpy()


def map_to_uint8(cam: np.ndarray) -> np.ndarray:
    """The compact stored form of a 48x48 map."""
    return (np.clip(cam, 0, 1) * 255).round().astype(np.uint8)


def save_overlay_png(overlay: np.ndarray, path: str | Path) -> None:
    Image.fromarray(overlay).save(path, format="PNG", optimize=True)
