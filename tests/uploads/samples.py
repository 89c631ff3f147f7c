"""Image files for upload tests, built in memory: valid unusual ones and every kind of bad input."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image


def encode(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **params)
    return buffer.getvalue()


def gradient(width: int, height: int, mode: str = "RGB") -> Image.Image:
    """A smooth, face-free test picture in ``mode``."""
    x = np.linspace(0, 255, width, dtype=np.float64)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float64)[:, None]
    grey = ((x + y) / 2).astype(np.uint8)
    return Image.fromarray(np.stack([grey, 255 - grey, grey // 2], axis=2), "RGB").convert(mode)


def jpeg(width: int = 64, height: int = 48) -> bytes:
    return encode(gradient(width, height), "JPEG", quality=90)


def png(width: int = 64, height: int = 48, mode: str = "RGB") -> bytes:
    return encode(gradient(width, height, mode), "PNG")


def png_16bit_grey() -> bytes:
    values = (np.linspace(0, 65535, 64 * 48).reshape(48, 64)).astype(np.uint16)
    image = Image.fromarray(values)  # uint16 -> mode I;16
    data = encode(image, "PNG")
    assert Image.open(io.BytesIO(data)).mode in ("I;16", "I")  # really 16-bit on disk
    return data


def cmyk_jpeg() -> bytes:
    return encode(gradient(64, 48, "CMYK"), "JPEG")


def rgba_png() -> bytes:
    image = gradient(64, 48, "RGBA")
    image.putalpha(Image.linear_gradient("L").resize((64, 48)))
    return encode(image, "PNG")


def palette_png() -> bytes:
    return encode(gradient(64, 48).convert("P", palette=Image.Palette.ADAPTIVE, colors=16), "PNG")


def exif_rotated_jpeg() -> bytes:
    """Stored 80x40 with its left half white; EXIF orientation 6 shows it 40x80 with the top half white."""
    stored = np.zeros((40, 80), dtype=np.uint8)
    stored[:, :40] = 255
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise for display
    return encode(Image.fromarray(stored, "L").convert("RGB"), "JPEG", exif=exif, quality=95)


def animated_gif() -> bytes:
    frames = [Image.new("L", (40, 40), value) for value in (30, 220, 120)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def webp() -> bytes:
    return encode(gradient(64, 48), "WEBP", quality=80)


def bmp() -> bytes:
    return encode(gradient(64, 48), "BMP")


def tiff() -> bytes:
    return encode(gradient(64, 48), "TIFF")


def face48() -> bytes:
    """An already-cropped 48x48 grey 'face' (no detector will find one in it)."""
    return png(48, 48, "L")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares ``width`` x ``height`` grey pixels but carries almost no data (bombs, zero size)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def upload_file(data: bytes, name: str = "photo.jpg", content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


def _cartoon_face(draw, cx: float, cy: float, half_width: float) -> None:
    """A plain drawn face (hair, skin, eyes with brows, nose, mouth) that dlib's HOG detector finds as a face."""
    rx, ry = half_width, half_width * 1.3
    draw.ellipse((cx - rx * 1.08, cy - ry * 1.15, cx + rx * 1.08, cy + ry * 0.5), fill=40)  # hair
    draw.ellipse((cx - rx, cy - ry, cx + rx, cy + ry), fill=185)
    eye_y, line = cy - ry * 0.15, max(2, int(rx * 0.08))
    for side in (-1, 1):
        ex = cx + side * rx * 0.42
        draw.ellipse((ex - rx * 0.2, eye_y - rx * 0.09, ex + rx * 0.2, eye_y + rx * 0.09), fill=235)
        draw.ellipse((ex - rx * 0.09, eye_y - rx * 0.09, ex + rx * 0.09, eye_y + rx * 0.09), fill=30)
        draw.line((ex - rx * 0.25, eye_y - rx * 0.22, ex + rx * 0.25, eye_y - rx * 0.25), fill=50, width=line)
    draw.polygon([(cx, eye_y + rx * 0.05), (cx - rx * 0.15, cy + ry * 0.3), (cx + rx * 0.15, cy + ry * 0.3)], fill=150)
    mouth_y = cy + ry * 0.55
    draw.line((cx - rx * 0.35, mouth_y, cx + rx * 0.35, mouth_y), fill=70, width=line)


# Centre x, centre y and half width of each face of group_photo(), largest first, in a 640x400 picture.
GROUP_FACES = ((170, 200, 70), (470, 190, 56), (560, 330, 40))


def group_photo(faces: int = 2, *, width: int = 640, height: int = 400) -> Image.Image:
    """A grey RGB 'photo' of ``faces`` (1-3) drawn faces of different sizes, largest on the left."""
    from PIL import ImageDraw, ImageFilter

    image = Image.new("L", (width, height), 120)
    draw = ImageDraw.Draw(image)
    for cx, cy, half in GROUP_FACES[:faces]:
        _cartoon_face(draw, cx * width / 640, cy * height / 400, half * width / 640)
    return image.filter(ImageFilter.GaussianBlur(2)).convert("RGB")


def group_jpeg(faces: int = 2) -> bytes:
    return encode(group_photo(faces), "JPEG", quality=92)
