"""Image sizes from file headers, before any pixel is decoded.

Contract: ``header_size(path)`` returns ``(width, height)`` as the file declares it, reading
a few bytes (PNG ``IHDR``, JPEG ``SOFn``, BMP info header; other formats through Pillow's
lazy ``Image.open``, which parses only the header), or ``None`` when the header cannot be
read. It never decodes pixels and never allocates by the declared size, so a small file
declaring a huge frame costs nothing; the caller compares the size with its limit.
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path
from typing import BinaryIO

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# start-of-frame markers: baseline, extended, progressive, lossless (huffman and arithmetic)
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_MAX_SEGMENTS = 4096


def header_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) declared by the image file's header, or None if unreadable."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(32)
            if head.startswith(PNG_MAGIC):
                return _png(head)
            if head.startswith(b"\xff\xd8"):
                return _jpeg(fh)
            if head.startswith(b"BM"):
                return _bmp(head)
    except (OSError, struct.error, ValueError):
        return None
    return _pillow(path)


def _png(head: bytes) -> tuple[int, int] | None:
    if head[12:16] != b"IHDR":
        return None
    w, h = struct.unpack(">II", head[16:24])
    return (w, h) if w and h else None


def _jpeg(fh: BinaryIO) -> tuple[int, int] | None:
    """Walk the marker segments from SOI to the first SOF (bounded number of segments)."""
    fh.seek(2)
    for _ in range(_JPEG_MAX_SEGMENTS):
        b = fh.read(1)
        while b == b"\xff":  # fill bytes before a marker
            b = fh.read(1)
        if not b:
            return None
        marker = b[0]
        if marker in (0x01, *range(0xD0, 0xD9)):  # markers without a length
            continue
        seg = fh.read(2)
        if len(seg) < 2:
            return None
        length = struct.unpack(">H", seg)[0]
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            data = fh.read(5)
            if len(data) < 5:
                return None
            h, w = struct.unpack(">HH", data[1:5])
            return (w, h) if w and h else None
        if marker == 0xD9:  # end of image before any frame
            return None
        fh.seek(length - 2, 1)
        # a marker must follow; anything else is not a JPEG we can read the header of
        if fh.read(1) != b"\xff":
            return None
        fh.seek(-1, 1)
    return None


def _bmp(head: bytes) -> tuple[int, int] | None:
    if len(head) < 26:
        return None
    (dib,) = struct.unpack("<I", head[14:18])
    if dib == 12:  # BITMAPCOREHEADER: 16-bit sizes
        w, h = struct.unpack("<HH", head[18:22])
    else:
        w, h = struct.unpack("<ii", head[18:26])
    w, h = abs(w), abs(h)  # a negative height is a top-down bitmap
    return (w, h) if w and h else None


def _pillow(path: str | Path) -> tuple[int, int] | None:
    """TIFF, WebP, PPM/PGM and the rest: Pillow reads the header only (its ``open`` is lazy).
    An image Pillow refuses as a decompression bomb (over twice its own pixel limit, about
    179 M pixels) is reported with a size over any ``frame.max_pixels``."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
    except Image.DecompressionBombError:
        return (2**31, 2**31)  # larger than any frame.max_pixels: refused by the caller
    except Exception:  # noqa: BLE001 - any parse failure of a foreign header reads as unreadable
        return None
    return (int(w), int(h)) if w and h else None
