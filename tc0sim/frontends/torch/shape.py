"""Lowering rules of ATen ops that only move elements: wiring, depth 0 and size 0 (docs/torch.md).

Views, permutations, slices, concatenation, broadcasting and padding map onto the wiring
primitives of the same name. Every other move with static arguments (advanced indexing with
folded indices, ``flip``, ``roll``, ``repeat``, ``tril``, ``gather``, …) is found by running the op
in torch on the *element numbers* of its operand: the result says, for each output element,
which input element it is (or that it is zero), and becomes one ``gather``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from tc0sim.errors import GraphError
from tc0sim.frontends.torch import pointwise as pw
from tc0sim.frontends.torch.values import Lowering, Masked
from tc0sim.ir.graph import Tensor

Rule = Callable[..., Any]


def masks_move(rule: Rule) -> Rule:
    """The same move applied to a mask's scores and to its keep tensor."""

    def moved(lw: Lowering, x: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(x, Masked):
            return Masked(rule(lw, x.value, *args, **kwargs), rule(lw, x.keep, *args, **kwargs))
        return rule(lw, x, *args, **kwargs)

    moved.__name__ = moved.__qualname__ = rule.__name__
    moved.__doc__ = rule.__doc__
    return moved


def _axis(axis: int, ndim: int) -> int:
    return axis % ndim if ndim else 0


def view(lw: Lowering, x: Any, shape: Sequence[int]) -> Tensor:
    """Row-major reshape (one −1 is inferred)."""
    t = lw.tensor(x)
    shape = [int(d) for d in shape]
    if -1 in shape:
        known = math.prod(d for d in shape if d != -1)
        shape[shape.index(-1)] = math.prod(t.shape) // known if known else 0
    return lw.b.reshape(t, shape)


def permute(lw: Lowering, x: Any, dims: Sequence[int]) -> Tensor:
    t = lw.tensor(x)
    return lw.b.transpose(t, [_axis(d, t.ndim) for d in dims])


def transpose(lw: Lowering, x: Any, dim0: int, dim1: int) -> Tensor:
    t = lw.tensor(x)
    perm = list(range(t.ndim))
    a, c = _axis(dim0, t.ndim), _axis(dim1, t.ndim)
    perm[a], perm[c] = perm[c], perm[a]
    return lw.b.transpose(t, perm)


def t(lw: Lowering, x: Any) -> Tensor:
    t_ = lw.tensor(x)
    return t_ if t_.ndim < 2 else transpose(lw, t_, 0, 1)


def expand(lw: Lowering, x: Any, sizes: Sequence[int], implicit: bool = False) -> Tensor:
    """Broadcast to ``sizes`` (−1 keeps an axis)."""
    t_ = lw.tensor(x)
    lead = len(sizes) - t_.ndim
    shape = [t_.shape[i - lead] if int(s) == -1 else int(s) for i, s in enumerate(sizes)]
    return lw.b.broadcast(t_, shape)


def unsqueeze(lw: Lowering, x: Any, dim: int) -> Tensor:
    t_ = lw.tensor(x)
    d = dim % (t_.ndim + 1)
    return lw.b.reshape(t_, t_.shape[:d] + (1,) + t_.shape[d:])


def squeeze(lw: Lowering, x: Any, dims: Any = None) -> Tensor:
    t_ = lw.tensor(x)
    axes = range(t_.ndim) if dims is None else [dims] if isinstance(dims, int) else dims
    drop = {_axis(a, t_.ndim) for a in axes if t_.shape[_axis(a, t_.ndim)] == 1}
    return lw.b.reshape(t_, tuple(d for i, d in enumerate(t_.shape) if i not in drop))


def slice_(lw: Lowering, x: Any, dim: int = 0, start: int | None = None, end: int | None = None, step: int = 1) -> Tensor:
    """Python slicing of one axis (out-of-range bounds clamp, as in torch)."""
    t_ = lw.tensor(x)
    axis = _axis(dim, t_.ndim)
    lo, hi, _ = slice(start, end, step).indices(t_.shape[axis])
    hi = max(hi, lo)
    if (lo, hi, step) == (0, t_.shape[axis], 1):
        return t_
    return lw.b.slice(t_, axis, lo, hi, step)


def select(lw: Lowering, x: Any, dim: int, index: int) -> Tensor:
    t_ = lw.tensor(x)
    axis = _axis(dim, t_.ndim)
    i = index % t_.shape[axis]
    return lw.b.reshape(lw.b.slice(t_, axis, i, i + 1), t_.shape[:axis] + t_.shape[axis + 1:])


def cat(lw: Lowering, tensors: Sequence[Any], dim: int = 0) -> Any:
    """Join along ``dim`` (legacy empty 1-D operands are skipped); masks join part by part."""
    if any(isinstance(v, Masked) for v in tensors):
        parts = [v if isinstance(v, Masked) else Masked(lw.tensor(v), None) for v in tensors]
        keeps = [p.keep if p.keep is not None else lw.b.broadcast(lw.constant(np.ones((1,) * p.value.ndim, dtype=np.int64)), p.value.shape) for p in parts]
        return Masked(cat(lw, [p.value for p in parts], dim), cat(lw, keeps, dim))
    ts = [lw.tensor(v) for v in tensors]
    ts = [v for v in ts if not (v.shape == (0,) and any(u.ndim > 1 for u in ts))]
    return lw.b.concat(ts, _axis(dim, ts[0].ndim))


def split_with_sizes(lw: Lowering, x: Any, sizes: Sequence[int], dim: int = 0) -> tuple[Tensor, ...]:
    t_ = lw.tensor(x)
    axis, start, out = _axis(dim, t_.ndim), 0, []
    for s in sizes:
        out.append(lw.b.slice(t_, axis, start, start + int(s)))
        start += int(s)
    return tuple(out)


def split(lw: Lowering, x: Any, size: int, dim: int = 0) -> tuple[Tensor, ...]:
    t_ = lw.tensor(x)
    n = t_.shape[_axis(dim, t_.ndim)]
    return split_with_sizes(lw, t_, [min(size, n - s) for s in range(0, n, size)], dim)


def unbind(lw: Lowering, x: Any, dim: int = 0) -> tuple[Tensor, ...]:
    t_ = lw.tensor(x)
    return tuple(select(lw, t_, dim, i) for i in range(t_.shape[_axis(dim, t_.ndim)]))


def constant_pad_nd(lw: Lowering, x: Any, pad: Sequence[int], value: float = 0) -> Tensor:
    """Padding pairs from the last axis backwards; a negative width slices; a nonzero value is
    added where the padding is (x + 0 and 0 + value are exact)."""
    t_ = lw.tensor(x)
    widths = [(0, 0)] * t_.ndim
    for k in range(len(pad) // 2):
        widths[t_.ndim - 1 - k] = (int(pad[2 * k]), int(pad[2 * k + 1]))
    for axis, (lo, hi) in enumerate(widths):
        if lo < 0 or hi < 0:
            t_ = lw.b.slice(t_, axis, max(-lo, 0), t_.shape[axis] - max(-hi, 0))
    padded = lw.b.pad(t_, [(max(lo, 0), max(hi, 0)) for lo, hi in widths])
    if value == 0:
        return padded
    inside = np.pad(np.zeros(t_.shape), [(max(lo, 0), max(hi, 0)) for lo, hi in widths], constant_values=1.0)
    return lw.b.add(padded, lw.constant(inside * value))


def gathered(lw: Lowering, x: Any, move: Callable[[torch.Tensor], torch.Tensor]) -> Tensor:
    """The move ``move`` (a torch function of one tensor) as one gather of x's elements.

    ``move`` runs on the numbers 1…N of x's elements (row-major); 0 in its result is a zero."""
    t_ = lw.tensor(x)
    numbers = torch.arange(1, math.prod(t_.shape) + 1, dtype=torch.int64).reshape(t_.shape)
    where = move(numbers).numpy()
    flat = lw.b.reshape(t_, (math.prod(t_.shape),))
    if (where == 0).any():
        return lw.b.gather(lw.b.pad(flat, ((1, 0),)), where, axis=0)
    return lw.b.gather(flat, where - 1, axis=0)


def static_move(op: Any) -> Rule:
    """A move whose other arguments are static (folded): ``op(x, *args)`` as one gather."""

    def rule(lw: Lowering, x: Any, *args: Any, **kwargs: Any) -> Tensor:
        if not _static(args):
            raise GraphError(f"{lw.where()}: indices computed from circuit values (a data-dependent gather) "
                             "have no lowering here; an embedding lookup does (docs/torch.md)")
        return gathered(lw, x, lambda numbers: op(numbers, *args, **kwargs))

    rule.__name__ = rule.__qualname__ = f"static_{getattr(op, '__name__', 'move')}"
    rule.__doc__ = f"``{op}`` with static arguments, as one gather."
    return rule


def _static(args: Sequence[Any]) -> bool:
    return not any(isinstance(a, Tensor) or (isinstance(a, (list, tuple)) and any(isinstance(i, Tensor) for i in a))
                   for a in args)


def static_scatter(op: Any) -> Rule:
    """``op(x, src, *args)`` writing ``src`` into a copy of ``x`` at static places (``slice_scatter``,
    ``index_put`` with folded indices, …): one gather from x's elements followed by src's, found by
    running ``op`` on the numbers 1…N of x and N+1…N+M of src."""

    def rule(lw: Lowering, x: Any, src: Any, *args: Any, **kwargs: Any) -> Tensor:
        if not _static(args):
            raise GraphError(f"{lw.where()}: a write at places computed from circuit values has no lowering")
        t_, v = lw.tensor(x), lw.tensor(src)
        n, m = math.prod(t_.shape), math.prod(v.shape)
        numbers = torch.arange(n + m, dtype=torch.int64)
        where = op(numbers[:n].reshape(t_.shape), numbers[n:].reshape(v.shape), *args, **kwargs).numpy()
        flat = lw.b.concat([lw.b.reshape(t_, (n,)), lw.b.reshape(v, (m,))], 0)
        return lw.b.gather(flat, where, axis=0)

    rule.__name__ = rule.__qualname__ = f"static_{getattr(op, '__name__', 'scatter')}"
    rule.__doc__ = f"``{op}`` at static places, as one gather."
    return rule


def copy(lw: Lowering, x: Any, src: Any, non_blocking: bool = False) -> Tensor:
    """``copy`` (what an in-place write becomes after functionalisation): src broadcast to x's shape."""
    return lw.b.broadcast(lw.operands(x, src)[1], lw.tensor(x).shape)


_PUT = static_scatter(lambda x, values, indices: torch.ops.aten.index_put.default(x, indices, values))


def index_put(lw: Lowering, x: Any, indices: Sequence[Any], values: Any, accumulate: bool = False) -> Tensor:
    """``x[indices] = values`` with folded indices, one gather; ``+=`` (accumulate) has no lowering."""
    if accumulate:
        raise GraphError(f"{lw.where()}: index_put with accumulate=True (x[i] += v) has no lowering")
    if len(indices) == 1 and isinstance(indices[0], Tensor) and _is_bool(lw, 0) and math.prod(_shape(values)) == 1:
        return _where_mask(lw, indices[0], values, x)
    return _PUT(lw, x, values, list(indices))


def _shape(v: Any) -> tuple[int, ...]:
    return tuple(getattr(v, "shape", ()))


def _is_bool(lw: Lowering, i: int) -> bool:
    """Whether the node's i-th index (of its list argument 1) is a bool tensor."""
    index = lw.node.args[1][i] if lw.node is not None else None
    return getattr(getattr(index, "meta", {}).get("val"), "dtype", None) == torch.bool


def _where_mask(lw: Lowering, mask: Tensor, value: Any, x: Any) -> Tensor:
    """``x[mask] = value`` for a circuit-valued bool mask over x's leading axes: ``where(mask, value, x)``."""
    t_ = lw.tensor(x)
    keep = lw.b.broadcast(lw.b.reshape(mask, mask.shape + (1,) * (t_.ndim - mask.ndim)), t_.shape)
    value = value if isinstance(value, (int, float)) else lw.b.reshape(lw.tensor(value), (1,) * t_.ndim)
    return pw.where(lw, keep, value, t_)
