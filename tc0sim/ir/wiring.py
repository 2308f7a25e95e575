"""Wiring as data movement: one numpy move rule per wiring primitive (docs/dag.md: depth 0, size 0).

The same rules move values (evaluate), class maps (depth) and scalar gate ids (expand), so the
three interpreters cannot disagree on where an element goes. The rules are declared in the
primitive table (``Primitive.move``, written in ``tc0sim.ir.moves``).
"""

from __future__ import annotations

import numpy as np

from tc0sim.ir.graph import Node
from tc0sim.ir.moves import Fill, MoveRule
from tc0sim.ir.rules import RuleTable

MOVE_RULES: RuleTable[MoveRule] = RuleTable("wiring", lambda p: p.move)
"""Where every element of a wiring node comes from; ``pad`` asks ``fill`` for its zero."""


def move(node: Node, arrays: list[np.ndarray], fill: Fill = lambda: 0) -> np.ndarray:
    """Apply the wiring node to ``arrays`` (values, class ids or gate ids)."""
    return MOVE_RULES.rule(node.prim)(node, arrays, fill)
