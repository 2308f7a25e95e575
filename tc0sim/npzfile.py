"""Checks of an ``--inputs`` .npz archive member made from its header, before its data is read.

An .npz is a zip of .npy files; each .npy starts with a small header giving dtype and shape. Reading
the header first means a member of the wrong shape (possibly huge, possibly a decompression
bomb) is refused without decompressing it; a truncated or corrupt member is a ConfigError, never a
traceback (``zipfile.BadZipFile``, ``zlib.error``, ``EOFError``).
"""

from __future__ import annotations

import zipfile
import zlib
from typing import Any

import numpy as np

from tc0sim.errors import ConfigError

READ_ERRORS = (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error)
"""What numpy and zipfile raise on a truncated or corrupt archive."""


def member_header(path: str, archive: Any, name: str, option: str = "--inputs") -> tuple[tuple[int, ...], Any]:
    """``(shape, dtype)`` of member ``name`` of the open NpzFile ``archive``, read from its header only."""
    stored = f"{name}.npy" if f"{name}.npy" in archive.zip.namelist() else name
    try:
        with archive.zip.open(stored) as member:
            version = np.lib.format.read_magic(member)
            if version == (1, 0):
                shape, _, dtype = np.lib.format.read_array_header_1_0(member)
            else:
                shape, _, dtype = np.lib.format.read_array_header_2_0(member)
    except READ_ERRORS as e:
        raise ConfigError(f"{option} {path}: array {name!r} cannot be read ({' '.join(str(e).split())})") from None
    return tuple(shape), dtype


def check_member_header(path: str, archive: Any, name: str, expected: tuple[int, ...]) -> None:
    """Refuse member ``name`` of the open NpzFile ``archive`` unless its header says shape ``expected``
    and a real (integer or float) dtype."""
    shape, dtype = member_header(path, archive, name)
    if tuple(shape) != tuple(expected):
        raise ConfigError(f"--inputs {path}: input {name!r} has shape {tuple(shape)}, expected {tuple(expected)}")
    if dtype.kind not in "iuf":
        raise ConfigError(f"--inputs {path}: input {name!r} has dtype {dtype}, expected real numbers")
