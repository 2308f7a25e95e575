"""Wiring as data movement: one numpy move rule per wiring primitive (docs/dag.md: depth 0, size 0).

The same rules move values (evaluate) and scalar gate ids (expand), so the interpreters cannot
disagree on where an element goes; ``origin`` inverts them for one element (the depth
interpreter's witness paths). The rules are declared in the
primitive table (``Primitive.move``, written in ``tc0sim.ir.moves``).
"""

from __future__ import annotations

import math

import numpy as np

from tc0sim.errors import MissingRuleError
from tc0sim.ir.graph import Node
from tc0sim.ir.moves import ORIGINS, Fill, MoveRule, Origin, Position
from tc0sim.ir.rules import RuleTable

MOVE_RULES: RuleTable[MoveRule] = RuleTable("wiring", lambda p: p.move)
"""Where every element of a wiring node comes from; ``pad`` asks ``fill`` for its zero."""


def move(node: Node, arrays: list[np.ndarray], fill: Fill = lambda: 0) -> np.ndarray:
    """Apply the wiring node to ``arrays`` (values, class ids or gate ids)."""
    return MOVE_RULES[node.prim](node, arrays, fill)


def _origin_by_moving_ids(node: Node, shapes: list[tuple[int, ...]], position: Position) -> tuple[int, Position] | None:
    """The origin of an element under a move rule without its own inverse: move the operand's
    element ids (one operand; -1 for new elements) and read the id at the position."""
    if len(shapes) != 1:
        raise MissingRuleError("wiring origin", node.prim.name)
    ids = np.arange(math.prod(shapes[0]), dtype=np.int64).reshape(shapes[0])
    found = int(move(node, [ids], lambda: -1)[position])
    return None if found < 0 else (0, tuple(int(x) for x in np.unravel_index(found, shapes[0])))


ORIGIN_RULES: RuleTable[Origin] = RuleTable(
    "wiring origin", lambda p: ORIGINS.get(p.move, _origin_by_moving_ids if p.move is not None else None)
)
"""For one element of a wiring node, the operand and position it comes from (the inverse of its move)."""


def origin(node: Node, shapes: list[tuple[int, ...]], position: Position) -> tuple[int, Position] | None:
    """Where element ``position`` of the wiring node comes from: (operand slot, position), or None
    for one of pad's zeros."""
    return ORIGIN_RULES[node.prim](node, shapes, position)
