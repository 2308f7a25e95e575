"""Wiring as data movement: one numpy rule per wiring primitive (SPEC §2: depth 0, size 0).

The same rules move values (evaluate), class maps (depth) and scalar gate ids (expand), so the
three interpreters cannot disagree on where an element goes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from tc0sim.interp.rules import rule_for
from tc0sim.ir.graph import Node

Fill = Callable[[], Any]
MoveRule = Callable[[Node, list[np.ndarray], Fill], np.ndarray]


def _slice(node: Node, arrays: list[np.ndarray], fill: Fill) -> np.ndarray:
    index = [slice(None)] * arrays[0].ndim
    index[node.attrs["axis"]] = slice(node.attrs["start"], node.attrs["stop"], node.attrs["step"])
    return arrays[0][tuple(index)]


MOVE_RULES: dict[str, MoveRule] = {
    "reshape": lambda node, arrays, fill: arrays[0].reshape(node.attrs["shape"]),
    "transpose": lambda node, arrays, fill: arrays[0].transpose(node.attrs["perm"]),
    "slice": _slice,
    "concat": lambda node, arrays, fill: np.concatenate(arrays, axis=node.attrs["axis"]),
    "broadcast": lambda node, arrays, fill: np.broadcast_to(arrays[0], node.attrs["shape"]),
    "gather": lambda node, arrays, fill: np.take(arrays[0], node.attrs["indices"], axis=node.attrs["axis"]),
    "pad": lambda node, arrays, fill: np.pad(arrays[0], node.attrs["widths"], constant_values=fill()),
}
"""Where every element of a wiring node comes from; ``pad`` asks ``fill`` for its zero."""


def move(node: Node, arrays: list[np.ndarray], fill: Fill = lambda: 0) -> np.ndarray:
    """Apply the wiring node to ``arrays`` (values, class ids or gate ids)."""
    return rule_for(MOVE_RULES, "wiring", node.prim)(node, arrays, fill)


Position = tuple[int, ...]
OriginRule = Callable[[Node, list[tuple[int, ...]], Position], "tuple[int, Position] | None"]


def _origin_reshape(node: Node, shapes: list[tuple[int, ...]], pos: Position) -> tuple[int, Position]:
    flat = 0
    for x, d in zip(pos, node.shape):
        flat = flat * d + x
    out = []
    for d in reversed(shapes[0]):
        flat, x = divmod(flat, d)
        out.append(x)
    return 0, tuple(reversed(out))


def _origin_transpose(node: Node, shapes: list[tuple[int, ...]], pos: Position) -> tuple[int, Position]:
    out = [0] * len(pos)
    for i, a in enumerate(node.attrs["perm"]):
        out[a] = pos[i]
    return 0, tuple(out)


def _origin_slice(node: Node, shapes: list[tuple[int, ...]], pos: Position) -> tuple[int, Position]:
    ax = node.attrs["axis"]
    return 0, pos[:ax] + (node.attrs["start"] + node.attrs["step"] * pos[ax],) + pos[ax + 1 :]


def _origin_concat(node: Node, shapes: list[tuple[int, ...]], pos: Position) -> tuple[int, Position]:
    ax, x = node.attrs["axis"], pos[node.attrs["axis"]]
    for slot, shape in enumerate(shapes):
        if x < shape[ax]:
            return slot, pos[:ax] + (x,) + pos[ax + 1 :]
        x -= shape[ax]
    raise IndexError(f"position {pos} outside concat node {node.id}")


def _origin_broadcast(node: Node, shapes: list[tuple[int, ...]], pos: Position) -> tuple[int, Position]:
    extra = len(node.shape) - len(shapes[0])
    return 0, tuple(0 if d == 1 else x for x, d in zip(pos[extra:], shapes[0]))


def _origin_gather(node: Node, shapes: list[tuple[int, ...]], pos: Position) -> tuple[int, Position]:
    ax, indices = node.attrs["axis"], node.attrs["indices"]
    q = indices.ndim
    return 0, pos[:ax] + (int(indices[pos[ax : ax + q]]),) + pos[ax + q :]


def _origin_pad(node: Node, shapes: list[tuple[int, ...]], pos: Position) -> tuple[int, Position] | None:
    inner = tuple(x - before for x, (before, _) in zip(pos, node.attrs["widths"]))
    return (0, inner) if all(0 <= x < d for x, d in zip(inner, shapes[0])) else None


ORIGIN_RULES: dict[str, OriginRule] = {
    "neg": lambda node, shapes, pos: (0, pos),
    "reshape": _origin_reshape,
    "transpose": _origin_transpose,
    "slice": _origin_slice,
    "concat": _origin_concat,
    "broadcast": _origin_broadcast,
    "gather": _origin_gather,
    "pad": _origin_pad,
}
"""The inverse of MOVE_RULES for one element: which operand (slot) and position it comes from;
None for one of pad's zeros."""


def origin(node: Node, shapes: list[tuple[int, ...]], position: Position) -> tuple[int, Position] | None:
    """Where element ``position`` of the wiring node comes from: (operand slot, position) or None (a zero)."""
    return rule_for(ORIGIN_RULES, "wiring origin", node.prim)(node, shapes, position)
