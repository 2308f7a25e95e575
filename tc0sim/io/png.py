"""A minimal PNG writer (8-bit RGB, no dependency beyond zlib), for ``tc0sim eval --output image.png``."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from tc0sim.errors import ConfigError


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_bytes(rgb: np.ndarray) -> bytes:
    """The PNG file of an [H, W, 3] uint8 array (colour type 2, bit depth 8, filter 0 on every row)."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3 or 0 in rgb.shape:
        raise ConfigError(f"a PNG image must be [H, W, 3] uint8, got {list(rgb.shape)} {rgb.dtype}")
    h, w, _ = rgb.shape
    rows = np.concatenate([np.zeros((h, 1), dtype=np.uint8), rgb.reshape(h, 3 * w)], axis=1)
    header = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 9)) + _chunk(b"IEND", b"")


def write_png(path: str | Path, rgb: np.ndarray) -> None:
    """Write an [H, W, 3] uint8 array as an RGB PNG file, complete or not at all (``atomic_path``)."""
    from tc0sim.io.outputs import atomic_path

    data = png_bytes(rgb)
    with atomic_path(path) as temporary:
        temporary.write_bytes(data)


def grid(images: np.ndarray, per_row: int = 8) -> np.ndarray:
    """[B, H, W, C] images tiled row by row, ``per_row`` to a row, no padding (torchvision's
    ``make_grid(nrow=8, padding=0)`` as the official demo uses; a missing tile is filled with 0)."""
    count, h, w, c = images.shape
    cols = min(per_row, count)
    rows = -(-count // cols)
    out = np.zeros((rows * h, cols * w, c), dtype=images.dtype)
    for i in range(count):
        r, k = divmod(i, cols)
        out[r * h : (r + 1) * h, k * w : (k + 1) * w] = images[i]
    return out


__all__ = ["png_bytes", "write_png", "grid"]
