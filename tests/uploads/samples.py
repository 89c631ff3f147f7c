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
