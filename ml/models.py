"""Model factories. Every model splits into ``forward_features`` (the last convolutional feature map, which Grad-CAM
hooks through ``cam_target_layer``) and ``forward_head`` (pooling and classifier), timm-style."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ml.labels import NUM_CLASSES

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class Preprocessing:
    """How raw 0-255 grey faces become model input; saved with every checkpoint so serving matches training."""

    input_size: int = 48
    channels: int = 1
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.25,)

    def as_dict(self) -> dict:
        return {"input_size": self.input_size, "channels": self.channels, "mean": list(self.mean),
                "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        return cls(int(d["input_size"]), int(d["channels"]), tuple(d["mean"]), tuple(d["std"]))

    def apply(self, x: torch.Tensor, resize: bool = True) -> torch.Tensor:
        """``x``: float tensor (N, 1, H, W) in [0, 1]. Returns normalized (N, C, S, S); with ``resize=False`` the
        spatial size is kept (training at a smaller size, see ``Recipe.progressive_resize``)."""
        if resize and (x.shape[-1] != self.input_size or x.shape[-2] != self.input_size):
            x = nn.functional.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear",
                                          align_corners=False, antialias=True)
        if self.channels != x.shape[1]:
            x = x.expand(-1, self.channels, -1, -1)
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        return (x - mean) / std


class FerModel(nn.Module):
    """Base class: subclasses set ``features`` (conv trunk), ``head`` and ``cam_target_layer``."""

    preprocessing: Preprocessing
    features: nn.Module
    head: nn.Module

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    @property
    def cam_target_layer(self) -> nn.Module:
        """The module whose activations Grad-CAM uses: the last block of the conv trunk."""
        return self.features[-1]


_REGISTRY: dict[str, Callable[..., FerModel]] = {}


def register(name: str) -> Callable[[Callable[..., FerModel]], Callable[..., FerModel]]:
    def wrap(fn: Callable[..., FerModel]) -> Callable[..., FerModel]:
        _REGISTRY[name] = fn
        return fn

    return wrap


def available_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs) -> FerModel:
    if name not in _REGISTRY:
        raise ValueError(f"unknown architecture {name!r}; available: {', '.join(available_models())}")
    model = _REGISTRY[name](**kwargs)
    model.arch = name
    model.arch_kwargs = dict(kwargs)
    return model


def count_trainable(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


# --- fer_cnn: the first seed paper's Keras CNN --------------------------------------------------------------------


def _conv_bn_relu(cin: int, cout: int, bias: bool = True) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=bias), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class FerCNN(FerModel):
    """conv32, conv64, pool, drop .25, conv128, conv256, pool, drop .25, flatten, dense256-BN-ReLU-drop .25, dense7.

    Keras ``Conv2D``/``Dense`` carry biases even before batch norm, so these do too (it changes the parameter count).
    """

    def __init__(self, in_chans: int = 1, num_classes: int = NUM_CLASSES, dropout: float = 0.25):
        super().__init__()
        self.preprocessing = Preprocessing(48, in_chans, (0.5,) * in_chans, (0.25,) * in_chans)
        self.features = nn.Sequential(
            nn.Sequential(*_conv_bn_relu(in_chans, 32), *_conv_bn_relu(32, 64),
                          nn.MaxPool2d(2), nn.Dropout(dropout)),
            nn.Sequential(*_conv_bn_relu(64, 128), *_conv_bn_relu(128, 256)),
        )
        # The pooling after the second pair belongs to the head so that Grad-CAM sees the 12x12 map at 24x24.
        self.head = nn.Sequential(
            nn.MaxPool2d(2), nn.Dropout(dropout), nn.Flatten(),
            nn.Linear(256 * 12 * 12, 256), nn.BatchNorm1d(256), nn.ReLU(inplace=True), nn.Dropout(dropout),
            nn.Linear(256, num_classes),
        )


@register("fer_cnn")
def fer_cnn(in_chans: int = 1, num_classes: int = NUM_CLASSES) -> FerModel:
    return FerCNN(in_chans=in_chans, num_classes=num_classes)


# --- vgg19_transfer: the second seed paper ------------------------------------------------------------------------


class VGG19Transfer(FerModel):
    """torchvision VGG19 trunk on pseudo-RGB input with a new head (Linear, ReLU, Dropout, Linear 7).

    ``pretrained_path`` is torchvision's published ``vgg19`` state dict on local disk; nothing is downloaded. Without
    it the trunk starts from random weights and ``self.pretrained`` is False so every report can say so.
    """

    def __init__(self, pretrained_path: str | None = None, input_size: int = 48, hidden: int = 256,
                 dropout: float = 0.5, num_classes: int = NUM_CLASSES):
        super().__init__()
        from torchvision.models import vgg19

        trunk = vgg19(weights=None)
        self.pretrained = False
        if pretrained_path:
            path = Path(pretrained_path)
            if not path.is_file():
                raise FileNotFoundError(f"VGG19 ImageNet weights not found: {path}")
            state = torch.load(path, map_location="cpu", weights_only=True)
            trunk.load_state_dict(state)
            self.pretrained = True
        self.preprocessing = Preprocessing(input_size, 3, IMAGENET_MEAN, IMAGENET_STD)
        self.features = trunk.features
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(512, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden, num_classes),
        )

    @property
    def cam_target_layer(self) -> nn.Module:
        convs = [m for m in self.features if isinstance(m, nn.Conv2d)]
        return convs[-1]

    def freeze(self, scheme: str) -> None:
        """``none``; ``all_conv`` (only the head trains); ``last9_conv`` (the last 9 conv layers and the head train);
        ``last5_modules`` (the last 5 modules of ``features`` and the head train)."""
        for p in self.features.parameters():
            p.requires_grad = scheme == "none"
        if scheme in ("none", "all_conv"):
            return
        if scheme == "last9_conv":
            trainable = [m for m in self.features if isinstance(m, nn.Conv2d)][-9:]
        elif scheme == "last5_modules":
            trainable = list(self.features)[-5:]
        else:
            raise ValueError(f"unknown freezing scheme {scheme!r}")
        for m in trainable:
            for p in m.parameters():
                p.requires_grad = True


@register("vgg19_transfer")
def vgg19_transfer(pretrained_path: str | None = None, freeze: str = "none", input_size: int = 48,
                   num_classes: int = NUM_CLASSES) -> FerModel:
    model = VGG19Transfer(pretrained_path=pretrained_path, input_size=input_size, num_classes=num_classes)
    model.freeze(freeze)
    return model


# --- fer_vgg: the fast default --------------------------------------------------------------------------------------


class FerVGG(FerModel):
    """Four stages of 3x3 conv-BN-ReLU blocks (no bias before BN; ``depths[i]`` blocks in stage i), max-pool between
    stages, global average pooling and a linear head with dropout. Designed for 48x48 grey faces on a CPU: most of the
    cost sits in the first two stages, so they stay narrow; the deep 6x6 stage is cheap and carries most parameters."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 256), depths: tuple[int, ...] = (2, 2, 2, 2),
                 dropout: float = 0.3, in_chans: int = 1, num_classes: int = NUM_CLASSES):
        super().__init__()
        self.preprocessing = Preprocessing(48, in_chans, (0.5,) * in_chans, (0.25,) * in_chans)
        stages: list[nn.Module] = []
        cin = in_chans
        for i, (w, d) in enumerate(zip(widths, depths, strict=True)):
            layers: list[nn.Module] = [nn.MaxPool2d(2)] if i > 0 else []
            for _ in range(d):
                layers += _conv_bn_relu(cin, w, bias=False)
                cin = w
            stages.append(nn.Sequential(*layers))
        self.features = nn.Sequential(*stages)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(cin, num_classes))


@register("fer_vgg")
def fer_vgg(widths: tuple[int, ...] = (32, 64, 128, 256), depths: tuple[int, ...] = (2, 2, 2, 2), dropout: float = 0.3,
            in_chans: int = 1, num_classes: int = NUM_CLASSES) -> FerModel:
    """The calibration network of the ml/ issue (about 1.2M parameters)."""
    return FerVGG(tuple(widths), tuple(depths), dropout, in_chans, num_classes)


@register("fer_vgg_m")
def fer_vgg_m(in_chans: int = 1, num_classes: int = NUM_CLASSES) -> FerModel:
    """Wider, with three convs in the two deepest stages."""
    return FerVGG((48, 96, 192, 384), (2, 2, 3, 3), 0.3, in_chans, num_classes)


# --- named CAM layers ---------------------------------------------------------------------------------------------

CAM_LAYERS: tuple[str, ...] = ("last", "fine")
DEFAULT_CAM_LAYER = "last"


@dataclass(frozen=True)
class CamLayer:
    """A layer Grad-CAM can hook: ``name`` is the choice (``last``, ``fine``), ``path`` the module's dotted name in
    the model, ``size`` the side of its feature map at the model's input size."""

    name: str
    path: str
    size: int
    module: nn.Module


def cam_layers(model: FerModel) -> dict[str, CamLayer]:
    """``last``: ``cam_target_layer`` (the coarse map every method uses). ``fine``: the outermost module of the trunk
    whose output is the last one at twice the last layer's resolution (the stage before the last down-sampling: 12x12
    under a 6x6 stage). Read off one probing forward pass, so every registered architecture resolves both alike."""
    cached = getattr(model, "_cam_layers", None)
    if cached is not None:
        return cached
    names = {id(m): name for name, m in model.named_modules()}
    sizes: list[tuple[nn.Module, int]] = []  # in the order the modules finish: an enclosing stage after its parts
    hooks = [m.register_forward_hook(lambda mod, _in, out: sizes.append((mod, out.shape[-1])))
             for m in model.features.modules() if m is not model.features]
    p = model.preprocessing
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model.forward_features(torch.zeros(1, p.channels, p.input_size, p.input_size,
                                               device=next(model.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    last = model.cam_target_layer
    last_size = next(s for m, s in sizes if m is last)
    layers = {"last": CamLayer("last", names[id(last)], last_size, last)}
    fine = [m for m, s in sizes if s == 2 * last_size]
    if fine:
        layers["fine"] = CamLayer("fine", names[id(fine[-1])], 2 * last_size, fine[-1])
    model._cam_layers = layers
    return layers


def cam_layer(model: FerModel, name: str = DEFAULT_CAM_LAYER) -> CamLayer:
    """The named CAM layer of ``model``; ``ValueError`` naming the choices for an unknown or missing one."""
    layers = cam_layers(model)
    if name not in layers:
        raise ValueError(f"unknown CAM layer {name!r} for {getattr(model, 'arch', type(model).__name__)}; "
                         f"available: {', '.join(layers)}")
    return layers[name]
