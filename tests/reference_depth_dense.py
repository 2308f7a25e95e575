"""The dense depth interpreter kept as a test oracle for the factored one (tc0sim.interp.depth).

Each node's state is a list of Pareto sets and either no class map (every element has the one set)
or an int array over ALL the node's elements indexing the list: wiring moves the class array with
numpy exactly as it moves data, elementwise gates pair classes, a reduction unions the classes
each output element reads. Memory grows with the number of elements, so it only serves small graphs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from tc0sim.interp.rules import by_role
from tc0sim.ir.primitives import CONCAT, PAD
from tc0sim.ir.graph import Graph, Node
from tc0sim.ir.vectors import Vec, add, pareto_max, unit, zero
from tc0sim.ir.wiring import move

PSet = frozenset  # frozenset[Vec], always Pareto-reduced
EMPTY_SET: PSet = frozenset()


def zero_set() -> PSet:
    """{0}: the set of a source (of the current symbols)."""
    return frozenset({zero()})


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


Rule = Callable[[Node, list[State], list[tuple[int, ...]], None], State]


def _source(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: None) -> State:
    return State([zero_set() if node.size else EMPTY_SET])


def _elementwise(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: None) -> State:
    """Each output element reads the same position of every operand (shapes are equal)."""
    symbol = node.prim.symbol
    if node.size == 0:
        return State([EMPTY_SET])
    mapped = [s for s in ins if s.classes is not None]
    if not mapped:
        return State([_gate_set([s.sets[0] for s in ins], symbol)])
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


def _reduction(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: None) -> State:
    """Each output element reads every element along the reduced axes (one gate of fan-in k)."""
    symbol = node.prim.symbol
    (state,) = ins
    axes = node.attrs["axes"]
    if node.size == 0:
        return State([EMPTY_SET])
    reduced = int(np.prod([shapes[0][a] for a in axes], dtype=np.int64))
    if state.classes is None or reduced == 0:
        return State([_gate_set([state.sets[0]] if reduced else [], symbol)])
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


def _moved(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: None) -> State:
    """A one-operand wiring node: the class array moves exactly like the data."""
    (state,) = ins
    if node.size == 0:
        return State([EMPTY_SET])
    if state.classes is None:
        return State([state.sets[0]])
    return _normalise(state.sets, np.ascontiguousarray(move(node, [state.classes])))


def _pad(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: None) -> State:
    """Zero padding: the padded elements are constants (depth 0)."""
    (state,) = ins
    if node.size == 0:
        return State([EMPTY_SET])
    if state.classes is None and state.sets[0] in (zero_set(), EMPTY_SET):
        return State([zero_set()])
    sets = list(state.sets) + [zero_set()]
    classes = np.pad(state.class_array(shapes[0]).astype(_dtype(len(sets))), node.attrs["widths"], constant_values=len(sets) - 1)
    return _normalise(sets, classes)


def _concat(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: None) -> State:
    """Concatenation: each part keeps its own classes."""
    if node.size == 0:
        return State([EMPTY_SET])
    parts = [(s, shape) for s, shape in zip(ins, shapes) if np.prod(shape) > 0]
    if all(s.classes is None for s, _ in parts) and len({s.sets[0] for s, _ in parts}) == 1:
        return State([parts[0][0].sets[0]])
    sets: list[PSet] = []
    arrays = []
    for s, shape in parts:
        offset = len(sets)
        sets.extend(s.sets)
        arrays.append(s.class_array(shape).astype(np.int64) + offset)
    return _normalise(sets, np.concatenate(arrays, axis=node.attrs["axis"]))


DENSE_RULES = by_role(_source, _reduction, _elementwise, _moved, interpreter="dense depth")
DENSE_RULES[PAD] = _pad
DENSE_RULES[CONCAT] = _concat


def dense_depth(graph: Graph) -> tuple[list[Vec], dict[int, list[list[Vec]]]]:
    """(critical vectors, {output node id: every element's sorted Pareto set, row-major})."""
    states: dict[int, State] = {}
    for node in graph.live():
        rule = DENSE_RULES.rule(node.prim)
        states[node.id] = rule(node, [states[i] for i in node.inputs], [graph.node(i).shape for i in node.inputs], None)
    critical = pareto_max(v for out in set(graph.outputs.values()) for v in states[out].candidates)
    elements = {}
    for out in set(graph.outputs.values()):
        state, shape = states[out], graph.node(out).shape
        elements[out] = [sorted(state.sets[c]) for c in state.class_array(shape).reshape(-1).tolist()]
    return critical, elements
