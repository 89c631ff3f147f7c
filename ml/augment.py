"""Per-sample random augmentation done in batches on tensors.

Every geometric transform of a batch (flip, rotation, zoom, shear, translation, resized crop, perspective, elastic
warp) is folded into one sampling grid and applied with a single ``grid_sample`` call; photometric jitter and
random erasing are elementwise. No per-image Python runs in the training loop.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    hflip: bool = True
    rotation_deg: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)  # zoom factor range (>1 enlarges the face)
    translate: float = 0.0  # fraction of the image side
    shear_deg: float = 0.0
    resized_crop: tuple[float, float] | None = None  # area fraction range, as torchvision RandomResizedCrop
    perspective: float = 0.0  # max corner displacement as a fraction of the side
    elastic_alpha: float = 0.0  # displacement magnitude in pixels
    elastic_grid: int = 6  # coarse noise resolution; lower is smoother
    brightness: float = 0.0  # additive, fraction of range
    contrast: float = 0.0  # multiplicative, +- fraction
    erasing_p: float = 0.0
    erasing_area: tuple[float, float] = (0.02, 0.2)

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> AugmentConfig:
        d = dict(d)
        for key in ("scale", "resized_crop", "erasing_area"):
            if d.get(key) is not None:
                d[key] = tuple(d[key])
        return cls(**d)

    @property
    def geometric(self) -> bool:
        return bool(self.hflip or self.rotation_deg or self.scale != (1.0, 1.0) or self.translate or self.shear_deg
                    or self.resized_crop or self.perspective or self.elastic_alpha)


def _uniform(n: int, lo: float, hi: float, gen: torch.Generator | None, device) -> torch.Tensor:
    return torch.rand(n, generator=gen, device=device) * (hi - lo) + lo


def _affine_matrices(n: int, cfg: AugmentConfig, gen: torch.Generator | None, device) -> torch.Tensor:
    """(n, 2, 3) matrices mapping output coordinates to input coordinates in [-1, 1] space."""
    angle = _uniform(n, -cfg.rotation_deg, cfg.rotation_deg, gen, device) * math.pi / 180
    shear = _uniform(n, -cfg.shear_deg, cfg.shear_deg, gen, device) * math.pi / 180
    zoom = _uniform(n, cfg.scale[0], cfg.scale[1], gen, device)
    sx = sy = 1.0 / zoom  # sampling a smaller input window enlarges the content
    tx = _uniform(n, -cfg.translate, cfg.translate, gen, device) * 2
    ty = _uniform(n, -cfg.translate, cfg.translate, gen, device) * 2
    if cfg.resized_crop is not None:
        area = _uniform(n, cfg.resized_crop[0], cfg.resized_crop[1], gen, device)
        log_ratio = _uniform(n, math.log(3 / 4), math.log(4 / 3), gen, device)
        ratio = torch.exp(log_ratio)
        w = torch.sqrt(area * ratio).clamp(max=1.0)
        h = torch.sqrt(area / ratio).clamp(max=1.0)
        sx, sy = sx * w, sy * h
        tx = tx + (torch.rand(n, generator=gen, device=device) * 2 - 1) * (1 - w)
        ty = ty + (torch.rand(n, generator=gen, device=device) * 2 - 1) * (1 - h)
    if cfg.hflip:
        flip = torch.where(torch.rand(n, generator=gen, device=device) < 0.5, -1.0, 1.0)
    else:
        flip = torch.ones(n, device=device)
    cos, sin, tan = torch.cos(angle), torch.sin(angle), torch.tan(shear)
    theta = torch.zeros(n, 2, 3, device=device)
    theta[:, 0, 0] = cos * sx * flip
    theta[:, 0, 1] = (-sin + cos * tan) * sy
    theta[:, 1, 0] = sin * sx * flip
    theta[:, 1, 1] = (cos + sin * tan) * sy
    theta[:, 0, 2] = tx
    theta[:, 1, 2] = ty
    return theta


def _perspective_offsets(grid: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None) -> torch.Tensor:
    """Bilinear blend of random corner displacements: a cheap, smooth stand-in for a projective warp."""
    n, h, w, _ = grid.shape
    corners = (torch.rand(n, 4, 2, generator=gen, device=grid.device) * 2 - 1) * cfg.perspective * 2
    u = torch.linspace(0, 1, w, device=grid.device).view(1, 1, w, 1)
    v = torch.linspace(0, 1, h, device=grid.device).view(1, h, 1, 1)
    tl, tr, bl, br = (corners[:, i].view(n, 1, 1, 2) for i in range(4))
    return (1 - v) * ((1 - u) * tl + u * tr) + v * ((1 - u) * bl + u * br)


def _elastic_offsets(grid: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None) -> torch.Tensor:
    n, h, w, _ = grid.shape
    coarse = torch.randn(n, 2, cfg.elastic_grid, cfg.elastic_grid, generator=gen, device=grid.device)
    field = F.interpolate(coarse, size=(h, w), mode="bicubic", align_corners=False)
    return field.permute(0, 2, 3, 1) * (cfg.elastic_alpha * 2 / max(h, w))


def augment_batch(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None = None,
                  out_size: int | None = None) -> torch.Tensor:
    """``x``: float (N, C, H, W) in [0, 1]. Returns an augmented batch, each sample drawn independently, of the same
    shape or, with ``out_size``, resampled to ``out_size`` x ``out_size`` by the same grid (progressive resizing costs
    nothing extra)."""
    n = x.shape[0]
    size = [n, x.shape[1], out_size or x.shape[2], out_size or x.shape[3]]
    if cfg.geometric:
        theta = _affine_matrices(n, cfg, gen, x.device)
        grid = F.affine_grid(theta, size, align_corners=False)
        if cfg.perspective:
            grid = grid + _perspective_offsets(grid, cfg, gen)
        if cfg.elastic_alpha:
            grid = grid + _elastic_offsets(grid, cfg, gen)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
    elif list(x.shape) != size:
        x = F.interpolate(x, size=size[2:], mode="bilinear", align_corners=False, antialias=True)
    if cfg.contrast:
        c = _uniform(n, 1 - cfg.contrast, 1 + cfg.contrast, gen, x.device).view(n, 1, 1, 1)
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        x = (x - mean) * c + mean
    if cfg.brightness:
        x = x + _uniform(n, -cfg.brightness, cfg.brightness, gen, x.device).view(n, 1, 1, 1)
    if cfg.contrast or cfg.brightness:
        x = x.clamp(0.0, 1.0)
    if cfg.erasing_p:
        x = _random_erase(x, cfg, gen)
    return x


def _random_erase(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator | None) -> torch.Tensor:
    n, _, h, w = x.shape
    dev = x.device
    area = _uniform(n, cfg.erasing_area[0], cfg.erasing_area[1], gen, dev)
    ratio = torch.exp(_uniform(n, math.log(0.3), math.log(3.3), gen, dev))
    eh = (torch.sqrt(area * ratio) * h).clamp(1, h)
    ew = (torch.sqrt(area / ratio) * w).clamp(1, w)
    y0 = torch.rand(n, generator=gen, device=dev) * (h - eh)
    x0 = torch.rand(n, generator=gen, device=dev) * (w - ew)
    rows = torch.arange(h, device=dev).view(1, h, 1)
    cols = torch.arange(w, device=dev).view(1, 1, w)
    box = ((rows >= y0.view(n, 1, 1)) & (rows < (y0 + eh).view(n, 1, 1))
           & (cols >= x0.view(n, 1, 1)) & (cols < (x0 + ew).view(n, 1, 1)))
    apply = (torch.rand(n, generator=gen, device=dev) < cfg.erasing_p).view(n, 1, 1)
    noise = torch.rand(x.shape, generator=gen, device=dev)
    return torch.where((box & apply).unsqueeze(1), noise, x)
