"""Concrete threshold-circuit depth and size of a DAG (``tc0sim depth MODEL --gates threshold``).

Each depth symbol is replaced by the depth of the constructed threshold circuits of its primitives
(``tc0sim.threshold``) at the model's precision p: d_std by the deepest of the circuits for the
d_std primitives the DAG uses (add, sub, mul, div, compare, max, min, relu), d_sum by the deepest
sum circuit over the arities the DAG's sums have, d_prod likewise, d_sqrt and d_exp by the sqrt
and exp circuits.
Every critical vector then gives one number, and the depth is their maximum — the length of the
deepest path when every primitive is counted at its circuit's full depth (composing the circuits
can only be shallower, never deeper).  A symbol with a primitive that has no circuit (erf; exp
outside its certified precisions; sums whose circuit has more than ``MAX_COUNT_WIRES`` estimated
wires; products of more than ``MAX_PROD_BITS``/2 bits) stays symbolic, and the answer says so.
Size: Σ over nodes of elements × circuit gates.  The circuits are not stored: their depth and
size come from counting-mode runs of the same construction code
(``tc0sim.threshold.fp_circuits.count``), equal to the built circuits' Stats.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from tc0sim.errors import ConfigError
from tc0sim.interp.depth import DepthResult
from tc0sim.ir.graph import Graph, Node
from tc0sim.ir.primitives import SYMBOLS
from tc0sim.threshold.circuit import Stats
from tc0sim.threshold.fp_circuits import (ARITY, MAX_COUNT_WIRES, MAX_PROD_BITS, PRIMS, REDUCTIONS,
                                          count, sum_wires_estimate)
from tc0sim.threshold.fp_exp import EXP_GUARD_BITS

__all__ = ["ThresholdAccount", "account", "circuit_stats", "node_arity", "MAX_PRECISION"]

MAX_PRECISION = 24


@lru_cache(maxsize=256)
def circuit_stats(prim: str, p: int, k: int) -> Stats:
    """Depth and size of the constructed circuit (counted once per process, not stored)."""
    return count(prim, p, k)


def node_arity(graph: Graph, node: Node) -> int:
    """Operands per gate: the reduced extent for a reduction, the primitive's arity otherwise."""
    row = node.prim
    if row.role == "reduction":
        shape = graph.node(node.inputs[0]).shape
        return math.prod(shape[a] for a in node.attrs["axes"])
    return row.arity or len(node.inputs)


@dataclass
class ThresholdAccount:
    """Symbol values from the circuits, the resulting depths and the circuit size of the DAG."""

    precision: int
    circuits: dict[tuple[str, int], Stats] = field(default_factory=dict)
    values: dict[str, int] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    unresolved: dict[str, str] = field(default_factory=dict)
    critical: list[tuple[int, dict[str, int]]] = field(default_factory=list)
    gates: int = 0
    wires: int = 0

    @property
    def depth(self) -> int | None:
        """The concrete depth in gates, when every symbol on the critical vectors is resolved."""
        if any(rest for _, rest in self.critical):
            return None
        return max((n for n, _ in self.critical), default=0)

    def depth_text(self) -> str:
        forms = sorted({(n, tuple(sorted(rest.items()))) for n, rest in self.critical}, reverse=True)
        texts = [" + ".join(([str(n)] if n or not rest else []) + [f"{c}·{s}" for s, c in rest]) for n, rest in forms]
        return texts[0] if len(texts) == 1 else "max(" + ", ".join(texts) + ")"

    def as_dict(self) -> dict[str, Any]:
        return {
            "precision": self.precision,
            "symbol_values": dict(self.values),
            "symbol_sources": dict(self.sources),
            "unresolved": dict(self.unresolved),
            "depth": self.depth,
            "depth_text": self.depth_text(),
            "gates": self.gates,
            "wires": self.wires,
            "circuits": [{"primitive": prim, "arity": k, **st.as_dict()} for (prim, k), st in sorted(self.circuits.items())],
        }


def account(graph: Graph, result: DepthResult, p: int) -> ThresholdAccount:
    """Replace the depth symbols by the circuits' depths at precision p (see the module doc)."""
    if not 2 <= p <= MAX_PRECISION:
        raise ConfigError(f"threshold circuits are built for 2 ≤ p ≤ {MAX_PRECISION}, got p = {p}")
    acc = ThresholdAccount(precision=p)
    deepest: dict[str, tuple[int, str]] = {}
    for node, where, times in graph.occurrences():
        row = node.prim
        if row.is_wiring or row.role == "source":
            continue
        k = node_arity(where, node)
        name = row.name  # the threshold circuits are keyed by primitive name
        if name not in PRIMS or name == "neg":
            acc.unresolved[row.symbol] = f"no threshold circuit for {name}"
            continue
        if name == "exp" and p not in EXP_GUARD_BITS:
            acc.unresolved[row.symbol] = (f"exp at p = {p}: its circuit is certified only for "
                                          f"p = {min(EXP_GUARD_BITS)}..{max(EXP_GUARD_BITS)}")
            continue
        if name == "sum" and sum_wires_estimate(p, k) > MAX_COUNT_WIRES:
            acc.unresolved[row.symbol] = (f"sum of {k} terms at p = {p}: its circuit (about "
                                          f"{sum_wires_estimate(p, k):.2g} wires) is beyond the {MAX_COUNT_WIRES:.2g} "
                                          f"wires tc0sim counts")
            continue
        if name == "prod" and k * p > MAX_PROD_BITS // 2:
            acc.unresolved[row.symbol] = f"prod of {k} terms at p = {p}: its circuit is not built here (too large)"
            continue
        key = (name, k if name in REDUCTIONS else ARITY.get(name, 2))
        if key not in acc.circuits:
            acc.circuits[key] = circuit_stats(name, p, key[1])
        stats = acc.circuits[key]
        acc.gates += times * node.size * stats.gates
        acc.wires += times * node.size * stats.wires
        label = name + (f" of {k} terms" if name in REDUCTIONS else "")
        if stats.depth > deepest.get(row.symbol, (-1, ""))[0]:
            deepest[row.symbol] = (stats.depth, label)
    for symbol, (d, label) in deepest.items():
        if symbol not in acc.unresolved:
            acc.values[symbol] = d
            acc.sources[symbol] = label
    for v in result.critical:
        number = sum(c * acc.values[s] for s, c in zip(SYMBOLS, v) if s in acc.values)
        rest = {s: c for s, c in zip(SYMBOLS, v) if c and s not in acc.values}
        acc.critical.append((number, rest))
    return acc
