"""Area down-sampling (FlowAR Definition B.2 / Lemma 4.3): ``Y = Φ_down X``, a matmul.

``Φ_down`` averages each r_h × r_w block (PyTorch ``F.interpolate(mode="area")``, i.e. adaptive
average pooling with an output size that divides the input). Its non-zero entries are the constant
``1/(r_h·r_w)``; the lowering multiplies each input element by that constant (one d_std) and sums each
block with one ⊕ (one d_sum). The zero entries of Φ_down are not multiplied: their products are exact
zeros, which leave every exact sum, hence every rounded result, unchanged.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np

from tc0sim.errors import ConfigError, GraphError
from tc0sim.ir.budget import INDEX_BYTES
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind

REF = "FlowAR Lemma 4.3"


def downsample(b: Builder, x: Tensor, out_h: int, out_w: int, name: str = "downsample") -> Tensor:
    """X[h, w, c] → Y[out_h, out_w, c], block averages: products by 1/(r_h r_w), then one ⊕ (d_std + d_sum)."""
    if x.ndim != 3:
        raise GraphError(f"{name}: expected a feature map [h, w, c], got shape {x.shape}")
    h, w, c = x.shape
    for axis, size, out in (("h", h, out_h), ("w", w, out_w)):
        if out < 1 or size % out:
            raise ConfigError(f"{name}: output size {out} does not divide the map {axis}={size}")
    r_h, r_w = h // out_h, w // out_w
    b.reserve(h + w, INDEX_BYTES, f"{name}: block indices")
    rows = np.arange(h, dtype=np.int64).reshape(out_h, r_h)
    cols = np.arange(w, dtype=np.int64).reshape(out_w, r_w)
    with b.scope(name, REF):
        blocks = b.gather(b.gather(x, rows, axis=0), cols, axis=2)  # [out_h, r_h, out_w, r_w, c]
        weight = b.constant(Fraction(1, r_h * r_w))
        return b.sum(b.mul(weight, blocks), axis=(1, 3))


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    h, w, c, r = dims["h"], dims["w"], dims["c"], dims["r"]
    for axis, size in (("h", h), ("w", w)):
        if size % r:
            raise ConfigError(f"downsample: scale r={r} does not divide the map {axis}={size}")
    x = b.input("X", (h, w, c))
    return {"out": downsample(b, x, h // r, w // r)}


KINDS: tuple[Kind, ...] = (
    Kind(
        "downsample",
        ("h", "w", "c", "r"),
        _build,
        REF,
        doc="area down-sampling by r: Φ_down X with entries 1/r² (products, then one ⊕)",
    ),
)
"""The kinds this module defines (listed by its package's __init__)."""
