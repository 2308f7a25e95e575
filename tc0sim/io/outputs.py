"""Files a command writes: the path checked before any work, written atomically, and eval's .npz.

``check_output_path`` refuses, before a command builds anything, an output whose suffix is not one
the command writes, whose directory does not exist or is not writable, or that is a directory.
``atomic_path`` gives a temporary name beside the target and renames it over the target only when
the writer finished, so a failed or interrupted run leaves no partial file and two runs writing
one file leave one complete file (the last to finish).

An eval output archive (.npz, ``eval_arrays`` / ``read_eval_arrays``) holds each output ``NAME``
as one float64 array when every value is exactly a float64, else as two arrays ``NAME.m`` and
``NAME.e`` with value m·2^e: int64 when every m fits, else m as decimal text (numpy ``U`` strings,
no pickles); the exponent e likewise. ``read_eval_arrays`` reads one back (``tc0sim show``).
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tc0sim.errors import ConfigError, Tc0simError
from tc0sim.io.inputs import read_archive
from tc0sim.limits import MAX_PRECISION

INT64_BITS = 62
"""Significands of at most this many bits are stored as int64 (with the sign, well inside 2^63)."""


def check_output_path(path: str | Path, option: str, suffixes: Sequence[str]) -> Path:
    """``path`` if a command can write it: one of ``suffixes`` (lower case, with the dot), an
    existing writable directory, not itself a directory; else a ConfigError naming ``option``."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in suffixes:
        choices = " or ".join([", ".join(suffixes[:-1]), suffixes[-1]] if len(suffixes) > 1 else list(suffixes))
        found = f"suffix {suffix!r}" if suffix else "no suffix"
        raise ConfigError(f"{option} {path}: expected a {choices} file name ({found})")
    parent = target.parent
    if not parent.is_dir():
        raise ConfigError(f"{option} {path}: directory {str(parent)!r} does not exist (No such file or directory)")
    if target.is_dir():
        raise ConfigError(f"{option} {path}: is a directory")
    if not os.access(parent, os.W_OK | os.X_OK) or (target.exists() and not os.access(target, os.W_OK)):
        raise ConfigError(f"{option} {path}: is not writable")
    return target


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary file name beside ``path`` with the same suffix; renamed onto ``path`` when the
    block ends normally, removed when it raises (or is interrupted)."""
    target = Path(path)
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=f".tmp{target.suffix}")
    os.close(handle)
    temporary = Path(name)
    mask = os.umask(0o022)
    os.umask(mask)
    os.chmod(temporary, 0o666 & ~mask)  # mkstemp makes 0600; a written file gets the usual mode
    try:
        yield temporary
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _integers(values: Sequence[int], shape: tuple[int, ...]) -> np.ndarray:
    """int64 when every value fits in INT64_BITS bits, else decimal text (``U`` strings)."""
    if all(abs(v).bit_length() <= INT64_BITS for v in values):
        return np.array(values, dtype=np.int64).reshape(shape)
    return np.array([str(v) for v in values]).reshape(shape)


def eval_arrays(outputs: Mapping[str, np.ndarray], fmt: Any) -> dict[str, np.ndarray]:
    """The .npz members of evaluated outputs at F_p ``fmt`` (``tc0sim.fp.Format``): ``NAME`` as
    float64 where every value is exactly one, else ``NAME.m`` and ``NAME.e``."""
    arrays: dict[str, np.ndarray] = {}
    for name, value in outputs.items():
        try:
            arrays[name] = fmt.to_float64_array(value)
            continue
        except Tc0simError:
            pass
        shape = tuple(np.shape(value))
        pairs = np.asarray(fmt.to_pairs(value), dtype=object).reshape(-1, 2)
        with decimal_digits():
            arrays[f"{name}.m"] = _integers([int(m) for m in pairs[:, 0]], shape)
            arrays[f"{name}.e"] = _integers([int(e) for e in pairs[:, 1]], shape)
    return arrays


def _whole(path: str | Path, name: str, values: list[Any]) -> list[int]:
    """Integers of an int64 array or of decimal text (ASCII digits, at most MAX_PRECISION bits)."""
    out = []
    for v in values:
        digits = v.lstrip("-") if isinstance(v, str) else "0"
        if not (digits.isascii() and digits.isdigit()) or len(digits) > MAX_PRECISION * 302 // 1000 + 1:
            raise ConfigError(f"{path}: array {name!r} must hold integers (int64 or decimal text of at most "
                              f"{MAX_PRECISION:,} bits)")
        out.append(int(v))
    return out


@dataclass(frozen=True)
class Output:
    """One output of an eval archive: its shape and its values, float64 or ``m`` and ``e`` arrays."""

    path: str
    name: str
    shape: tuple[int, ...]
    floats: np.ndarray | None = None
    m: np.ndarray | None = None
    e: np.ndarray | None = None

    def pairs(self, count: int | None = None) -> list[tuple[int, int]]:
        """The first ``count`` values (all by default) as exact (m, e) pairs, value m·2^e."""
        if self.floats is not None:
            out = []
            for x in self.floats.ravel()[:count].tolist():
                num, den = float(x).as_integer_ratio()
                out.append((num, -(den.bit_length() - 1)))
            return out
        assert self.m is not None and self.e is not None
        with decimal_digits():
            return list(zip(_whole(self.path, self.name + ".m", self.m.ravel()[:count].tolist()),
                            _whole(self.path, self.name + ".e", self.e.ravel()[:count].tolist())))


@contextmanager
def decimal_digits(bits: int = MAX_PRECISION) -> Iterator[None]:
    """Let integers of up to ``bits`` bits be converted to and from decimal text inside the block
    (Python's own limit is 4300 digits; a significand at p = 10^6 has 301,030)."""
    previous = sys.get_int_max_str_digits()
    sys.set_int_max_str_digits(max(previous, bits * 302 // 1000 + 2))
    try:
        yield
    finally:
        sys.set_int_max_str_digits(previous)


def read_eval_arrays(path: str | Path) -> dict[str, Output]:
    """Every output of an eval .npz (the documented reader): ``NAME`` float64 arrays, and
    ``NAME.m`` / ``NAME.e`` pairs read as exact (m, e) by ``Output.pairs``."""
    members = read_archive(str(path), "show", kinds="iufU")
    out: dict[str, Output] = {}
    for name, array in members.items():
        if name.endswith(".e") and name[:-2] + ".m" in members:
            continue
        if name.endswith(".m"):
            base = name[:-2]
            exponents = members.get(base + ".e")
            if exponents is None or exponents.shape != array.shape:
                raise ConfigError(f"{path}: {name!r} has no array {base + '.e'!r} of the same shape")
            if array.dtype.kind not in "iuU" or exponents.dtype.kind not in "iuU":
                raise ConfigError(f"{path}: {name!r} and {base + '.e'!r} must hold integers")
            out[base] = Output(str(path), base, tuple(array.shape), m=array, e=exponents)
        elif array.dtype.kind == "f":
            if not np.isfinite(array).all():
                raise ConfigError(f"{path}: array {name!r} has a value that is not finite")
            out[name] = Output(str(path), name, tuple(array.shape), floats=array.astype(np.float64))
        else:
            raise ConfigError(f"{path}: array {name!r} of dtype {array.dtype} is not an eval output")
    return out


MAX_OUTPUT_FILE_BYTES = 2**30
"""Largest eval output file ``tc0sim show`` reads."""

MAX_JSON_RANK = 32
"""Most axes of an output in an eval .json file (``show``)."""


def _flatten(nested: Any, depth: int, out: list[Any]) -> None:
    if depth == 0:
        out.append(nested)
        return
    if not isinstance(nested, list):
        raise ConfigError("the pairs do not match the shape")
    for item in nested:
        _flatten(item, depth - 1, out)


def read_eval_json(path: str | Path) -> dict[str, Output]:
    """Every output of an eval .json document (``format: tc0sim-eval``) as exact (m, e) pairs."""
    target = Path(path)
    if not target.is_file():
        raise ConfigError(f"{path}: no such file")
    if target.stat().st_size > MAX_OUTPUT_FILE_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_OUTPUT_FILE_BYTES:,} bytes")
    try:  # integers stay decimal text until shown: no digit limit, no quadratic conversion of unshown values
        document = json.loads(target.read_text(encoding="utf-8"), parse_int=str)
    except (ValueError, UnicodeDecodeError, RecursionError) as e:
        raise ConfigError(f"{path}: not a tc0sim eval JSON file ({type(e).__name__})") from None
    if not isinstance(document, dict) or document.get("format") != "tc0sim-eval" or not isinstance(document.get("outputs"), dict):
        raise ConfigError(f"{path}: not a tc0sim eval output (expected 'format: tc0sim-eval' and 'outputs')")
    out: dict[str, Output] = {}
    for name, entry in document["outputs"].items():
        raw = entry.get("shape") if isinstance(entry, dict) else None
        if (not isinstance(raw, list) or len(raw) > MAX_JSON_RANK
                or not all(isinstance(d, str) and d.isdigit() and len(d) <= 9 for d in raw)):
            raise ConfigError(f"{path}: output {name!r} has no valid 'shape' (a list of at most {MAX_JSON_RANK} sizes)")
        shape = [int(d) for d in raw]
        flat: list[Any] = []
        try:
            _flatten(entry.get("pairs"), len(shape), flat)
        except ConfigError:
            raise ConfigError(f"{path}: output {name!r}: the pairs do not match the shape {shape}") from None
        if len(flat) != math.prod(shape) or not all(isinstance(p, list) and len(p) == 2 and all(isinstance(v, str) for v in p) for p in flat):
            raise ConfigError(f"{path}: output {name!r}: expected {math.prod(shape)} integer [m, e] pairs")
        m = np.array([p[0] for p in flat] + [None], dtype=object)[:-1].reshape(shape)
        e = np.array([p[1] for p in flat] + [None], dtype=object)[:-1].reshape(shape)
        out[str(name)] = Output(str(path), str(name), tuple(shape), m=m, e=e)
    return out


def read_output(path: str | Path) -> dict[str, Output]:
    """An eval output file, .npz or .json, by its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix == ".npz":
        return read_eval_arrays(path)
    if suffix == ".json":
        return read_eval_json(path)
    raise ConfigError(f"{path}: expected an eval output file ending in .npz or .json")
