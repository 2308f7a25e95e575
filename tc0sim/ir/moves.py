"""Move rules: where every element of a wiring node comes from, as numpy array movement.

The primitive table (``tc0sim.ir.primitives``) names one rule per wiring primitive
(``Primitive.move``); ``tc0sim.ir.wiring.move`` dispatches on it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import numpy as np


class Node(Protocol):
    """What a move rule reads of a node (``tc0sim.ir.graph.Node``): its attributes."""

    attrs: dict[str, Any]


Fill = Callable[[], Any]
MoveRule = Callable[[Node, list[np.ndarray], Fill], np.ndarray]


def same_place(node: Node, arrays: list[np.ndarray], fill: Fill) -> np.ndarray:
    """Element i comes from element i (``neg``: the sign flip is free wiring)."""
    return arrays[0]


def reshape(node: Node, arrays: list[np.ndarray], fill: Fill) -> np.ndarray:
    return arrays[0].reshape(node.attrs["shape"])


def transpose(node: Node, arrays: list[np.ndarray], fill: Fill) -> np.ndarray:
    return arrays[0].transpose(node.attrs["perm"])


def slice_axis(node: Node, arrays: list[np.ndarray], fill: Fill) -> np.ndarray:
    index = [slice(None)] * arrays[0].ndim
    index[node.attrs["axis"]] = slice(node.attrs["start"], node.attrs["stop"], node.attrs["step"])
    return arrays[0][tuple(index)]


def concat(node: Node, arrays: list[np.ndarray], fill: Fill) -> np.ndarray:
    return np.concatenate(arrays, axis=node.attrs["axis"])


def broadcast(node: Node, arrays: list[np.ndarray], fill: Fill) -> np.ndarray:
    return np.broadcast_to(arrays[0], node.attrs["shape"])


def gather(node: Node, arrays: list[np.ndarray], fill: Fill) -> np.ndarray:
    return np.take(arrays[0], node.attrs["indices"], axis=node.attrs["axis"])


def pad(node: Node, arrays: list[np.ndarray], fill: Fill) -> np.ndarray:
    """Zero padding: the new elements are ``fill()`` (the zero of whatever is being moved)."""
    return np.pad(arrays[0], node.attrs["widths"], constant_values=fill())


CREATING: frozenset[MoveRule] = frozenset({pad})
"""Move rules that create elements (pad's zeros): a created element is a constant, of depth 0."""

VIEWS: frozenset[MoveRule] = frozenset({same_place, transpose, slice_axis, broadcast})
"""Move rules whose result is a numpy view of the operand (no new array, and the operand's array
stays alive while the view does). ``reshape`` is a view too when the operand is C-contiguous;
numpy copies otherwise. The rest build a new array (of references, for object arrays)."""


Position = tuple[int, ...]
Origin = Callable[[Node, list[tuple[int, ...]], Position], "tuple[int, Position] | None"]
"""The inverse of a move rule for one element: (operand slot, position in it), or None for a new
element (pad's zeros). Given the node, its operands' shapes and the element's position."""


def same_place_origin(node: Node, shapes: list[tuple[int, ...]], pos: Position) -> tuple[int, Position]:
    return 0, pos


def reshape_origin(node: Node, shapes: list[tuple[int, ...]], pos: Position) -> tuple[int, Position]:
    flat = 0
    for x, d in zip(pos, node.attrs["shape"]):
        flat = flat * d + x
    out = []
    for d in reversed(shapes[0]):
        flat, x = divmod(flat, d)
        out.append(x)
    return 0, tuple(reversed(out))


def transpose_origin(node: Node, shapes: list[tuple[int, ...]], pos: Position) -> tuple[int, Position]:
    out = [0] * len(pos)
    for i, a in enumerate(node.attrs["perm"]):
        out[a] = pos[i]
    return 0, tuple(out)


def slice_origin(node: Node, shapes: list[tuple[int, ...]], pos: Position) -> tuple[int, Position]:
    ax = node.attrs["axis"]
    return 0, pos[:ax] + (node.attrs["start"] + node.attrs["step"] * pos[ax],) + pos[ax + 1 :]


def concat_origin(node: Node, shapes: list[tuple[int, ...]], pos: Position) -> tuple[int, Position]:
    ax = node.attrs["axis"]
    x = pos[ax]
    for slot, shape in enumerate(shapes):
        if x < shape[ax]:
            return slot, pos[:ax] + (x,) + pos[ax + 1 :]
        x -= shape[ax]
    raise IndexError(f"position {pos} is outside the concatenation")


def broadcast_origin(node: Node, shapes: list[tuple[int, ...]], pos: Position) -> tuple[int, Position]:
    extra = len(pos) - len(shapes[0])
    return 0, tuple(0 if d == 1 else x for x, d in zip(pos[extra:], shapes[0]))


def gather_origin(node: Node, shapes: list[tuple[int, ...]], pos: Position) -> tuple[int, Position]:
    ax, indices = node.attrs["axis"], node.attrs["indices"]
    q = indices.ndim
    return 0, pos[:ax] + (int(indices[pos[ax : ax + q]]),) + pos[ax + q :]


def pad_origin(node: Node, shapes: list[tuple[int, ...]], pos: Position) -> tuple[int, Position] | None:
    inner = tuple(x - before for x, (before, _) in zip(pos, node.attrs["widths"]))
    return (0, inner) if all(0 <= x < d for x, d in zip(inner, shapes[0])) else None


ORIGINS: dict[MoveRule, Origin] = {
    same_place: same_place_origin,
    reshape: reshape_origin,
    transpose: transpose_origin,
    slice_axis: slice_origin,
    concat: concat_origin,
    broadcast: broadcast_origin,
    gather: gather_origin,
    pad: pad_origin,
}
"""The origin rule of each move rule (a wiring primitive's origin follows from its ``move``)."""
