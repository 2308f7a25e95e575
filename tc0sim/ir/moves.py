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
