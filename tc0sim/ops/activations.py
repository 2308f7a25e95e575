"""Elementwise activations lowered through exact identities onto exp, div and compare.

* ``sigmoid(x) = 1 / (1 + e^(−x))``; ``silu(x) = x · sigmoid(x) = x / (1 + e^(−x))``.
* tanh-GELU (PyTorch ``GELU(approximate="tanh")``): ``½x(1 + tanh z)`` with
  ``z = √(2/π)(x + 0.044715x³)``; since ``½(1 + tanh z) = 1/(1 + e^(−2z))`` exactly, it is lowered
  as ``x / (1 + e^(−2z))``. The irrational constant √(2/π) is held as a 256-bit rational (so it is
  correctly rounded to p bits on entry for every p up to about 250).
* ``clamp(x, lo, hi) = max(min(x, hi), lo)``.
* ``softmax(x) = e^x / ⊕ e^x`` along the last axis, without subtracting the maximum (equal in exact
  arithmetic; F_p's exponent range is wide enough that e^x does not overflow for any input that
  a float32 model produces).

Each function accepts any shape; the kinds take X[n, c].
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import gmpy2
import numpy as np

from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind, Param
from tc0sim.ops.constants import real

REF = "exact identities onto exp, div, max, min"
GELU_KAPPA = Fraction("0.044715")
"""The cubic coefficient of the tanh approximation of GELU."""


SQRT_2_OVER_PI = real(lambda two: gmpy2.sqrt(two / gmpy2.const_pi()), 2)
"""√(2/π) to 320 bits (``tc0sim.ops.constants``)."""


def scalar(b: Builder, value: Any, like: Tensor) -> Tensor:
    """A constant of shape (1, …, 1) with ``like``'s rank: it broadcasts with one wiring node, not two."""
    return b.constant(np.full((1,) * like.ndim, value, dtype=object))


def _reciprocal_one_plus_exp(b: Builder, numerator: Tensor, t: Tensor) -> Tensor:
    """numerator / (1 + e^t)."""
    return b.div(numerator, b.add(scalar(b, 1, t), b.exp(t)))


def sigmoid(b: Builder, x: Tensor, name: str = "sigmoid") -> Tensor:
    """1 / (1 + e^(−x)): d_exp + 2 d_std."""
    with b.scope(name, REF):
        return _reciprocal_one_plus_exp(b, scalar(b, 1, x), b.neg(x))


def silu(b: Builder, x: Tensor, name: str = "silu") -> Tensor:
    """x / (1 + e^(−x)): d_exp + 2 d_std."""
    with b.scope(name, REF):
        return _reciprocal_one_plus_exp(b, x, b.neg(x))


def gelu_tanh(b: Builder, x: Tensor, name: str = "gelu_tanh") -> Tensor:
    """x / (1 + e^(−2z)), z = √(2/π)(x + 0.044715 x³): d_exp + 7 d_std."""
    with b.scope(name, REF):
        cube = b.mul(b.mul(x, x), x)
        inner = b.add(x, b.mul(scalar(b, GELU_KAPPA, x), cube))
        minus_two_z = b.mul(scalar(b, -2 * SQRT_2_OVER_PI, x), inner)
        return _reciprocal_one_plus_exp(b, x, minus_two_z)


def clamp(b: Builder, x: Tensor, lo: Any, hi: Any, name: str = "clamp") -> Tensor:
    """max(min(x, hi), lo): 2 d_std, exact."""
    with b.scope(name, REF):
        return b.max(b.min(x, scalar(b, hi, x)), scalar(b, lo, x))


def softmax(b: Builder, x: Tensor, name: str = "softmax") -> Tensor:
    """e^x / ⊕ e^x along the last axis: d_exp + d_sum + d_std."""
    with b.scope(name, REF):
        e = b.exp(x)
        total = b.reshape(b.sum(e, axis=x.ndim - 1), x.shape[:-1] + (1,))
        return b.div(e, total)


def _unary_kind(fn: Any, doc: str) -> Kind:
    def build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
        return {"out": fn(b, b.input("X", (dims["n"], dims["c"])))}

    return Kind(fn.__name__, ("n", "c"), build, REF, doc=doc)


def _build_clamp(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    lo, hi = params["lo"], params["hi"]
    return {"out": clamp(b, b.input("X", (dims["n"], dims["c"])), lo, hi)}


KINDS: tuple[Kind, ...] = (
    _unary_kind(sigmoid, "1 / (1 + e^(−x))"),
    _unary_kind(silu, "SiLU: x / (1 + e^(−x))"),
    _unary_kind(gelu_tanh, "tanh-GELU: x / (1 + e^(−2z)), z = √(2/π)(x + 0.044715x³)"),
    _unary_kind(softmax, "e^x / ⊕ e^x per row (no max shift)"),
    Kind("clamp", ("n", "c"), _build_clamp, REF, doc="max(min(x, hi), lo)",
         params=(Param("lo", "rational", -1, "the lower bound (read exactly, a float at its shortest decimal)"),
                 Param("hi", "rational", 1, "the upper bound (read exactly, a float at its shortest decimal)")),
         rules=(lambda p: f"param 'lo' = {p['lo']} exceeds param 'hi' = {p['hi']}" if p["lo"] > p["hi"] else None,)),
)
"""The kinds this module defines (listed by its package's __init__)."""
