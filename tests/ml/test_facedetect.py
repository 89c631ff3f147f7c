from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.facedetect import (
    DEFAULT,
    DETECTORS,
    Box,
    DetectorUnavailable,
    FaceDetector,
    NoFaceFound,
    _import,
    crop_faces,
    crop_largest_face,
    detect_faces,
    get_detector,
    square_crop_box,
    to_gray,
)

PHOTOS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "photos"
needs_photos = pytest.mark.skipif(not PHOTOS.is_dir(), reason=f"shared photos not found at {PHOTOS}")


class FixedFaces(FaceDetector):
    """Reports the same boxes, given as fractions of the image it is shown, whatever the pixels."""

    name = "fixed"
    package = "none"
    fractions = [(0.1, 0.1, 0.2, 0.2), (0.5, 0.4, 0.4, 0.4), (0.0, 0.7, 0.3, 0.3)]
    seen: list[tuple[int, int]] = []

    def detect(self, gray):
        FixedFaces.seen.append(gray.shape)
        h, w = gray.shape
        return [Box(round(fx * w), round(fy * h), round(fw * w), round(fh * h), 1.0)
                for fx, fy, fw, fh in self.fractions]


@pytest.fixture
def fixed(monkeypatch):
    monkeypatch.setitem(DETECTORS, "fixed", FixedFaces)
    FixedFaces.seen = []
    get_detector.cache_clear()
    yield "fixed"
    get_detector.cache_clear()


def blank(size=(200, 160), mode="L") -> Image.Image:
    return Image.new(mode, size, 128 if mode == "L" else None)


def test_largest_face_is_chosen_and_mapped_back_to_original_coordinates(fixed):
    image = Image.fromarray(np.zeros((3000, 2000), np.uint8))  # large: detection runs on a smaller copy
    crop = crop_largest_face(image, method=fixed, use_whole_if_none=False)
    assert FixedFaces.seen[0][0] < 3000
    assert crop.found
    assert (crop.box.x, crop.box.y, crop.box.w, crop.box.h) == pytest.approx((1000, 1200, 800, 1200), abs=3)
    assert crop.pixels.shape == (48, 48) and crop.pixels.dtype == np.uint8


def test_every_face_is_cut_largest_first_up_to_the_limit(fixed):
    image = Image.fromarray(np.tile(np.linspace(0, 255, 400).astype(np.uint8), (400, 1)))  # detected unscaled
    crops = crop_faces(image, method=fixed, max_faces=10, use_whole_if_none=False)
    assert [(c.box.x, c.box.y, c.box.w, c.box.h) for c in crops] == [(200, 160, 160, 160), (0, 280, 120, 120),
                                                                      (40, 40, 80, 80)]
    assert all(c.found and c.pixels.shape == (48, 48) for c in crops)
    assert crops[0].crop_box == square_crop_box(crops[0].box, 400, 400, 0.2)
    # Each crop is cut from its own box: the horizontal gradient makes the left faces darker.
    assert crops[1].pixels.mean() < crops[0].pixels.mean()
    two = crop_faces(image, method=fixed, max_faces=2, use_whole_if_none=False)
    assert [c.box for c in two] == [c.box for c in crops[:2]]
    assert crop_largest_face(image, method=fixed, use_whole_if_none=False).box == crops[0].box
    with pytest.raises(ValueError, match="max_faces"):
        crop_faces(image, method=fixed, max_faces=0, use_whole_if_none=False)


def test_no_face_gives_one_whole_image_crop_or_raises():
    assert [c.found for c in crop_faces(blank(), max_faces=5, use_whole_if_none=True)] == [False]
    with pytest.raises(NoFaceFound):
        crop_faces(blank(), max_faces=5, use_whole_if_none=False)


def test_every_face_of_a_drawn_group_photo_is_found():
    from tests.uploads.samples import GROUP_FACES, group_photo

    crops = crop_faces(group_photo(3), max_faces=10, use_whole_if_none=False)
    assert len(crops) == 3
    for crop, (cx, cy, half) in zip(crops, GROUP_FACES, strict=True):
        assert abs(crop.box.x + crop.box.w / 2 - cx) < half / 2 and abs(crop.box.y + crop.box.h / 2 - cy) < half


def test_tiny_image_is_upscaled_for_detection(fixed):
    boxes = detect_faces(np.zeros((48, 48), np.uint8), fixed)
    assert min(FixedFaces.seen[0]) >= 256
    assert all(b.x + b.w <= 48 and b.y + b.h <= 48 for b in boxes)
    assert boxes[0].area >= boxes[-1].area


def test_blank_image_has_no_face_and_whole_image_is_the_fallback():
    image = blank()
    assert detect_faces(np.asarray(image)) == []
    with pytest.raises(NoFaceFound):
        crop_largest_face(image, use_whole_if_none=False)
    gradient = Image.fromarray(np.tile(np.arange(200, dtype=np.uint8), (160, 1)))
    crop = crop_largest_face(gradient, use_whole_if_none=True)
    assert not crop.found and crop.box is None and crop.crop_box == (0, 0, 200, 160)
    expected = np.asarray(gradient.resize((48, 48), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(crop.pixels, expected)


def test_exif_orientation_is_applied():
    stored = np.zeros((40, 60), np.uint8)  # 60 wide, 40 high; bright block at the stored top-left
    stored[:20, :30] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # display = stored rotated 90 degrees clockwise
    buf = io.BytesIO()
    Image.fromarray(stored).save(buf, format="JPEG", exif=exif, quality=95)
    crop = crop_largest_face(Image.open(io.BytesIO(buf.getvalue())), use_whole_if_none=True)
    assert crop.crop_box == (0, 0, 40, 60)  # now 40 wide, 60 high
    assert crop.pixels[:24, 24:].mean() > 200  # the block moved to the top-right
    assert crop.pixels[:24, :24].mean() < 50


@pytest.mark.parametrize("mode", ["RGBA", "LA", "P", "CMYK", "RGB", "1", "I;16", "I", "F"])
def test_every_mode_gives_uint8_48x48(mode):
    rng = np.random.default_rng(0)
    base = Image.fromarray(rng.integers(0, 256, (90, 70, 3), dtype=np.uint8))
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65536, (90, 70), dtype=np.uint16))
    else:
        image = base.convert(mode)
    assert image.mode == mode
    crop = crop_largest_face(image, use_whole_if_none=True)
    assert crop.pixels.shape == (48, 48) and crop.pixels.dtype == np.uint8


def test_16_bit_grey_is_scaled_not_clipped():
    image = Image.fromarray(np.array([[0, 257, 32896, 65535]], dtype=np.uint16))
    assert image.mode == "I;16"
    np.testing.assert_array_equal(to_gray(image), [[0, 1, 128, 255]])


def test_transparent_pixels_become_white():
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    assert to_gray(image).min() == 255


@pytest.mark.parametrize(("box", "expected"), [
    (Box(40, 40, 20, 20, 1), (36, 36, 64, 64)),  # room everywhere: 20 * 1.4 = 28 wide, centred
    (Box(0, 0, 20, 20, 1), (0, 0, 28, 28)),  # top-left corner: shifted inside
    (Box(85, 90, 15, 10, 1), (79, 79, 100, 100)),  # bottom-right corner: shifted inside
    (Box(10, 0, 90, 100, 1), (0, 0, 100, 100)),  # grown square larger than the image: the whole image
])
def test_square_crop_with_margin_is_clamped_to_the_image(box, expected):
    assert square_crop_box(box, 100, 100, margin=0.2) == expected


def test_crop_at_border_stays_square_and_inside(fixed, monkeypatch):
    image = Image.fromarray(np.zeros((500, 300), np.uint8))
    monkeypatch.setattr(FixedFaces, "fractions", [(0.0, 0.9, 0.3, 0.1)])
    crop = crop_largest_face(image, method=fixed, margin=0.5, use_whole_if_none=False)
    left, top, right, bottom = crop.crop_box
    assert right - left == bottom - top and left >= 0 and top >= 0 and right <= 300 and bottom <= 500


def test_unknown_method_names_the_choices():
    with pytest.raises(ValueError, match="dlib_hog.*haar_default"):
        detect_faces(np.zeros((64, 64), np.uint8), method="nope")
    with pytest.raises(ValueError, match="haar_default"):
        crop_largest_face(blank(), method="nope", use_whole_if_none=True)


def test_missing_package_is_named(monkeypatch):
    class Missing(FaceDetector):
        name = "missing"

        def __init__(self):
            _import("no_such_module_for_faces", "no-such-face-package", self.name)

    monkeypatch.setitem(DETECTORS, "missing", Missing)
    with pytest.raises(DetectorUnavailable, match="no-such-face-package"):
        detect_faces(np.zeros((64, 64), np.uint8), method="missing")


def test_default_is_registered():
    assert DEFAULT in DETECTORS


@needs_photos
def test_two_people_gives_the_larger_face():
    image = Image.open(PHOTOS / "two_people.jpg")
    boxes = detect_faces(to_gray(image))
    assert len(boxes) == 2
    crop = crop_largest_face(image, use_whole_if_none=False)
    assert crop.box == max(boxes, key=lambda b: b.area)
    left, top, right, bottom = crop.crop_box
    assert left <= crop.box.x and top <= crop.box.y and right >= crop.box.x + crop.box.w
    assert bottom >= crop.box.y + crop.box.h


@needs_photos
def test_two_people_gives_two_crops():
    crops = crop_faces(Image.open(PHOTOS / "two_people.jpg"), max_faces=10, use_whole_if_none=False)
    assert len(crops) == 2 and crops[0].box.area >= crops[1].box.area
    assert crops[0].box.x + crops[0].box.w <= crops[1].box.x or crops[1].box.x + crops[1].box.w <= crops[0].box.x
    assert not np.array_equal(crops[0].pixels, crops[1].pixels)


@needs_photos
@pytest.mark.parametrize("name", ["obama.jpg", "32bit.png"])
def test_one_face_found(name):
    crop = crop_largest_face(Image.open(PHOTOS / name), use_whole_if_none=False)
    assert crop.found
    assert crop.pixels.shape == (48, 48) and crop.pixels.dtype == np.uint8
    assert len(detect_faces(to_gray(Image.open(PHOTOS / name)))) == 1
