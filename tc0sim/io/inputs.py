"""Named arrays from .npz archives: a graph's inputs (``eval --inputs``) or any real arrays (``approx``).

An archive is opened without pickles and every member's header (dtype, shape) is checked before its
data is read (``tc0sim.npzfile``), so a wrong or huge member is refused undecompressed; every
problem is one ConfigError line naming the option, the file and the array.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from tc0sim.errors import ConfigError, one_line
from tc0sim.ir.graph import Graph
from tc0sim.limits import MAX_ARCHIVE_VALUES
from tc0sim.npzfile import READ_ERRORS, check_member_header, member_header


def _collapsed(error: BaseException) -> str:
    return " ".join(str(error).split())


@contextmanager
def _archive(path: str, option: str, describe: Callable[[BaseException], str]) -> Iterator[Any]:
    """The open NpzFile at ``path``; a missing, unreadable or single-array file is a ConfigError."""
    try:
        archive = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise ConfigError(f"{option} {path}: no such file") from None
    except READ_ERRORS as e:
        raise ConfigError(f"{option} {path}: not a readable .npz archive ({describe(e)})") from None
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ConfigError(f"{option} {path}: expected an .npz archive of named arrays, got a single array")
    with archive:
        yield archive


def _member(path: str, archive: Any, name: str, option: str, describe: Callable[[BaseException], str]) -> np.ndarray:
    try:
        return archive[name]
    except READ_ERRORS as e:
        raise ConfigError(f"{option} {path}: array {name!r} cannot be read ({describe(e)})") from None


def read_archive(path: str, option: str, kinds: str = "iuf") -> dict[str, np.ndarray]:
    """Every array of an .npz archive (no pickles); each member's header is checked (a dtype of
    ``kinds``, real numbers by default; at most MAX_ARCHIVE_VALUES values) before its data is read;
    one ConfigError line otherwise."""
    out = {}
    with _archive(path, option, _collapsed) as archive:
        for name in archive.files:
            shape, dtype = member_header(path, archive, name, option)
            values = math.prod(shape)
            if dtype.kind not in kinds or values > MAX_ARCHIVE_VALUES or values * dtype.itemsize > 8 * MAX_ARCHIVE_VALUES:
                raise ConfigError(
                    f"{option} {path}: array {name!r} ({dtype}, shape {shape}) must hold real numbers, at most "
                    f"{MAX_ARCHIVE_VALUES:,} of them"
                )
            out[name] = _member(path, archive, name, option, _collapsed)
    return out


def read_inputs(path: str, graph: Graph) -> dict[str, np.ndarray]:
    """Arrays of an .npz file (``--inputs``), checked against the graph's input names and shapes
    (from each member's header) and, for floats, to be finite."""
    arrays: dict[str, np.ndarray] = {}
    with _archive(path, "--inputs", one_line) as archive:
        for name in archive.files:
            if name not in graph.inputs:
                raise ConfigError(
                    f"--inputs {path}: unknown input {name!r}; the model's inputs are {', '.join(graph.inputs)}"
                )
            check_member_header(path, archive, name, graph.node(graph.inputs[name]).shape)
            array = _member(path, archive, name, "--inputs", one_line)
            if array.dtype.kind == "f" and not np.all(np.isfinite(array)):
                raise ConfigError(f"--inputs {path}: input {name!r} has a value that is not finite")
            arrays[name] = array
    return arrays
