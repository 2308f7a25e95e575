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
