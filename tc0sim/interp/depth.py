"""The depth interpreter: the critical path as Pareto-maximal vectors over the symbols (docs/dag.md).

A path's length is a vector of counts over (d_std, d_sum, d_prod, d_exp, d_sqrt) (the VAR paper
Definition 3.3 / Lemma 3.5 give one symbolic depth per primitive). The result is exact at the
scalar level: it equals the critical depth of the graph expanded to one node per gate
(``tc0sim.interp.expand``), not a tensor-level over-approximation.

Each node's state is a list of Pareto sets (frozensets of vectors) and either no class map
(every element has the one set: *uniform*) or an int array over the node's elements indexing
the list. Wiring moves the class array with numpy (slice/gather/concat/pad may make a node
non-uniform: pad's zeros have depth 0); elementwise gates pair the classes of their operands;
a reduction gives each output element the union of the classes it reads. A class map larger than
``cap`` elements falls back to the node-level union (an upper bound): ``exact`` becomes False and
``inexact_reasons`` says where — never silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from tc0sim.errors import MissingRuleError
from tc0sim.interp.paths import group_path
from tc0sim.interp.rules import by_role, rule_for
from tc0sim.ir.graph import Graph, Node
from tc0sim.ir.wiring import move
from tc0sim.ir.primitives import PRIMITIVES, SYMBOLS
from tc0sim.ir.vectors import Number, Vec, add, as_vec, dot, fmt, leq, pareto_max, sub, to_dict, unit, zero

DEFAULT_CAP = 50_000_000
"""Largest number of elements a class-mapped node may have before the exact analysis falls back."""

PSet = frozenset  # frozenset[Vec], always Pareto-reduced
EMPTY_SET: PSet = frozenset()


def zero_set() -> PSet:
    """The Pareto set of a source, {0} (of the current symbols: the primitive table may add some)."""
    return frozenset({zero()})


def __getattr__(name: str) -> PSet:
    """``ZERO_SET`` is ``zero_set()``, computed on access."""
    if name == "ZERO_SET":
        return zero_set()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@lru_cache(maxsize=None)
def _union(sets: frozenset) -> PSet:
    """Pareto maximum of the union of a frozenset of Pareto sets."""
    return frozenset(pareto_max(v for s in sets for v in s))


@lru_cache(maxsize=None)
def _shift(s: PSet, symbol: str | None) -> PSet:
    """Every vector of ``s`` extended by one gate of ``symbol``; a gate reading nothing starts at 0."""
    base = s if s else zero_set()
    if symbol is None:
        return base
    u = unit(symbol)
    return frozenset(add(v, u) for v in base)


def _gate_set(sets: Iterable[PSet], symbol: str | None) -> PSet:
    return _shift(_union(frozenset(sets)), symbol)


@dataclass
class State:
    """Per-node depth state: Pareto ``sets`` and a ``classes`` array (None = uniform ``sets[0]``)."""

    sets: list[PSet]
    classes: np.ndarray | None = None

    @property
    def candidates(self) -> set[Vec]:
        """Every vector some element of the node reaches (used to backtrack witnesses)."""
        return {v for s in self.sets for v in s}

    def node_level(self) -> PSet:
        return _union(frozenset(self.sets))

    def class_array(self, shape: tuple[int, ...]) -> np.ndarray:
        """The class of every element (zeros for a uniform node)."""
        if self.classes is None:
            return np.zeros(shape, dtype=np.int8)
        return self.classes


def _dtype(n: int) -> type:
    return np.int8 if n < 127 else np.int16 if n < 32767 else np.int32


def _normalise(sets: list[PSet], classes: np.ndarray) -> State:
    """Merge equal sets, drop unused classes, shrink the dtype; collapse to uniform when possible."""
    if classes.size == 0:
        return State([EMPTY_SET])
    used = np.unique(classes)
    if len(used) == 1:
        return State([sets[int(used[0])]])
    index: dict[PSet, int] = {}
    remap = np.zeros(len(sets), dtype=np.int64)
    for c in used:
        remap[c] = index.setdefault(sets[int(c)], len(index))
    merged = list(index)
    if len(merged) == 1:
        return State(merged)
    return State(merged, remap[classes].astype(_dtype(len(merged))))


class _Context:
    """Shared knobs and the record of inexact fallbacks while the rules run."""

    def __init__(self, cap: int):
        self.cap = cap
        self.reasons: list[str] = []

    def fits(self, node: Node, why: str) -> bool:
        if node.size <= self.cap:
            return True
        self.reasons.append(
            f"node {node.id} ({node.prim} {node.name!r} in {node.scope_path or '(top)'}, {node.size} elements) "
            f"{why}: class map above the cap of {self.cap} elements; node-level union used"
        )
        return False


Rule = Callable[[Node, list[State], list[tuple[int, ...]], _Context], State]


def _source(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: _Context) -> State:
    return State([zero_set() if node.size else EMPTY_SET])


def _fallback(node: Node, ins: list[State], extra: Iterable[PSet] = ()) -> State:
    return State([_gate_set([s.node_level() for s in ins] + list(extra), PRIMITIVES[node.prim].symbol)])


def _elementwise(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: _Context) -> State:
    """Each output element reads the same position of every operand (shapes are equal)."""
    symbol = PRIMITIVES[node.prim].symbol
    if node.size == 0:
        return State([EMPTY_SET])
    mapped = [s for s in ins if s.classes is not None]
    if not mapped:
        return State([_gate_set([s.sets[0] for s in ins], symbol)])
    if not ctx.fits(node, "elementwise gate over non-uniform operands"):
        return _fallback(node, ins)
    uniform = [s.sets[0] for s in ins if s.classes is None]
    if len(mapped) == 1:
        (m,) = mapped
        return _normalise([_gate_set([cls, *uniform], symbol) for cls in m.sets], m.classes)
    key = np.zeros(node.shape, dtype=np.int64)
    for m in mapped:
        key = key * len(m.sets) + m.classes
    pairs, inverse = np.unique(key.reshape(-1), return_inverse=True)
    sets = []
    for k in pairs.tolist():
        chosen = []
        for m in reversed(mapped):
            k, c = divmod(k, len(m.sets))
            chosen.append(m.sets[c])
        sets.append(_gate_set(chosen + uniform, symbol))
    return _normalise(sets, inverse.reshape(node.shape))


def _reduction(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: _Context) -> State:
    """Each output element reads every element along the reduced axes (one gate of fan-in k)."""
    symbol = PRIMITIVES[node.prim].symbol
    (state,) = ins
    axes = node.attrs["axes"]
    if node.size == 0:
        return State([EMPTY_SET])
    reduced = int(np.prod([shapes[0][a] for a in axes], dtype=np.int64))
    if state.classes is None or reduced == 0:
        return State([_gate_set([state.sets[0]] if reduced else [], symbol)])
    if not ctx.fits(node, "reduction over a non-uniform operand"):
        return _fallback(node, ins)
    n = len(state.sets)
    if n <= 62:
        key = np.zeros(node.shape, dtype=np.int64)
        for c in range(n):
            key |= (state.classes == c).any(axis=axes).astype(np.int64) << c
        combos, inverse = np.unique(key.reshape(-1), return_inverse=True)
        present = [[state.sets[c] for c in range(n) if (int(k) >> c) & 1] for k in combos]
    else:
        masks = np.stack([(state.classes == c).any(axis=axes).reshape(-1) for c in range(n)], axis=1)
        rows, inverse = np.unique(masks, axis=0, return_inverse=True)
        present = [[state.sets[c] for c in range(n) if row[c]] for row in rows]
    sets = [_gate_set(p, symbol) for p in present]
    return _normalise(sets, np.asarray(inverse).reshape(node.shape))


def _wiring(transform: Callable[[np.ndarray, Node], np.ndarray]) -> Rule:
    """A unary wiring rule: the class array moves exactly like the data."""

    def rule(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: _Context) -> State:
        if len(ins) != 1:
            raise MissingRuleError("depth", node.prim)  # wiring of several operands needs its own rule
        (state,) = ins
        if node.size == 0:
            return State([EMPTY_SET])
        if state.classes is None:
            return State([state.sets[0]])
        if not ctx.fits(node, f"{node.prim} of a non-uniform operand"):
            return _fallback(node, ins)
        return _normalise(state.sets, np.ascontiguousarray(transform(state.classes, node)))

    return rule



def _pad(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: _Context) -> State:
    """Zero padding: the padded elements are constants (depth 0)."""
    (state,) = ins
    if node.size == 0:
        return State([EMPTY_SET])
    if state.classes is None and state.sets[0] in (zero_set(), EMPTY_SET):
        return State([zero_set()])
    if not ctx.fits(node, "padding around a non-zero-depth operand"):
        return _fallback(node, ins, [zero_set()])
    sets = list(state.sets) + [zero_set()]
    classes = np.pad(state.class_array(shapes[0]).astype(_dtype(len(sets))), node.attrs["widths"], constant_values=len(sets) - 1)
    return _normalise(sets, classes)


def _concat(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: _Context) -> State:
    """Concatenation: each part keeps its own classes."""
    if node.size == 0:
        return State([EMPTY_SET])
    parts = [(s, shape) for s, shape in zip(ins, shapes) if np.prod(shape) > 0]
    if all(s.classes is None for s, _ in parts) and len({s.sets[0] for s, _ in parts}) == 1:
        return State([parts[0][0].sets[0]])
    if not ctx.fits(node, "concatenation of operands of different depths"):
        return _fallback(node, ins)
    sets: list[PSet] = []
    arrays = []
    for s, shape in parts:
        offset = len(sets)
        sets.extend(s.sets)
        arrays.append(s.class_array(shape).astype(np.int64) + offset)
    return _normalise(sets, np.concatenate(arrays, axis=node.attrs["axis"]))


DEPTH_RULES: dict[str, Rule] = by_role(
    _source, _reduction, _elementwise, wiring=_wiring(lambda c, n: move(n, [c])), interpreter="depth"
)
"""By role from the primitive table; wiring moves the class array with the primitive's move rule,
except pad (its zeros have depth 0) and concat (several operands), which have their own rules."""
DEPTH_RULES["pad"] = _pad
DEPTH_RULES["concat"] = _concat


@dataclass
class DepthResult:
    """The critical depth of a graph: Pareto-maximal path vectors, witnesses and claim checks."""

    graph: Graph
    states: dict[int, State]
    critical: list[Vec]
    exact: bool = True
    inexact_reasons: list[str] = field(default_factory=list)

    @property
    def per_symbol(self) -> dict[str, int]:
        """{symbol: the most gates of that symbol on any path} (e.g. the exp-depth)."""
        return {s: max((v[i] for v in self.critical), default=0) for i, s in enumerate(SYMBOLS)}

    def holds(self, claim: Vec | Mapping[str, int] | str) -> bool:
        """True iff every critical vector is ≤ the claim, i.e. the claim bounds the depth for all symbol values."""
        return not self.violations(claim)

    def violations(self, claim: Vec | Mapping[str, int] | str) -> list[Vec]:
        """The critical vectors that are not ≤ the claim."""
        c = as_vec(claim)
        return [v for v in self.critical if not leq(v, c)]

    def witness(self, v: Vec | Mapping[str, int] | str) -> list[Node]:
        """One path of Nodes (source first, output last) whose vector is ``v`` (a critical vector)."""
        target = as_vec(v)
        for out_id in sorted(set(self.graph.outputs.values())):
            if target in self.states[out_id].candidates:
                return self._backtrack(out_id, target)[::-1]
        raise ValueError(f"no path of depth {fmt(target)} ends at an output")

    def _backtrack(self, node_id: int, v: Vec) -> list[Node]:
        path: list[Node] = []
        while True:
            node = self.graph.node(node_id)
            path.append(node)
            symbol = PRIMITIVES[node.prim].symbol
            rest = sub(v, unit(symbol)) if symbol else v
            nxt = next((i for i in node.inputs if rest in self.states[i].candidates), None)
            if nxt is None:
                if rest != zero():
                    raise AssertionError(f"depth states inconsistent at node {node.id}")
                return path
            node_id, v = nxt, rest

    def element_depths(self, node_id: int) -> list[list[Vec]]:
        """The Pareto set of every element of a live node, in row-major order."""
        state = self.states[node_id]
        n = self.graph.node(node_id).size
        if state.classes is None:
            return [sorted(state.sets[0]) for _ in range(n)]
        return [sorted(state.sets[c]) for c in state.classes.reshape(-1).tolist()]

    def at(self, values: Mapping[str, Number]) -> tuple[Number, list[Node]]:
        """The depth for concrete symbol values: the largest weighted length and one path realising it."""
        if not self.critical:
            return 0, []
        best = max(self.critical, key=lambda v: dot(v, values))
        return dot(best, values), self.witness(best)

    @staticmethod
    def by_operator(path: list[Node]) -> list[tuple[str, Vec]]:
        """Consecutive nodes of a path grouped by scope path, with the vector each group contributes."""
        return [(group.operator, group.depth) for group in group_path(path)]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: critical vectors (full dicts and linear forms), per-symbol maxima, exactness."""
        return {
            "critical": [to_dict(v, full=True) for v in self.critical],
            "linear": [fmt(v) for v in self.critical],
            "per_symbol": self.per_symbol,
            "exact": self.exact,
            "inexact_reasons": list(self.inexact_reasons),
        }


def depth(graph: Graph, cap: int = DEFAULT_CAP) -> DepthResult:
    """Critical depth of ``graph`` over its live nodes (exact unless a class map exceeds ``cap``)."""
    ctx = _Context(cap)
    states: dict[int, State] = {}
    for node in graph.live():
        rule = rule_for(DEPTH_RULES, "depth", node.prim)
        shapes = [graph.node(i).shape for i in node.inputs]
        states[node.id] = rule(node, [states[i] for i in node.inputs], shapes, ctx)
    critical = pareto_max(v for out in set(graph.outputs.values()) for v in states[out].candidates)
    return DepthResult(graph, states, critical, exact=not ctx.reasons, inexact_reasons=ctx.reasons)


def depth_numeric(graph: Graph, values: Mapping[str, Number]) -> tuple[Number, list[Node]]:
    """``depth(graph).at(values)``: the depth as one number for concrete symbol values, and its path."""
    return depth(graph).at(values)
