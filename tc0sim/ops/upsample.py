"""Bicubic up-interpolation (VAR Definition 4.3 / Lemma 5.1, FlowAR Definition B.1 / Lemma 4.2).

``Y_ijl = ⊕_{s,t ∈ {−1,0,1,2}} ((W_s · X_{·,·,l}) · W_t)`` with the bicubic weights of PyTorch's
``F.interpolate(mode="bicubic", align_corners=False)`` for an explicit output size: the source
coordinate of output row i is ``(i + 1/2)·h/h' − 1/2``, its four taps are ``⌊·⌋ − 1 … ⌊·⌋ + 2``
clamped to the border, and the weights are Keys' cubic convolution kernel with ``a = −3/4``.
The weights are computed exactly as Fractions when the circuit is built and held as constants.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np

from tc0sim.errors import ConfigError, GraphError
from tc0sim.ir.budget import CONSTANT_ELEMENT_BYTES, INDEX_BYTES
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind

REF = "VAR Lemma 5.1 / FlowAR Lemma 4.2"
KEYS_A = Fraction(-3, 4)
"""The Keys cubic convolution parameter PyTorch uses for bicubic interpolation."""

TAP_OFFSETS = (-1, 0, 1, 2)
"""The offsets s, t of the four taps around the floor of the source coordinate."""


def keys_kernel(x: Fraction, a: Fraction = KEYS_A) -> Fraction:
    """Keys' cubic convolution kernel W(x) (piecewise cubic, support (−2, 2))."""
    x = abs(x)
    if x <= 1:
        return ((a + 2) * x - (a + 3)) * x * x + 1
    if x < 2:
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a
    return Fraction(0)


@lru_cache(maxsize=None)
def bicubic_taps(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Tap indices ``[out_size, 4]`` (int64, border-clamped) and exact weights ``[out_size, 4]``.

    Output position i reads source coordinate ``(i + 1/2)·in/out − 1/2`` (align_corners=False,
    not clamped at 0, as PyTorch's cubic path); ``t`` is its distance to the floor, and the four
    weights are ``W(t + 1), W(t), W(1 − t), W(2 − t)``.
    """
    if in_size < 1 or out_size < 1:
        raise ConfigError(f"upsample: sizes must be positive, got in={in_size}, out={out_size}")
    scale = Fraction(in_size, out_size)
    indices = np.empty((out_size, 4), dtype=np.int64)
    weights = np.empty((out_size, 4), dtype=object)
    for i in range(out_size):
        source = (i + Fraction(1, 2)) * scale - Fraction(1, 2)
        floor = math.floor(source)
        t = source - floor
        for k, offset in enumerate(TAP_OFFSETS):
            indices[i, k] = min(max(floor + offset, 0), in_size - 1)
            weights[i, k] = keys_kernel(t - offset)
    indices.flags.writeable = weights.flags.writeable = False  # cached: shared by every caller
    return indices, weights


def upsample(b: Builder, x: Tensor, out_h: int, out_w: int, name: str = "upsample") -> Tensor:
    """X[h, w, c] → Y[out_h, out_w, c]: gather 4×4 taps, ·W_s, ·W_t, one ⊕ of 16 terms (2d_std + d_sum)."""
    if x.ndim != 3:
        raise GraphError(f"{name}: expected a feature map [h, w, c], got shape {x.shape}")
    h, w, c = x.shape
    b.reserve(4 * (out_h + out_w), INDEX_BYTES + CONSTANT_ELEMENT_BYTES, f"{name}: bicubic taps")
    row_idx, row_w = bicubic_taps(h, out_h)
    col_idx, col_w = bicubic_taps(w, out_w)
    with b.scope(name, REF):
        rows = b.gather(x, row_idx, axis=0)  # [out_h, 4, w, c]
        taps = b.gather(rows, col_idx, axis=2)  # [out_h, 4, out_w, 4, c]
        row_weights = b.constant(row_w.reshape(out_h, 4, 1, 1, 1))
        col_weights = b.constant(col_w.reshape(1, 1, out_w, 4, 1))
        weighted = b.mul(b.mul(row_weights, taps), col_weights)
        return b.sum(weighted, axis=(1, 3))


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    h, w, c, r = dims["h"], dims["w"], dims["c"], dims["r"]
    x = b.input("X", (h, w, c))
    return {"out": upsample(b, x, r * h, r * w)}


KINDS: tuple[Kind, ...] = (
    Kind(
        "upsample",
        ("h", "w", "c", "r"),
        _build,
        REF,
        doc="bicubic up-interpolation by r (PyTorch align_corners=False): ⊕ of 16 taps (W_s·X)·W_t",
    ),
)
"""The kinds this module defines (listed by its package's __init__)."""
