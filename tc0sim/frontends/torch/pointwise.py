"""Lowering rules of elementwise ATen ops (docs/torch.md, "Elementwise ops").

Each rule emits primitives through the Builder; every primitive rounds once. Comparisons give
exact 0/1 values through ``compare`` (a < b); selections and logic on 0/1 values are exact.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

import numpy as np
import torch

from tc0sim.errors import GraphError
from tc0sim.frontends.torch.values import Lowering, Masked
from tc0sim.ir.graph import Tensor
from tc0sim.ops import activations, glu


def _one(lw: Lowering, like: Tensor) -> Tensor:
    return activations.scalar(lw.b, 1, like)


def _not(lw: Lowering, x: Tensor) -> Tensor:
    """1 − x of a 0/1 value (exact)."""
    return lw.b.sub(_one(lw, x), x)


def binary(prim: str) -> Any:
    """``prim`` of two operands (tensors or numbers), broadcast numpy-style."""

    def rule(lw: Lowering, x: Any, y: Any) -> Tensor:
        return getattr(lw.b, prim)(*lw.operands(x, y))

    return rule


def _scaled(lw: Lowering, y: Any, alpha: Any) -> Any:
    if alpha == 1:
        return y
    return alpha * y if isinstance(y, (int, float, torch.Tensor)) else lw.b.mul(*lw.operands(y, alpha))


def add(lw: Lowering, x: Any, y: Any, alpha: Any = 1) -> Any:
    """x + alpha·y (alpha ≠ 1: one more rounded ⊗ first); a −∞ mask passes through."""
    y = _scaled(lw, y, alpha)
    x, y = (_maskable(lw, v) for v in (x, y))
    if isinstance(x, Masked) or isinstance(y, Masked):
        return _masked_add(lw, x, y)
    return lw.b.add(*lw.operands(x, y))


def sub(lw: Lowering, x: Any, y: Any, alpha: Any = 1) -> Tensor:
    """x − alpha·y."""
    return lw.b.sub(*lw.operands(x, _scaled(lw, y, alpha)))


def rsub(lw: Lowering, x: Any, y: Any, alpha: Any = 1) -> Tensor:
    """y − alpha·x."""
    return sub(lw, y, x, alpha)


def _maskable(lw: Lowering, v: Any) -> Any:
    """A folded tensor with −∞ entries as a Masked constant (other values unchanged)."""
    if isinstance(v, torch.Tensor) and v.is_floating_point() and bool(torch.isneginf(v).any()):
        if not bool(torch.isfinite(v[~torch.isneginf(v)]).all()):
            raise GraphError(f"{lw.where()}: a constant with +∞ or NaN enters the circuit")
        keep = (~torch.isneginf(v)).to(torch.int64)
        return Masked(lw.constant(torch.where(keep.bool(), v, torch.zeros_like(v))), lw.constant(keep))
    return v


def _masked_add(lw: Lowering, x: Any, y: Any) -> Masked:
    """(a, keep_a) + (b, keep_b) = (a + b, keep_a · keep_b): −∞ + anything finite is −∞."""
    parts = [v if isinstance(v, Masked) else Masked(lw.tensor(v), None) for v in lw_pair(lw, x, y)]
    value = lw.b.add(parts[0].value, parts[1].value)
    keeps = [p.keep for p in parts if p.keep is not None]
    keep = keeps[0] if len(keeps) == 1 else lw.b.mul(*keeps)
    return Masked(value, lw.b.broadcast(keep, value.shape) if keep.shape != value.shape else keep)


def lw_pair(lw: Lowering, x: Any, y: Any) -> list[Any]:
    """Numbers among two operands as constants of the other's rank (Masked kept)."""
    plain = [v.value if isinstance(v, Masked) else v for v in (x, y)]
    converted = lw.operands(*plain)
    return [v if isinstance(v, Masked) else c for v, c in zip((x, y), converted)]


def mul(lw: Lowering, x: Any, y: Any) -> Any:
    """x·y; a −∞ mask times a positive number stays a mask."""
    for a, c in ((x, y), (y, x)):
        if isinstance(a, Masked) and isinstance(c, (int, float)) and c > 0:
            return Masked(lw.b.mul(*lw.operands(a.value, c)), a.keep)
    return lw.b.mul(*lw.operands(x, y))


def div(lw: Lowering, x: Any, y: Any, rounding_mode: str | None = None) -> Tensor:
    """round_p(x / y); a rounding mode (floor, trunc) has no lowering on circuit values."""
    if rounding_mode is not None:
        raise GraphError(f"{lw.where()}: division with rounding_mode={rounding_mode!r} of circuit values")
    return lw.b.div(*lw.operands(x, y))


# comparisons: exact 0/1 values from compare(a, b) = [a < b]
def lt(lw: Lowering, x: Any, y: Any) -> Tensor:
    """[x < y]; against a ±∞ number the answer is known, as every F_p value is finite."""
    for value, other, below in ((y, x, True), (x, y, False)):
        if isinstance(value, float) and math.isinf(value):
            t = lw.tensor(other)
            known = int((value > 0) == below)
            return lw.b.broadcast(lw.constant(np.full((1,) * t.ndim, known, dtype=np.int64)), t.shape)
    return lw.b.compare(*lw.operands(x, y))


def gt(lw: Lowering, x: Any, y: Any) -> Tensor:
    return lt(lw, y, x)


def le(lw: Lowering, x: Any, y: Any) -> Tensor:
    """1 − [y < x]."""
    return _not(lw, gt(lw, x, y))


def ge(lw: Lowering, x: Any, y: Any) -> Tensor:
    return _not(lw, lt(lw, x, y))


def ne(lw: Lowering, x: Any, y: Any) -> Tensor:
    """max([x < y], [y < x])."""
    return lw.b.max(lt(lw, x, y), lt(lw, y, x))


def sign(lw: Lowering, x: Any) -> Tensor:
    """[0 < x] − [x < 0], exact."""
    return lw.b.sub(lt(lw, 0, x), lt(lw, x, 0))


def eq(lw: Lowering, x: Any, y: Any) -> Tensor:
    return _not(lw, ne(lw, x, y))


def logical_not(lw: Lowering, x: Any) -> Tensor:
    """1 − x of a bool; x == 0 of a number."""
    return _not(lw, lw.tensor(x)) if lw.arg_dtype(0) == torch.bool else eq(lw, x, 0)


def truth(lw: Lowering, v: Any, index: int) -> Tensor:
    """A bool operand as is; a number as [v ≠ 0]."""
    return lw.tensor(v) if lw.arg_dtype(index) == torch.bool else ne(lw, v, 0)


def logical_and(lw: Lowering, x: Any, y: Any) -> Tensor:
    return lw.b.min(truth(lw, x, 0), truth(lw, y, 1))


def logical_or(lw: Lowering, x: Any, y: Any) -> Tensor:
    return lw.b.max(truth(lw, x, 0), truth(lw, y, 1))


def on_bools(rule: Any) -> Any:
    """A bitwise op: the logical rule on bool operands; integers have no lowering."""

    def checked(lw: Lowering, *args: Any) -> Tensor:
        if any(lw.arg_dtype(i) not in (torch.bool, None) for i in range(len(args))):
            raise GraphError(f"{lw.where()}: bitwise operations on integers have no lowering")
        return rule(lw, *args)

    checked.__name__ = checked.__qualname__ = f"bitwise_{rule.__name__}"
    return checked


def where(lw: Lowering, cond: Any, x: Any, y: Any) -> Any:
    """c·x + (1 − c)·y (exact for a 0/1 condition); a −∞ branch makes a mask (keep = the other side)."""
    c = lw.tensor(cond)
    if _is_minus_inf(x) or _is_minus_inf(y):
        keep, other = (_not(lw, c), y) if _is_minus_inf(x) else (c, x)
        kept = lw.b.mul(*lw.operands(keep, other))
        return Masked(kept, lw.b.broadcast(keep, kept.shape))
    a, d = lw.operands(x, y)
    return lw.b.add(lw.b.mul(c, a), lw.b.mul(_not(lw, c), d))


def _is_minus_inf(v: Any) -> bool:
    if isinstance(v, float):
        return v == float("-inf")
    return isinstance(v, torch.Tensor) and v.numel() == 1 and bool(torch.isneginf(v).all())


def clamp(lw: Lowering, x: Any, lo: Any = None, hi: Any = None) -> Tensor:
    """max(min(x, hi), lo), exact (either bound may be absent)."""
    y = lw.tensor(x)
    if hi is not None:
        y = lw.b.min(*lw.operands(y, hi))
    if lo is not None:
        y = lw.b.max(*lw.operands(y, lo))
    return y


def hardtanh(lw: Lowering, x: Any, lo: float = -1.0, hi: float = 1.0) -> Tensor:
    """clamp(x, lo, hi), exact."""
    return clamp(lw, x, lo, hi)


def leaky_relu(lw: Lowering, x: Any, slope: float = 0.01) -> Tensor:
    """max(x, slope·x) for 0 ≤ slope ≤ 1 (equal to x > 0 ? x : round_p(slope·x)); else the selection."""
    t = lw.tensor(x)
    scaled = lw.b.mul(*lw.operands(t, slope))
    return lw.b.max(t, scaled) if 0 <= slope <= 1 else where(lw, gt(lw, t, 0), t, scaled)


def elu(lw: Lowering, x: Any, alpha: float = 1.0, scale: float = 1.0, input_scale: float = 1.0) -> Tensor:
    """scale · (x > 0 ? x : alpha·(e^(input_scale·x) − 1)), each product and the − 1 rounded."""
    t = lw.tensor(x)
    inner = t if input_scale == 1 else lw.b.mul(*lw.operands(t, input_scale))
    negative = lw.b.mul(*lw.operands(expm1(lw, inner), alpha))
    y = where(lw, gt(lw, t, 0), t, negative)
    return y if scale == 1 else lw.b.mul(*lw.operands(y, scale))


def abs_(lw: Lowering, x: Any) -> Tensor:
    """max(x, −x), exact (−x is wiring)."""
    t = lw.tensor(x)
    return lw.b.max(t, lw.b.neg(t))


def unary(prim: str) -> Any:
    def rule(lw: Lowering, x: Any) -> Tensor:
        return getattr(lw.b, prim)(lw.tensor(x))

    return rule


def log1p(lw: Lowering, x: Any) -> Tensor:
    """round_p(ln(round_p(1 + x))): two roundings (absolute error ≈ 2^−p near 0)."""
    t = lw.tensor(x)
    return lw.b.log(lw.b.add(_one(lw, t), t))


def expm1(lw: Lowering, x: Any) -> Tensor:
    """round_p(round_p(e^x) − 1): two roundings."""
    t = lw.tensor(x)
    return lw.b.sub(lw.b.exp(t), _one(lw, t))


def reciprocal(lw: Lowering, x: Any) -> Tensor:
    """round_p(1 / x)."""
    t = lw.tensor(x)
    return lw.b.div(_one(lw, t), t)


def rsqrt(lw: Lowering, x: Any) -> Tensor:
    """round_p(1 / round_p(√x)): two roundings."""
    return reciprocal(lw, lw.b.sqrt(lw.tensor(x)))


def pow_scalar(lw: Lowering, x: Any, exponent: Any) -> Tensor:
    """x^k for an integer k by square-and-multiply (each ⊗ rounded; k < 0: 1 ÷ x^|k|), x^½ = √x."""
    t = lw.tensor(x)
    e = Fraction(exponent)
    if e.denominator == 2 and abs(e.numerator) == 1:
        root = lw.b.sqrt(t)
        return root if e > 0 else reciprocal(lw, root)
    if e.denominator != 1:
        raise GraphError(f"{lw.where()}: x^{exponent} with a non-integer exponent has no lowering")
    k = abs(int(e))
    if k == 0:
        return lw.b.broadcast(_one(lw, t), t.shape)
    result, square = None, t
    while k:
        if k & 1:
            result = square if result is None else lw.b.mul(result, square)
        k >>= 1
        if k:
            square = lw.b.mul(square, square)
    return result if e > 0 else reciprocal(lw, result)


def pow_base(lw: Lowering, base: Any, exponent: Any) -> Tensor:
    """b^x for a number b > 0: e^(x · ln b), ln b a ``log`` gate of the constant (three roundings); b = 1 gives 1."""
    t = lw.tensor(exponent)
    if not isinstance(base, (int, float)) or base <= 0:
        raise GraphError(f"{lw.where()}: {base}^x has no lowering (a base ≤ 0)")
    if base == 1:
        return lw.b.broadcast(_one(lw, t), t.shape)
    return lw.b.exp(lw.b.mul(t, lw.b.log(activations.scalar(lw.b, base, t))))


def sigmoid(lw: Lowering, x: Any) -> Tensor:
    """1 / (1 + e^(−x)) (``ops.activations.sigmoid``)."""
    return activations.sigmoid(lw.b, lw.tensor(x))


def silu(lw: Lowering, x: Any) -> Tensor:
    """x / (1 + e^(−x)) (``ops.activations.silu``)."""
    return activations.silu(lw.b, lw.tensor(x))


def tanh(lw: Lowering, x: Any) -> Tensor:
    """2 / (1 + e^(−2x)) − 1: exact identity, four roundings (absolute error ≈ 2^−p near 0)."""
    t = lw.tensor(x)
    two = activations.scalar(lw.b, 2, t)
    s = lw.b.div(two, lw.b.add(_one(lw, t), lw.b.exp(lw.b.mul(activations.scalar(lw.b, -2, t), t))))
    return lw.b.sub(s, _one(lw, t))


def gelu(lw: Lowering, x: Any, approximate: str = "none") -> Tensor:
    """tanh: x / (1 + e^(−2z)) (``ops.activations.gelu_tanh``); none: (x·½)·(1 + erf(x·√½)) (``ops.glu.gelu``)."""
    t = lw.tensor(x)
    return activations.gelu_tanh(lw.b, t) if approximate == "tanh" else glu.gelu(lw.b, t)


WIDENING = {torch.bool: {torch.uint8, torch.int32, torch.int64}, torch.uint8: {torch.int32, torch.int64},
            torch.int32: {torch.int64}}
"""Integer casts that keep every value (the identity on the circuit's integers)."""


def to_copy(lw: Lowering, x: Any, dtype: torch.dtype | None = None, **_: Any) -> Any:
    """A cast between floating dtypes, or a widening integer cast, is the identity on F_p values; to
    bool it is [x ≠ 0]; from floating values to an integer it has no lowering."""
    source = lw.arg_dtype(0)
    if dtype is None or dtype.is_floating_point or source == dtype or dtype in WIDENING.get(source, ()):
        return x
    if dtype == torch.bool:
        return ne(lw, x, 0)
    raise GraphError(f"{lw.where()}: a cast of circuit values from {source} to {dtype} has no lowering (an integer part "
                     "has no exact circuit of the primitives at every precision); compute it outside and pass it as an "
                     "integer input of forward")


def identity(lw: Lowering, x: Any, *_: Any, **__: Any) -> Any:
    return x


def nothing(lw: Lowering, *_: Any, **__: Any) -> None:
    """Assertions on metadata: no circuit."""
    return None
