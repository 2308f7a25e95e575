"""Lowering rules of ATen reductions (docs/torch.md, "Reductions").

``sum`` is one ⊕ gate per output element (rounded once); ``mean`` is that sum ÷ the count;
``var`` follows the two-pass definition (μ, then ⊕(x − μ)² ÷ (count − correction)). ``amax``,
``amin``, ``any`` and ``all`` have no fan-in primitive: they are a balanced tree of the binary
exact ``max``/``min`` gates, depth ⌈log₂ k⌉ d_std for k elements.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from tc0sim.errors import GraphError
from tc0sim.frontends.torch.pointwise import truth
from tc0sim.frontends.torch.values import Lowering
from tc0sim.ir.graph import Tensor
from tc0sim.ops.activations import scalar


def axes_of(t: Tensor, dims: Any) -> tuple[int, ...]:
    """Reduction axes (None or [] = all, as torch's dim-list overloads read them)."""
    if dims is None or (isinstance(dims, (list, tuple)) and not dims):
        return tuple(range(t.ndim))
    dims = [dims] if isinstance(dims, int) else dims
    return tuple(sorted({d % t.ndim for d in dims})) if t.ndim else ()


def _kept(lw: Lowering, reduced: Tensor, t: Tensor, axes: tuple[int, ...], keepdim: bool) -> Tensor:
    if not keepdim:
        return reduced
    return lw.b.reshape(reduced, tuple(1 if i in axes else d for i, d in enumerate(t.shape)))


def sum_(lw: Lowering, x: Any, dims: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    """⊕ over ``dims``: one gate per output element."""
    t = lw.tensor(x)
    axes = axes_of(t, dims)
    return _kept(lw, lw.b.sum(t, axis=axes), t, axes, keepdim)


def prod(lw: Lowering, x: Any, dim: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    """⊗ over ``dim``: one ``prod`` gate (rounded once) per output element."""
    t = lw.tensor(x)
    axes = axes_of(t, dim)
    return _kept(lw, lw.b.prod(t, axis=axes), t, axes, keepdim)


def mean(lw: Lowering, x: Any, dims: Any = None, keepdim: bool = False, dtype: Any = None) -> Tensor:
    """round_p(round_p(⊕x) ÷ count)."""
    t = lw.tensor(x)
    axes = axes_of(t, dims)
    total = lw.b.sum(t, axis=axes)
    count = math.prod(t.shape[a] for a in axes)
    return _kept(lw, lw.b.div(total, scalar(lw.b, count, total)), t, axes, keepdim)


def var_mean(lw: Lowering, x: Any, dims: Any = None, *, correction: Any = 1, keepdim: bool = False) -> tuple[Tensor, Tensor]:
    """(⊕(x − μ)² ÷ (count − correction), μ) with μ = ⊕x ÷ count."""
    t = lw.tensor(x)
    axes = axes_of(t, dims)
    count = math.prod(t.shape[a] for a in axes)
    mu = mean(lw, t, axes, keepdim=True)
    centered = lw.b.sub(t, mu)
    squares = lw.b.sum(lw.b.mul(centered, centered), axis=axes)
    correction = 1 if correction is None else correction
    variance = lw.b.div(squares, scalar(lw.b, count - correction, squares))
    mu_out = mu if keepdim else lw.b.reshape(mu, tuple(d for i, d in enumerate(t.shape) if i not in axes))
    return _kept(lw, variance, t, axes, keepdim), mu_out


def var(lw: Lowering, x: Any, dims: Any = None, *, correction: Any = 1, keepdim: bool = False) -> Tensor:
    return var_mean(lw, x, dims, correction=correction, keepdim=keepdim)[0]


def vector_norm(lw: Lowering, x: Any, order: Any = 2, dims: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
    """‖x‖ over dims: order 2 is √(⊕x²) (as ``ops.norms.l2_normalize``), 1 is ⊕|x|, ∞ a max tree of |x|."""
    t = lw.tensor(x)
    axes = axes_of(t, dims)
    magnitude = lw.b.max(t, lw.b.neg(t))
    if order == 2:
        reduced = lw.b.sqrt(lw.b.sum(lw.b.mul(t, t), axis=axes))
    elif order == 1:
        reduced = lw.b.sum(magnitude, axis=axes)
    elif order == float("inf"):
        reduced = tree(lw, "max", magnitude, axes)
    else:
        raise GraphError(f"{lw.where()}: a vector norm of order {order} has no lowering")
    return _kept(lw, reduced, t, axes, keepdim)


def tree(lw: Lowering, prim: str, t: Tensor, axes: tuple[int, ...]) -> Tensor:
    """``prim`` (max or min) over ``axes`` as a balanced tree of binary gates."""
    rest = [i for i in range(t.ndim) if i not in axes]
    moved = lw.b.transpose(t, rest + list(axes))
    k = math.prod(t.shape[a] for a in axes)
    y = lw.b.reshape(moved, tuple(t.shape[i] for i in rest) + (k,))
    last = y.ndim - 1
    while k > 1:
        half = k // 2
        paired = getattr(lw.b, prim)(lw.b.slice(y, last, 0, half), lw.b.slice(y, last, half, 2 * half))
        y = lw.b.concat([paired, lw.b.slice(y, last, 2 * half, k)], last) if k % 2 else paired
        k = half + k % 2
    return lw.b.reshape(y, y.shape[:-1])


def extreme(prim: str) -> Any:
    """amax / amin over dims."""

    def rule(lw: Lowering, x: Any, dims: Sequence[int] = (), keepdim: bool = False) -> Tensor:
        t = lw.tensor(x)
        axes = axes_of(t, dims)
        return _kept(lw, tree(lw, prim, t, axes), t, axes, keepdim)

    rule.__name__ = rule.__qualname__ = f"a{prim}"
    return rule


def logical(prim: str) -> Any:
    """any (max) / all (min) of truth values over dims."""

    def rule(lw: Lowering, x: Any, dims: Any = None, keepdim: bool = False) -> Tensor:
        t = truth(lw, x, 0)
        axes = axes_of(t, dims)
        return _kept(lw, tree(lw, prim, t, axes), t, axes, keepdim)

    rule.__name__ = rule.__qualname__ = {"max": "any", "min": "all"}[prim]
    return rule


def cumsum(lw: Lowering, x: Any, dim: int, dtype: Any = None) -> Tensor:
    """y_i = ⊕_{j ≤ i} x_j: one ⊕ gate of fan-in i + 1 per element (the terms gathered, zeros padded)."""
    t = lw.tensor(x)
    axis = dim % t.ndim
    n = t.shape[axis]
    moved = lw.b.transpose(t, [i for i in range(t.ndim) if i != axis] + [axis])
    padded = lw.b.pad(moved, [(0, 0)] * (t.ndim - 1) + [(0, 1)])
    j = np.arange(n)
    terms = lw.b.gather(padded, np.where(j[None, :] <= j[:, None], j[None, :], n), axis=t.ndim - 1)
    summed = lw.b.sum(terms, axis=t.ndim)
    back = list(range(t.ndim - 1))
    back.insert(axis, t.ndim - 1)
    return lw.b.transpose(summed, back)
