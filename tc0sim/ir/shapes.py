"""Shape rules: the output shape of a primitive from its operands' shapes and its attributes.

Each rule raises GraphError on operands it cannot take. The primitive table
(``tc0sim.ir.primitives``) names one rule per primitive; the builder checks it on every node.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from tc0sim.errors import GraphError

Shape = tuple[int, ...]
ShapeRule = Callable[[list[Shape], dict[str, Any]], Shape]


def broadcast_shapes(*shapes: Shape) -> Shape:
    """numpy's broadcasting rule on shapes alone (numpy's own refuses shapes too big to allocate)."""
    if all(s == shapes[0] for s in shapes[1:]):
        return tuple(shapes[0])
    if len(shapes) == 2:
        return _broadcast_pair(*shapes)
    ndim = max(len(s) for s in shapes)
    out = []
    for axis in range(ndim):
        dims = {s[axis - ndim + len(s)] for s in shapes if axis - ndim + len(s) >= 0} - {1}
        if len(dims) > 1:
            raise GraphError(f"shapes {', '.join(map(str, shapes))} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def _broadcast_pair(a: Shape, b: Shape) -> Shape:
    """``broadcast_shapes(a, b)``, axis by axis from the right (the common case, without sets)."""
    pad = len(a) - len(b)
    x, y = (tuple(a), (1,) * pad + tuple(b)) if pad >= 0 else ((1,) * -pad + tuple(a), tuple(b))
    out = []
    for i, j in zip(x, y):
        if i == j or j == 1:
            out.append(i)
        elif i == 1:
            out.append(j)
        else:
            raise GraphError(f"shapes {a}, {b} do not broadcast")
    return tuple(out)


def norm_axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    axes = tuple(range(ndim)) if axis is None else ((axis,) if isinstance(axis, int) else tuple(axis))
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise GraphError(f"axis {a} out of range for {ndim}-d tensor")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise GraphError(f"repeated axis in {axes}")
    return tuple(sorted(out))


def same_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    if any(s != shapes[0] for s in shapes):
        raise GraphError(f"operands have shapes {', '.join(map(str, shapes))}; expected equal shapes")
    return shapes[0]


def reduce_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    (s,) = shapes
    return tuple(d for i, d in enumerate(s) if i not in attrs["axes"])


def reshape_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    (s,) = shapes
    if math.prod(s) != math.prod(attrs["shape"]):
        raise GraphError(f"cannot reshape {s} to {attrs['shape']}")
    return attrs["shape"]


def transpose_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    (s,) = shapes
    if sorted(attrs["perm"]) != list(range(len(s))):
        raise GraphError(f"{attrs['perm']} is not a permutation of the axes of {s}")
    return tuple(s[i] for i in attrs["perm"])


def slice_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    (s,) = shapes
    ax = attrs["axis"]
    if not 0 <= ax < len(s):
        raise GraphError(f"slice axis {ax} out of range for shape {s}")
    n = len(range(attrs["start"], attrs["stop"], attrs["step"]))
    if not (0 <= attrs["start"] <= s[ax] and attrs["start"] <= attrs["stop"] <= s[ax] and attrs["step"] > 0):
        raise GraphError(f"slice {attrs['start']}:{attrs['stop']}:{attrs['step']} out of range for axis {ax} of {s}")
    return s[:ax] + (n,) + s[ax + 1 :]


def concat_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    ax = attrs["axis"]
    if not shapes:
        raise GraphError("concat of no tensors")
    rest = {s[:ax] + s[ax + 1 :] for s in shapes}
    if len(rest) != 1 or any(not 0 <= ax < len(s) for s in shapes):
        raise GraphError(f"cannot concatenate shapes {', '.join(map(str, shapes))} along axis {ax}")
    first = shapes[0]
    return first[:ax] + (sum(s[ax] for s in shapes),) + first[ax + 1 :]


def broadcast_to_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    (s,) = shapes
    if broadcast_shapes(s, attrs["shape"]) != attrs["shape"]:
        raise GraphError(f"cannot broadcast {s} to {attrs['shape']}")
    return attrs["shape"]


def gather_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    (s,) = shapes
    ax, idx = attrs["axis"], attrs["indices"]
    if not 0 <= ax < len(s):
        raise GraphError(f"gather axis {ax} out of range for shape {s}")
    if idx.size and (idx.min() < 0 or idx.max() >= s[ax]):
        raise GraphError(f"gather indices out of range [0, {s[ax]}) on axis {ax} of {s}")
    return s[:ax] + idx.shape + s[ax + 1 :]


def pad_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    (s,) = shapes
    w = attrs["widths"]
    if len(w) != len(s) or any(a < 0 or b < 0 for a, b in w):
        raise GraphError(f"pad widths {w} do not fit shape {s}")
    return tuple(d + a + b for d, (a, b) in zip(s, w))


def source_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    return attrs["shape"]
