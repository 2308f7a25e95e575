"""Helpers every model shares: parameter checks, weights, and the token layout of Remark 3.10."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from tc0sim.errors import ConfigError
from tc0sim.ir.graph import Builder, Tensor


def check_positive_int(kind: str, name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int ≥ ``minimum``, else a ConfigError naming the param."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{kind}: param {name!r} must be an integer ≥ {minimum}, got {value!r}")
    return value


def weight(b: Builder, name: str, shape: tuple[int, ...]) -> Tensor:
    """A weight input (role 'weight') of the given shape."""
    return b.input(name, shape, role="weight")


def tokens(b: Builder, maps: Sequence[Tensor]) -> Tensor:
    """Flatten token maps ``[h_i, w_i, c]`` row-major and concatenate them: ``[Σ h_i w_i, c]`` (Remark 3.10)."""
    return b.concat([b.reshape(m, (m.shape[0] * m.shape[1], m.shape[2])) for m in maps], axis=0)


def split_maps(b: Builder, x: Tensor, sizes: Sequence[tuple[int, int]]) -> list[Tensor]:
    """The inverse of ``tokens``: the rows of ``x`` cut into maps of the given sizes."""
    maps, start = [], 0
    for h, w in sizes:
        maps.append(b.reshape(b.slice(x, 0, start, start + h * w), (h, w, x.shape[1])))
        start += h * w
    return maps
