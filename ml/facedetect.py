"""Find the faces in an uploaded photo and cut each out as a 48x48 grayscale FER-style face.

    crops = crop_faces(Image.open(fh), max_faces=10, use_whole_if_none=False)  # [FaceCrop(...)], largest first
    crop = crop_largest_face(Image.open(fh), use_whole_if_none=False)   # FaceCrop(pixels, box, crop_box, found)

Detectors sit in a small registry behind one interface (`detect_faces(gray, method)`), each loaded once per process.
Every detector's weights come inside a PyPI package: nothing is downloaded at run time. Pure Python: no Django here.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import math
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
from PIL import Image, ImageOps

# dlib HOG: ties MTCNN for the best accuracy on the shared photos (7/7, no false positive), runs ~2.4x faster (57 ms),
# and its weights are built into dlib-bin; Haar misses the partial face, dlib CNN is ~80x slower on CPU.
DEFAULT = "dlib_hog"

# Detection runs on a copy scaled to at most this many pixels (speed) and at least this short side (tiny uploads,
# e.g. an already-cropped 48x48 face); boxes are mapped back to the original image.
DETECT_MAX_PIXELS = 1_000_000
DETECT_MIN_SIDE = 256


class Box(NamedTuple):
    """A face in pixel coordinates: top-left corner, width, height, and the detector's own confidence."""

    x: int
    y: int
    w: int
    h: int
    score: float

    @property
    def area(self) -> int:
        return self.w * self.h


@dataclass(frozen=True)
class FaceCrop:
    pixels: np.ndarray  # uint8, (size, size)
    box: Box | None  # the detected face, in the EXIF-oriented image's full-resolution coordinates; None if not found
    crop_box: tuple[int, int, int, int]  # (left, top, right, bottom) actually cut out, same coordinates
    found: bool


class NoFaceFound(ValueError):
    """Raised by crop_largest_face(use_whole_if_none=False) when the photo holds no detectable face."""


class DetectorUnavailable(ImportError):
    """The detector's package is not installed."""


def _import(module: str, package: str, method: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DetectorUnavailable(
            f"face detector {method!r} needs the PyPI package {package!r} (pip install {package!r})") from exc


def _package_file(module: str, relative: str, package: str, method: str) -> Path:
    """A data file inside an installed package, found without importing it (face_recognition_models imports the
    deprecated pkg_resources on import)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise DetectorUnavailable(
            f"face detector {method!r} needs the PyPI package {package!r} (pip install {package!r})")
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.is_file():
        raise DetectorUnavailable(f"face detector {method!r}: {path} is missing; reinstall {package!r}")
    return path


class FaceDetector:
    """One detection method. Subclasses load their model in __init__ and find faces in an 8-bit grayscale array."""

    name: str
    package: str

    def detect(self, gray: np.ndarray) -> list[Box]:
        raise NotImplementedError


class HaarDetector(FaceDetector):
    package = "opencv-python-headless>=4.9,<5"
    cascade: str

    def __init__(self) -> None:
        cv2 = _import("cv2", self.package, self.name)
        if not hasattr(cv2, "data"):  # OpenCV 5 no longer ships the cascades
            raise DetectorUnavailable(f"face detector {self.name!r} needs {self.package!r}: cv2.data is missing")
        self._cv2 = cv2
        self._model = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / self.cascade))
        if self._model.empty():
            raise DetectorUnavailable(f"face detector {self.name!r}: could not load {self.cascade}")

    def detect(self, gray: np.ndarray) -> list[Box]:
        min_face = max(24, round(0.04 * min(gray.shape)))
        rects, neighbours = self._model.detectMultiScale2(
            gray, scaleFactor=1.1, minNeighbors=5, minSize=(min_face, min_face))
        return [Box(int(x), int(y), int(w), int(h), float(n))
                for (x, y, w, h), n in zip(rects, neighbours, strict=True)]


class HaarDefault(HaarDetector):
    name = "haar_default"
    cascade = "haarcascade_frontalface_default.xml"


class HaarAlt2(HaarDetector):
    name = "haar_alt2"
    cascade = "haarcascade_frontalface_alt2.xml"


def _from_dlib_rect(rect, score: float) -> Box:
    return Box(rect.left(), rect.top(), rect.right() - rect.left() + 1, rect.bottom() - rect.top() + 1, float(score))


class DlibHog(FaceDetector):
    name = "dlib_hog"
    package = "dlib-bin>=19.24"

    def __init__(self) -> None:
        self._model = _import("dlib", self.package, self.name).get_frontal_face_detector()

    def detect(self, gray: np.ndarray) -> list[Box]:
        rects, scores, _ = self._model.run(gray, 0, 0.0)  # no upsampling: detect_faces already scaled the image
        return [_from_dlib_rect(r, s) for r, s in zip(rects, scores, strict=True)]


class DlibCnn(FaceDetector):
    """dlib's MMOD CNN with the weights shipped in face-recognition-models (needs dlib too)."""

    name = "dlib_cnn"
    package = "face-recognition-models"

    def __init__(self) -> None:
        dlib = _import("dlib", DlibHog.package, self.name)
        path = _package_file("face_recognition_models", "models/mmod_human_face_detector.dat", self.package, self.name)
        self._model = dlib.cnn_face_detection_model_v1(str(path))

    def detect(self, gray: np.ndarray) -> list[Box]:
        return [_from_dlib_rect(d.rect, d.confidence) for d in self._model(gray, 0)]


class Mtcnn(FaceDetector):
    """facenet-pytorch's MTCNN (weights in the wheel). Its metadata pins an old torch: install it with --no-deps."""

    name = "mtcnn"
    package = "facenet-pytorch"

    def __init__(self) -> None:
        facenet = _import("facenet_pytorch", self.package, self.name)
        self._model = facenet.MTCNN(keep_all=True, device="cpu")

    def detect(self, gray: np.ndarray) -> list[Box]:
        boxes, probs = self._model.detect(np.repeat(gray[..., None], 3, axis=2))
        if boxes is None:
            return []
        out = []
        for (x1, y1, x2, y2), p in zip(boxes, probs, strict=True):
            x, y = max(0, round(x1)), max(0, round(y1))
            out.append(Box(x, y, round(x2) - x, round(y2) - y, float(p)))
        return out


DETECTORS: dict[str, type[FaceDetector]] = {d.name: d for d in (DlibHog, DlibCnn, HaarDefault, HaarAlt2, Mtcnn)}


@functools.cache
def get_detector(method: str = DEFAULT) -> FaceDetector:
    """The detector for `method`, built once per process (model files are read on first use)."""
    if method not in DETECTORS:
        raise ValueError(f"unknown face detection method {method!r}; choose one of {', '.join(sorted(DETECTORS))}")
    return DETECTORS[method]()


def _detection_scale(height: int, width: int) -> float:
    if height * width > DETECT_MAX_PIXELS:
        return math.sqrt(DETECT_MAX_PIXELS / (height * width))
    if min(height, width) < DETECT_MIN_SIDE:
        return min(DETECT_MIN_SIDE / min(height, width), math.sqrt(DETECT_MAX_PIXELS / (height * width)))
    return 1.0


def detect_faces(gray: np.ndarray, method: str = DEFAULT) -> list[Box]:
    """Faces in an 8-bit grayscale (H, W) array, largest first, in that array's coordinates."""
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise ValueError(f"expected a 2-D uint8 grayscale array, got {gray.dtype} {gray.shape}")
    detector = get_detector(method)
    height, width = gray.shape
    scale = _detection_scale(height, width)
    work = gray
    if scale != 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        resample = Image.Resampling.BOX if scale < 1 else Image.Resampling.BILINEAR
        work = np.asarray(Image.fromarray(gray).resize(size, resample))
    boxes = []
    for b in detector.detect(np.ascontiguousarray(work)):
        x0, y0 = max(0, round(b.x / scale)), max(0, round(b.y / scale))
        x1, y1 = min(width, round((b.x + b.w) / scale)), min(height, round((b.y + b.h) / scale))
        if x1 > x0 and y1 > y0:
            boxes.append(Box(x0, y0, x1 - x0, y1 - y0, b.score))
    return sorted(boxes, key=lambda b: (b.area, b.score), reverse=True)


def to_gray(image: Image.Image) -> np.ndarray:
    """Any Pillow mode as an 8-bit (H, W) array: transparency over white, 16/32-bit and float scaled, not clipped."""
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return _wide_to_uint8(np.asarray(image, dtype=np.float64), image.mode)
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    try:
        return np.asarray(image.convert("L"))
    except ValueError:  # modes without a direct conversion to L (e.g. HSV)
        return np.asarray(image.convert("RGB").convert("L"))


def _wide_to_uint8(values: np.ndarray, mode: str) -> np.ndarray:
    """Scale 16/32-bit integer or float pixels into 0..255 by the range their values imply."""
    low, high = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
    if mode.startswith("I;16") or (low >= 0 and 255 < high <= 65535):
        low, high = 0.0, 65535.0  # 16-bit grey (mode "I" is how some 16-bit PNGs open)
    elif mode == "F" and low >= 0 and high <= 1:
        low, high = 0.0, 1.0
    elif low >= 0 and high <= 255:
        low, high = 0.0, 255.0  # already 8-bit values in a wide mode
    span = max(high - low, 1e-12)
    return np.clip(np.rint((values - low) * (255.0 / span)), 0, 255).astype(np.uint8)


def square_crop_box(box: Box, width: int, height: int, margin: float) -> tuple[int, int, int, int]:
    """A square around `box` grown by `margin` of its size on each side, shifted (then shrunk) to fit the image."""
    side = min(round(max(box.w, box.h) * (1 + 2 * margin)), width, height)
    cx, cy = box.x + box.w / 2, box.y + box.h / 2
    left = min(max(0, round(cx - side / 2)), width - side)
    top = min(max(0, round(cy - side / 2)), height - side)
    return left, top, left + side, top + side


def crop_faces(image: Image.Image, *, max_faces: int, margin: float = 0.2, size: int = 48, method: str = DEFAULT,
               use_whole_if_none: bool) -> list[FaceCrop]:
    """EXIF-orient, grayscale, find the faces and cut a square around each of the ``max_faces`` largest, resized to
    size x size; largest first (ties: the detector's higher score first).

    With no face: one crop of the whole image resized when `use_whole_if_none`, else NoFaceFound.
    """
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if max_faces < 1:
        raise ValueError(f"max_faces must be >= 1, got {max_faces}")
    gray = to_gray(ImageOps.exif_transpose(image))
    height, width = gray.shape
    faces = detect_faces(gray, method)[:max_faces]
    if not faces and not use_whole_if_none:
        raise NoFaceFound(f"no face found by {method!r} in a {width}x{height} image")
    source = Image.fromarray(gray)
    if not faces:
        return [_crop(source, None, (0, 0, width, height), size)]
    return [_crop(source, box, square_crop_box(box, width, height, margin), size) for box in faces]


def _crop(source: Image.Image, box: Box | None, crop_box: tuple[int, int, int, int], size: int) -> FaceCrop:
    pixels = np.asarray(source.resize((size, size), Image.Resampling.LANCZOS, box=crop_box))
    return FaceCrop(pixels=pixels, box=box, crop_box=crop_box, found=box is not None)


def crop_largest_face(image: Image.Image, *, margin: float = 0.2, size: int = 48, method: str = DEFAULT,
                      use_whole_if_none: bool) -> FaceCrop:
    """The largest face of ``crop_faces``: with no face, the whole image when `use_whole_if_none`, else NoFaceFound."""
    return crop_faces(image, max_faces=1, margin=margin, size=size, method=method,
                      use_whole_if_none=use_whole_if_none)[0]
