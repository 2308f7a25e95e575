"""The size interpreter: exact gate counts per primitive and per operator (docs/dag.md).

A node of shape (a, b, c) is a·b·c parallel gates (one gate of fan-in k per output element of a
⊕/⊗ node); wiring counts 0. Only shapes are read, so graphs of 10^12 gates cost nothing extra.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from tc0sim.ir.graph import Graph, Node
from tc0sim.ir.primitives import PRIMITIVES
from tc0sim.ir.rules import RuleTable


def _gates(node: Node, graph: Graph) -> int:
    return node.size


def _no_gates(node: Node, graph: Graph) -> int:
    return 0


SIZE_RULES: RuleTable = RuleTable("size", lambda row: _no_gates if row.is_wiring else _gates)
"""A gate per element of every compute node; wiring and sources count 0."""


def _reductions() -> dict[str, int]:
    return {row.name: 0 for row in PRIMITIVES.values() if row.role == "reduction"}


def fan_in(node: Node, graph: Graph) -> int:
    """Fan-in of each gate of a ⊕/⊗ node: the product of the reduced dimensions."""
    src = graph.node(node.inputs[0]).shape
    return math.prod(src[a] for a in node.attrs["axes"])


@dataclass
class SizeReport:
    """Exact gate counts of a graph (only nodes that reach an output are counted)."""

    total: int = 0
    by_primitive: Counter = field(default_factory=Counter)
    by_operator: Counter = field(default_factory=Counter)
    max_fan_in: dict[str, int] = field(default_factory=_reductions)

    def as_dict(self) -> dict:
        return {
            "total": self.total,
            "by_primitive": dict(sorted(self.by_primitive.items())),
            "by_operator": dict(sorted(self.by_operator.items())),
            "max_fan_in": dict(self.max_fan_in),
        }


def size(graph: Graph) -> SizeReport:
    """Count gates per primitive, per operator scope (innermost scope path) and in total."""
    report = SizeReport()
    for node in graph.live():
        gates = SIZE_RULES.rule(node.prim)(node, graph)
        if not gates:
            continue
        report.total += gates
        report.by_primitive[node.prim] += gates
        report.by_operator[node.scope_path or "(top)"] += gates
        if node.prim in report.max_fan_in:
            report.max_fan_in[node.prim] = max(report.max_fan_in[node.prim], fan_in(node, graph))
    return report
