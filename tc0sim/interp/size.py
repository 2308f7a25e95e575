"""The size interpreter: exact gate counts per primitive and per operator (docs/dag.md).

A node of shape (a, b, c) is a·b·c parallel gates (one gate of fan-in k per output element of a
⊕/⊗ node); wiring counts 0. Only shapes are read, so graphs of 10^12 gates cost nothing extra.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

from tc0sim.ir.graph import CALL, RESULT, Graph, Node
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
    """Count gates per primitive, per operator scope (innermost scope path) and in total.

    A call counts its body's gates (only those its used results need) under the call's scopes;
    each body is counted once per set of used results, however often it is called."""
    report = SizeReport()
    counted = _count(graph, None, {})
    report.total, report.by_primitive = counted.total, counted.by_primitive
    report.by_operator = Counter({path or "(top)": n for path, n in counted.by_operator.items()})
    report.max_fan_in.update(counted.max_fan_in)
    return report


def _count(graph: Graph, outputs: list[str] | None, memo: dict) -> SizeReport:
    """Gate counts of the part of ``graph`` that ``outputs`` need (scope paths relative, '' at top)."""
    report = SizeReport()
    live = graph.live(outputs)
    used: dict[int, set[int]] = {}
    for node in live:
        if node.prim == RESULT:
            used.setdefault(node.inputs[0], set()).add(node.attrs["index"])
    for node in live:
        if node.prim == RESULT:
            continue
        if node.prim == CALL:
            fn = node.attrs["fn"]
            key = (fn, frozenset(used[node.id]))
            if key not in memo:
                names = list(fn.graph.outputs)
                memo[key] = _count(fn.graph, [names[i] for i in sorted(used[node.id])], memo)
            _add(report, memo[key], node.scope_path)
            continue
        gates = SIZE_RULES.rule(node.prim)(node, graph)
        if not gates:
            continue
        report.total += gates
        report.by_primitive[node.prim] += gates
        report.by_operator[node.scope_path] += gates
        if node.prim in report.max_fan_in:
            report.max_fan_in[node.prim] = max(report.max_fan_in[node.prim], fan_in(node, graph))
    return report


def _add(report: SizeReport, inner: SizeReport, prefix: str) -> None:
    """Add a body's counts to ``report``, its scope paths under ``prefix``."""
    report.total += inner.total
    report.by_primitive.update(inner.by_primitive)
    for path, n in inner.by_operator.items():
        report.by_operator[f"{prefix}/{path}" if prefix and path else prefix or path] += n
    for prim, k in inner.max_fan_in.items():
        report.max_fan_in[prim] = max(report.max_fan_in.get(prim, 0), k)
