"""Exact constants: arrays of ``fractions.Fraction`` from numbers given at build time (docs/dag.md).

A constant node holds its value exactly, as an object array of Fractions. ``exact_array``
converts whole numeric arrays at once: an integer or binary floating-point array (float16,
float32, float64) is checked for finiteness in one numpy call and its elements become
Fractions through ``float.as_integer_ratio`` / ``int``, which are exact for every finite binary
float (subnormals and the largest exponents included; -0.0 is the rational 0). Anything else
(lists, object arrays, decimal strings, Fractions, extended precision) goes element by element.
``ConstantCache`` hands the same exact array back for equal numeric content, so a table used
by many nodes (RoPE sin/cos, resize matrices, time embeddings) is converted once per build.
"""

from __future__ import annotations

import math
from fractions import Fraction
from collections.abc import Callable
from typing import Any

import numpy as np

from tc0sim.errors import GraphError

_BINARY_FLOATS = (np.float16, np.float32, np.float64)


def _from_numeric(arr: np.ndarray) -> np.ndarray:
    """The exact object array of an integer or float16/32/64 array (finite values only)."""
    if arr.dtype.kind == "f":
        finite = np.isfinite(arr)
        if not finite.all():
            bad = arr[~finite].reshape(-1)[0].item()
            raise GraphError(f"constant {bad!r} is not a finite number")
        values = arr.astype(np.float64).reshape(-1).tolist()  # float16/32 widen to float64 exactly
    else:
        values = arr.reshape(-1).tolist()  # Python ints, exact
    out = np.empty(arr.size, dtype=object)
    out[:] = list(map(Fraction, values))
    return out.reshape(arr.shape)


def _one(v: Any) -> Fraction:
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        raise GraphError(f"constant {v!r} is not a finite number")
    try:
        return Fraction(v)
    except (TypeError, ValueError):
        raise GraphError(f"constant {v!r} is not an exact number") from None


def _is_fast(arr: np.ndarray) -> bool:
    return arr.dtype.kind in "iu" or arr.dtype.type in _BINARY_FLOATS


def exact_array(value: Any) -> np.ndarray:
    """An object array of exact Fractions from ints, Fractions, decimal strings or finite floats."""
    if isinstance(value, np.ndarray) and _is_fast(value):
        return _from_numeric(value)
    arr = np.asarray(value, dtype=object)
    flat = arr.reshape(-1)
    out = np.empty(arr.size, dtype=object)
    if set(map(type, flat.tolist())) <= {Fraction}:
        out[:] = flat  # already exact (Fractions are immutable, so they are shared)
    else:
        out[:] = [_one(v) for v in flat]
    return out.reshape(arr.shape)


class ConstantCache:
    """Exact arrays by numeric content: equal integer/float arrays (same dtype, shape and bytes)
    share one exact array. The arrays handed out are read-only, so sharing is safe."""

    def __init__(self) -> None:
        self._arrays: dict[tuple[str, tuple[int, ...], bytes], np.ndarray] = {}

    def exact(self, value: Any) -> np.ndarray:
        """``exact_array(value)``, converted once per distinct numeric content."""
        if not (isinstance(value, np.ndarray) and _is_fast(value)):
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                value = np.asarray(value)  # a Python scalar is its float64/int64 value, exactly
                if not _is_fast(value):
                    return exact_array(value)
            else:
                return exact_array(value)
        key = (value.dtype.str, value.shape, np.ascontiguousarray(value).tobytes())
        found = self._arrays.get(key)
        if found is None:
            found = _from_numeric(value)
            found.flags.writeable = False
            self._arrays[key] = found
        return found


class LazyConstant:
    """A constant's exact value, computed the first time an interpreter reads it.

    Depth and size read only a constant's shape; a table that is expensive to compute (time
    features, rotary sin/cos at 10^-90 accuracy) is computed only when the graph is evaluated."""

    def __init__(self, shape: tuple[int, ...], compute: Callable[[], Any], cache: ConstantCache) -> None:
        self.shape, self._compute, self._cache = shape, compute, cache
        self._array: np.ndarray | None = None

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            value = self._cache.exact(self._compute())
            if value.shape != self.shape:
                raise GraphError(f"a lazy constant of shape {self.shape} computed a value of shape {value.shape}")
            self._array = value
        return self._array


def constant_value(value: np.ndarray | LazyConstant) -> np.ndarray:
    """The exact array of a constant node's ``value`` attribute (computing a lazy one)."""
    return value.array if isinstance(value, LazyConstant) else value
