"""A path of nodes read by operator: the one grouping every report uses (depth, CLI, tests, audit).

A witness path (``DepthResult.witness``) runs source first, output last. Consecutive nodes in the
same operator scope form one group; each group carries the scope path, the innermost operator's
paper reference, the depth vector it adds and the gates (non-wiring primitives) it passes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from tc0sim.ir.graph import Node
from tc0sim.ir.vectors import Vec, add, unit, zero


@dataclass
class PathGroup:
    """Consecutive nodes of a path in one operator scope."""

    operator: str
    ref: str
    depth: Vec
    gates: list[str] = field(default_factory=list)


def group_path(path: Sequence[Node]) -> list[PathGroup]:
    """The path grouped by operator scope (``"(top)"`` outside every operator)."""
    groups: list[PathGroup] = []
    for node in path:
        where = node.scope_path or "(top)"
        if not groups or groups[-1].operator != where:
            groups.append(PathGroup(where, node.scope[-1].ref if node.scope else "", zero()))
        symbol = node.prim.symbol
        if symbol is not None:
            groups[-1].depth = add(groups[-1].depth, unit(symbol))
            groups[-1].gates.append(node.prim.name)
    return groups


def path_vector(path: Sequence[Node]) -> Vec:
    """The depth vector of a path: one count per gate of each symbol."""
    total = zero()
    for group in group_path(path):
        total = add(total, group.depth)
    return total
