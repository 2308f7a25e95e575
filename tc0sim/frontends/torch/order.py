"""Lowering rules of ATen's order ops — sort, topk, argmax/argmin, max/min with indices (docs/torch.md, "Order").

No comparison network is built: every element's *rank* is counted at once, as a threshold circuit
would (constant depth, n² comparisons per row). For a row x₀ … x_{n−1} sorted in decreasing order,

    rank_i = ⊕_j t_ij,   t_ij = [x_i < x_j] for j ≥ i,  1 − [x_j < x_i] for j < i

(the elements above x_i, and the equal ones before it: ties keep their index order, so the ranks are
a permutation of 0 … n−1); increasing order swaps the comparisons. Then [rank_i = k] is the one-hot
of ``nn.lookup`` and the k-th value is ⊕_i [rank_i = k]·x_i, its index ⊕_i [rank_i = k]·i. Every
step is exact while every k ± ½ (k < n) is in F_p, i.e. p ≥ the bit length of 2n − 1 (as for a
lookup): depth 5 d_std + 2 d_sum.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tc0sim.frontends.torch.reduce import _kept, tree
from tc0sim.frontends.torch.values import Lazy, Lowering
from tc0sim.ir.graph import Tensor
from tc0sim.ops.activations import scalar


def _last(lw: Lowering, t: Tensor, axis: int) -> Tensor:
    """``t`` with ``axis`` moved last."""
    return lw.b.transpose(t, [i for i in range(t.ndim) if i != axis] + [axis])


def _back(lw: Lowering, t: Tensor, axis: int) -> Tensor:
    """Inverse of ``_last``."""
    order = list(range(t.ndim - 1))
    order.insert(axis, t.ndim - 1)
    return lw.b.transpose(t, order)


def ranked(lw: Lowering, x: Any, dim: int, descending: bool, k: int | None = None) -> tuple[Tensor, Tensor]:
    """(values, indices) of the first ``k`` elements of each row along ``dim`` in sorted order."""
    t = lw.tensor(x)
    if t.ndim == 0:
        t = lw.b.reshape(t, (1,))
    axis = dim % t.ndim
    row = _last(lw, t, axis)
    n = row.shape[-1]
    k = n if k is None else k
    xi = lw.b.reshape(row, row.shape + (1,))                    # [..., i, 1]
    xj = lw.b.reshape(row, row.shape[:-1] + (1, n))             # [..., 1, j]
    ahead, behind = (xi, xj) if descending else (xj, xi)
    above = lw.b.compare(ahead, behind)                         # [x_i < x_j] (decreasing order)
    before = lw.b.sub(scalar(lw.b, 1, above), lw.b.compare(behind, ahead))  # 1 − [x_j < x_i]
    j = np.arange(n)
    choose = np.where(j[None, :] < j[:, None], n + j[None, :], j[None, :])  # t_ij from [above | before]
    both = lw.b.concat([above, before], axis=above.ndim - 1)
    terms = lw.b.gather(lw.b.reshape(both, both.shape[:-2] + (n * 2 * n,)),
                        (np.arange(n)[:, None] * 2 * n + choose), axis=both.ndim - 2)
    rank = lw.b.sum(terms, axis=terms.ndim - 1)                 # [..., i]
    places = np.arange(k, dtype=np.float64).reshape((1,) * (rank.ndim - 1) + (1, k))
    column = lw.b.reshape(rank, rank.shape + (1,))               # [..., i, 1]
    hot = lw.b.min(lw.b.compare(lw.constant(places - 0.5), column), lw.b.compare(column, lw.constant(places + 0.5)))
    values = lw.b.sum(lw.b.mul(hot, lw.b.reshape(row, row.shape + (1,))), axis=hot.ndim - 2)
    numbers = lw.constant(np.arange(n, dtype=np.int64).reshape((1,) * (rank.ndim - 1) + (n, 1)))
    indices = lw.b.sum(lw.b.mul(hot, numbers), axis=hot.ndim - 2)
    return _back(lw, values, axis), _back(lw, indices, axis)


def sort(lw: Lowering, x: Any, dim: int = -1, descending: bool = False) -> tuple[Tensor, Tensor]:
    """(values, indices) in increasing (or decreasing) order; ties in index order."""
    return ranked(lw, x, dim, descending)


def sort_stable(lw: Lowering, x: Any, *, stable: bool | None = None, dim: int = -1, descending: bool = False) -> tuple[Tensor, Tensor]:
    return ranked(lw, x, dim, descending)


def topk(lw: Lowering, x: Any, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> tuple[Tensor, Tensor]:
    """The k largest (smallest) values and their indices, in sorted order (also when sorted=False)."""
    return ranked(lw, x, dim, largest, int(k))


def arg(descending: bool) -> Any:
    """argmax (descending) / argmin: the index of rank 0 (the first of equal extremes, as torch)."""

    def rule(lw: Lowering, x: Any, dim: int | None = None, keepdim: bool = False) -> Tensor:
        t = lw.tensor(x)
        if dim is None:
            t, dim = lw.b.reshape(t, (int(np.prod(t.shape)),)), 0
        axis = dim % t.ndim
        index = ranked(lw, t, axis, descending, 1)[1]
        return index if keepdim else lw.b.reshape(index, tuple(d for i, d in enumerate(t.shape) if i != axis))

    rule.__name__ = rule.__qualname__ = "argmax" if descending else "argmin"
    return rule


def extreme_with_index(prim: str) -> Any:
    """``max.dim`` / ``min.dim``: the value by a ``prim`` tree (exact), the index by rank (built when read)."""

    def rule(lw: Lowering, x: Any, dim: int, keepdim: bool = False) -> Lazy:
        t = lw.tensor(x)
        axis = dim % t.ndim
        value = _kept(lw, tree(lw, prim, t, (axis,)), t, (axis,), keepdim)
        return Lazy((lambda: value, lambda: arg(prim == "max")(lw, t, axis, keepdim)))

    rule.__name__ = rule.__qualname__ = f"{prim}_dim"
    return rule
