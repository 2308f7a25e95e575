"""The size interpreter: exact gate counts per primitive and per operator (docs/dag.md).

A node of shape (a, b, c) is a·b·c parallel gates (one gate of fan-in k per output element of a
⊕/⊗ node); wiring counts 0. Only shapes are read, so graphs of 10^12 gates cost nothing extra.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from tc0sim.ir.graph import Graph, Node
from tc0sim.ir.primitives import CALL, PRIMITIVES
from tc0sim.ir.rules import RuleTable


@dataclass
class Counting:
    """What a size rule reads besides its node: the graph, each live call's used results, the
    counts of the bodies met so far (by body and used results) and the report being filled."""

    graph: Graph
    used: dict[int, frozenset[int]]
    memo: dict
    report: SizeReport


SizeRule = Callable[[Node, Counting], int]
"""A size rule: (node, counting) -> the gates the node itself counts."""


def _gates(node: Node, where: Counting) -> int:
    return node.size


def _no_gates(node: Node, where: Counting) -> int:
    return 0


def _call(node: Node, where: Counting) -> int:
    """A call counts its body's gates (only those its used results need) under the call's scopes,
    each body once per set of used results; the call node itself is no gate."""
    fn = node.attrs["fn"]
    key = (fn, where.used[node.id])
    if key not in where.memo:
        where.memo[key] = _count(fn.graph, fn.outputs_named(where.used[node.id]), where.memo)
    _add(where.report, where.memo[key], node.scope_path)
    return 0


SIZE_RULES: RuleTable[SizeRule] = RuleTable("size", lambda row: _no_gates if row.is_wiring else _gates)
"""A gate per element of every compute node; wiring, sources and a call's result count 0."""
SIZE_RULES[CALL] = _call


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
    live, used = graph.live_and_used(outputs)
    where = Counting(graph, used, memo, report)
    for node in live:
        gates = SIZE_RULES[node.prim](node, where)
        if not gates:
            continue
        name = node.prim.name  # the report is keyed by name (JSON)
        report.total += gates
        report.by_primitive[name] += gates
        report.by_operator[node.scope_path] += gates
        if name in report.max_fan_in:
            report.max_fan_in[name] = max(report.max_fan_in[name], fan_in(node, graph))
    return report


def _add(report: SizeReport, inner: SizeReport, prefix: str) -> None:
    """Add a body's counts to ``report``, its scope paths under ``prefix``."""
    report.total += inner.total
    report.by_primitive.update(inner.by_primitive)
    for path, n in inner.by_operator.items():
        report.by_operator[f"{prefix}/{path}" if prefix and path else prefix or path] += n
    for prim, k in inner.max_fan_in.items():
        report.max_fan_in[prim] = max(report.max_fan_in.get(prim, 0), k)
