"""Checking and decoding uploaded image files with Pillow, before anything is stored.

Every failure is an ``ImageRejected`` with a short machine code and a sentence for people; nothing here touches the
database or storage. The format is sniffed from the bytes (``Image.open(...).format``), never taken from the declared
content type or the file name.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from PIL import ExifTags, Image, UnidentifiedImageError

from ml.facedetect import to_gray

# Pillow format names accepted for uploads, and what people call them.
ACCEPTED_FORMATS: dict[str, str] = {"JPEG": "JPEG", "PNG": "PNG", "WEBP": "WebP", "BMP": "BMP", "GIF": "GIF"}
ACCEPTED_TEXT = ", ".join(ACCEPTED_FORMATS.values())


class ImageRejected(ValueError):
    """A file that cannot be used as an upload; ``code`` is stable for clients, the message is for people."""

    def __init__(self, code: str, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ImageHeader:
    """What the header says, before any pixel is decoded."""

    format: str  # Pillow's name, one of ACCEPTED_FORMATS
    width: int  # as stored (before EXIF orientation)
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


@dataclass(frozen=True)
class ImageFacts:
    """The small facts an upload keeps of its photo once the decoded pixels are gone."""

    format: str
    content_type: str
    width: int  # as displayed, i.e. after EXIF orientation (face boxes use the same frame)
    height: int


@dataclass(frozen=True)
class DecodedImage:
    image: Image.Image  # fully decoded (first frame of an animation), not yet EXIF-oriented
    facts: ImageFacts


def image_check_size(size: int, *, max_bytes: int) -> None:
    if size == 0:
        raise ImageRejected("empty_file", "the file is empty (0 bytes)")
    if size > max_bytes:
        raise ImageRejected(
            "file_too_large", f"the file is {size:,} bytes; the limit is {max_bytes:,} bytes", status=413)


def image_probe(data: bytes, *, max_pixels: int) -> ImageHeader:
    """Sniff and bound ``data`` from its header alone (nothing is decoded); raise ``ImageRejected`` if it is bad."""
    with _image_open(data) as image:
        return _header_check(image, max_pixels=max_pixels)


def image_decode(data: bytes, *, max_pixels: int) -> DecodedImage:
    """Sniff, bound and fully decode ``data``; raise ``ImageRejected`` saying what is wrong.

    The caller owns the decoded pixels (about 4 bytes a pixel, 160 MB for 40 MP): ``.image.close()`` frees them.
    """
    image = _image_open(data)
    try:
        header = _header_check(image, max_pixels=max_pixels)
        _load(image, header.format)
    except BaseException:
        image.close()
        raise
    width, height = header.width, header.height
    if _exif_orientation(image) in (5, 6, 7, 8):  # rotated by 90 or 270 degrees
        width, height = height, width
    content_type = Image.MIME.get(header.format, "")
    return DecodedImage(image=image, facts=ImageFacts(format=header.format, content_type=content_type, width=width,
                                                      height=height))


# The photo kept for display (the upload page draws the face boxes on it): EXIF-oriented, at most this long a side.
PHOTO_MAX_SIDE = 1280
PHOTO_CONTENT_TYPE = "image/jpeg"
_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}


def image_display_copy(image: Image.Image) -> bytes:
    """A JPEG of a decoded ``image`` as people see it (EXIF orientation applied, transparency over white, at most
    ``PHOTO_MAX_SIDE`` a side). The image is shrunk first, so the full-size pixels are never copied."""
    scale = min(1.0, PHOTO_MAX_SIDE / max(image.size))
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    small = image.resize(size, Image.Resampling.BOX) if size != image.size else image.copy()
    if small.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        small = Image.fromarray(to_gray(small))  # 16/32-bit and float scaled into 8 bits, as the face crops are
    elif small.has_transparency_data:
        rgba = small.convert("RGBA")
        small = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    small = small.convert("RGB") if small.mode not in ("RGB", "L") else small
    method = _TRANSPOSE.get(_exif_orientation(image))
    if method is not None:
        small = small.transpose(method)
    buffer = io.BytesIO()
    small.save(buffer, format="JPEG", quality=85)
    return buffer.getvalue()


def _load(image: Image.Image, fmt: str) -> None:
    try:
        image.load()  # decodes the first frame only: an animated GIF stays on frame 0
    except Image.DecompressionBombError as exc:
        raise _bomb(str(exc)) from None
    except Exception as exc:  # noqa: BLE001 - untrusted bytes: any decoder failure means a broken file
        if "truncated" in str(exc).lower():
            raise ImageRejected("truncated", f"the {fmt} data ends early: the file is truncated") from None
        raise ImageRejected("corrupt", f"the {fmt} data is corrupt ({exc})") from None


def _image_open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=list(ACCEPTED_FORMATS))
    except Image.DecompressionBombError as exc:
        raise _bomb(str(exc)) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        raise _unreadable(data, exc) from None


def _header_check(image: Image.Image, *, max_pixels: int) -> ImageHeader:
    width, height = image.size
    if width <= 0 or height <= 0:
        raise _zero_size(width, height)
    pixels = width * height
    # Pillow only warns between MAX_IMAGE_PIXELS and twice that; here it is an error like the rest.
    if Image.MAX_IMAGE_PIXELS is not None and pixels > Image.MAX_IMAGE_PIXELS:
        raise _bomb(f"{width}x{height} = {pixels:,} pixels exceeds Pillow's limit of {Image.MAX_IMAGE_PIXELS:,}")
    if pixels > max_pixels:
        raise ImageRejected(
            "too_many_pixels", f"the image is {width}x{height} = {pixels:,} pixels; the limit is {max_pixels:,}",
            status=413)
    return ImageHeader(format=image.format, width=width, height=height)


def _exif_orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(ExifTags.Base.Orientation, 1))
    except Exception:  # noqa: BLE001 - a broken EXIF block is ignored, as exif_transpose would
        return 1


def _bomb(detail: str) -> ImageRejected:
    return ImageRejected("decompression_bomb", f"refused as a possible decompression bomb: {detail}", status=413)


def _zero_size(width: int, height: int) -> ImageRejected:
    return ImageRejected("zero_size", f"the image has zero size ({width}x{height} pixels)")


def _unreadable(data: bytes, exc: BaseException) -> ImageRejected:
    """Say whether the bytes are an image of another format, a zero-size image, or not an image at all."""
    declared = _declared_size(data)
    if declared is not None and 0 in declared:
        return _zero_size(*declared)
    try:
        with Image.open(io.BytesIO(data)) as other:  # header only: names the format, decodes nothing
            other_format = other.format
    except Image.DecompressionBombError:
        other_format = None
    except Exception:  # noqa: BLE001 - not an image Pillow knows
        other_format = None
    if other_format and other_format not in ACCEPTED_FORMATS:
        return ImageRejected(
            "unsupported_format", f"{other_format} images are not accepted; send {ACCEPTED_TEXT}", status=415)
    if any(data.startswith(magic) for magic in (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF8", b"BM")) or (
            data[:4] == b"RIFF" and data[8:12] == b"WEBP"):
        if "truncated" in str(exc).lower() or len(data) < 64:
            return ImageRejected("truncated", "the image header ends early: the file is truncated")
        return ImageRejected("corrupt", f"the image header is corrupt ({exc})")
    return ImageRejected("not_an_image", f"the content is not an image ({ACCEPTED_TEXT} accepted)", status=415)


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, GIF or BMP header (Pillow refuses zero-size PNG/BMP without saying why)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data.startswith(b"GIF8") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    if data.startswith(b"BM") and len(data) >= 26:
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)
    return None
