"""RMS normalisation as the released FlowAR builds it (its ``RMSNorm`` module, eps 1e-6).

``RMSNorm(x) = x · rsqrt(⊕(x·x) ÷ c + eps)`` over the last axis, then ``· weight`` when the module
has one. ``rsqrt`` is lowered as ``1 ÷ √·`` (two roundings), then one multiplication by x, as the
official ``x * torch.rsqrt(...)`` reads.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from tc0sim.errors import GraphError
from tc0sim.ir.graph import Builder, Tensor

REF = "FlowAR RMSNorm (models/flowar.py)"
RMS_EPS = Fraction(1, 10**6)
"""The eps of every RMSNorm of FlowAR (the decimal 1e-6, rounded to p bits on entry)."""


def rms_norm(b: Builder, x: Tensor, weight: Tensor | None = None, eps: Any = RMS_EPS, name: str = "rms_norm") -> Tensor:
    """x · (1 ÷ √(⊕x² ÷ c + eps)) [· weight]: 5 d_std + d_sum + d_sqrt (one more with a weight)."""
    c = x.shape[-1]
    if weight is not None and weight.shape != (c,):
        raise GraphError(f"{name}: weight of shape {weight.shape} for rows of width {c}")
    with b.scope(name, REF):
        mean_square = b.div(b.sum(b.mul(x, x), axis=x.ndim - 1), b.constant(c))
        inverse = b.div(b.constant(1), b.sqrt(b.add(mean_square, b.constant(eps))))
        y = b.mul(x, b.reshape(inverse, x.shape[:-1] + (1,)))
        return y if weight is None else b.mul(y, weight)
