"""Depth results: the critical vectors, witness paths backtracked element by element, path groups (docs/dag.md).

A ``DepthResult`` keeps every live node's factored state and the interned sets; a witness of a
critical vector is found by walking back from an output element, one operand element at a time,
to a source (through a shared body's analysis once per way through it). ``Body`` is one analysis
of a shared body, kept for the calls that use it.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np

from tc0sim.interp.depth.rules import CREATING_MOVES
from tc0sim.interp.depth.state import PSet, State
from tc0sim.interp.paths import PathGroup, group_path
from tc0sim.ir.graph import Graph, Node
from tc0sim.ir.primitives import QUIET_SYMBOLS, RESULT, SYMBOLS
from tc0sim.ir.vectors import Number, Vec, as_vec, dot, fmt, leq, to_dict, used
from tc0sim.ir.wiring import origin


@dataclass
class DepthResult:
    """The critical depth of a graph: Pareto-maximal path vectors, witnesses and claim checks."""

    graph: Graph
    states: dict[int, State]
    """Every live node's state (a call node's: its results' states, ``calls.Results``)."""
    critical: list[Vec]
    sets: list[PSet] = field(default_factory=list, repr=False)
    exact: bool = True
    inexact_reasons: list[str] = field(default_factory=list)
    fallbacks: set[int] = field(default_factory=set, repr=False)
    calls: dict[int, tuple[Body, tuple[int, ...]]] = field(default_factory=dict, repr=False)
    """For each call node: the body analysis it used and the outer set of each argument class."""
    _paths: dict[Vec, list] = field(default_factory=dict, repr=False)
    """Witness paths found so far, by vector (a report asks for the same one several times)."""

    @property
    def analysed_nodes(self) -> int:
        """Tensor nodes analysed: this graph's live nodes but its calls and, once each, those of
        every shared body."""
        bodies = {id(body): body for body, _ in self.calls.values()}
        return len(self.states) - len(self.calls) + sum(body.result.analysed_nodes for body in bodies.values())

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

    def candidates(self, node_id: int) -> set[Vec]:
        """Every vector some element of the node reaches."""
        return {v for i in self.states[node_id].ids() for v in self.sets[i]}

    def _find(self, node_id: int, v: Vec) -> tuple[int, ...] | None:
        """An element of the node whose Pareto set contains ``v``, or None."""
        state = self.states[node_id]
        for i in state.ids():
            if v in self.sets[i]:
                index = tuple(int(k) for k in np.argwhere(state.core == i)[0])
                return state.position(index)
        return None

    def _set_at(self, node_id: int, position: tuple[int, ...]) -> PSet:
        state = self.states[node_id]
        return self.sets[int(state.core[state.index(position)])]

    def witness(self, v: Vec | Mapping[str, int] | str) -> list[Node]:
        """One path of Nodes (source first, output last) whose vector is ``v`` (a critical vector)."""
        return [node for node, _ in self.witness_elements(v)]

    def witness_elements(self, v: Vec | Mapping[str, int] | str) -> list[tuple[Node, tuple[int, ...] | None]]:
        """The witness as (node, element position) pairs: a path of scalar gates through the graph.

        The last pair of a path that ends in pad's zeros has position None on the pad node."""
        return _flatten(self._witness_path(v), ())[::-1]

    def witness_groups(self, v: Vec | Mapping[str, int] | str) -> list[PathGroup]:
        """``group_path(witness(v))`` without listing the path node by node: a shared body's part of
        the path is grouped once and reused, under each call's scopes, wherever the path repeats it."""
        return _groups(self._witness_path(v), {})

    def _witness_path(self, v: Vec | Mapping[str, int] | str) -> list:
        target = as_vec(v)
        found = self._paths.get(target)
        if found is None:
            for out_id in sorted(set(self.graph.outputs.values())):
                position = self._find(out_id, target)
                if position is not None:
                    found = self._paths[target] = self._backtrack(out_id, position, target)[0]
                    break
            else:
                raise ValueError(f"no path of depth {fmt(target)} ends at an output")
        return found

    def _backtrack(self, node_id: int, position: tuple[int, ...], v: Vec) -> tuple[list[tuple[Node, tuple[int, ...] | None]], tuple | None]:
        """The path (output end first) from an element with vector ``v`` back to its source, and,
        in a shared body, where it leaves: (parameter node, position, the class's unit vector)."""
        path: list[tuple[Node, tuple[int, ...] | None]] = []
        while True:
            node = self.graph.node(node_id)
            if node.prim is RESULT:
                call = self.graph.node(node.inputs[0])
                inner, leaves = self._through_call(call, node.attrs["index"], position, v)
                path.extend(inner)
                if leaves is None:
                    return path, None
                slot, position, v = leaves
                node_id = call.inputs[slot]
                continue
            prim = node.prim
            if prim.symbol is None:
                rest = v
            else:
                k = SYMBOLS.index(prim.symbol)
                rest = v[:k] + (v[k] - 1,) + v[k + 1 :]
            shapes = [self.graph.node(i).shape for i in node.inputs]
            if node_id in self.fallbacks:
                step = self._fallback_step(node, rest)
            elif prim.is_wiring:
                moved = None if "source" in prim.properties else origin(node, shapes, position)
                step = None if moved is None else (*moved, rest)
                if moved is None and prim.move in CREATING_MOVES:
                    position = None  # the path ends in a created element (pad's zeros)
            else:
                step = self._gate_step(node, shapes, position, rest)
            if "source" in prim.properties and node.attrs.get("role") == "param":  # a shared body's argument
                if any(rest[: len(SYMBOLS)]):
                    raise AssertionError(f"depth states inconsistent at parameter {node.name!r}")
                return path, (node.id, position, rest)
            path.append((node, position))
            if step is None:
                if any(rest):
                    raise AssertionError(f"depth states inconsistent at node {node.id}")
                return path, None
            slot, position, v = step
            node_id = node.inputs[slot]

    def _through_call(self, call: Node, index: int, position: tuple[int, ...], v: Vec):
        """The part of a path inside a call's body (its nodes scoped under the call), ending at the
        result element ``position`` with outer vector ``v``; and (argument slot, position, the
        vector left for the argument) when it starts at an argument rather than a constant."""
        body, sets = self.calls[call.id]
        inner = body.result
        out_id = list(inner.graph.outputs.values())[index]
        pad = (0,) * (len(v) - len(SYMBOLS))
        state = inner.states[out_id]
        set_id = int(state.core[state.index(position)])
        for (c, part), u in zip(body.split(set_id), sorted(inner.sets[set_id])):
            rest = tuple(map(operator.sub, v, part + pad))
            if (c < 0 and not any(rest)) or (c >= 0 and rest in self.sets[sets[c]]):
                break
        else:
            raise AssertionError(f"depth states inconsistent at call {call.id} of {call.attrs['fn'].name}")
        key = (out_id, position, u)
        if key not in body.paths:
            body.paths[key] = inner._backtrack(out_id, position, u)
        path, leaves = body.paths[key]
        inside = [_Inside(call, path)]
        if leaves is None:
            return inside, None
        param, at, _ = leaves
        return inside, (list(inner.graph.inputs.values()).index(param), at, rest)

    def _gate_step(self, node: Node, shapes: list[tuple[int, ...]], position: tuple[int, ...], rest: Vec):
        """The operand element a gate's element reads whose set contains ``rest``."""
        if "reduction" not in node.prim.properties:
            for slot, i in enumerate(node.inputs):
                if rest in self._set_at(i, position):
                    return slot, position, rest
            return None
        axes = node.attrs["axes"]
        (i,) = node.inputs
        state = self.states[i]
        if any(shapes[0][a] == 0 for a in axes):
            return None
        kept = iter(position)
        full = [None if a in axes else next(kept) for a in range(len(shapes[0]))]
        index = [None if x is None else (0 if state.labels[a] is None else int(state.labels[a][x])) for a, x in enumerate(full)]
        for choice in product(*(range(state.core.shape[a]) for a in axes)):
            for a, k in zip(axes, choice):
                index[a] = k
            if rest in self.sets[int(state.core[tuple(index)])]:
                reduced = state.position(tuple(index))
                return 0, tuple(reduced[a] if a in axes else full[a] for a in range(len(full))), rest
        return None

    def _fallback_step(self, node: Node, rest: Vec):
        """Backtracking through an upper-bound node: any operand element with the remaining vector."""
        for slot, i in enumerate(node.inputs):
            found = self._find(i, rest)
            if found is not None:
                return slot, found, rest
        return None

    def element_depths(self, node_id: int) -> list[list[Vec]]:
        """The Pareto set of every element of a live node, in row-major order (expands the node)."""
        state = self.states[node_id]
        shape = self.graph.node(node_id).shape
        if math.prod(shape) == 0:
            return []
        index = [np.zeros(d, dtype=np.int64) if lab is None else lab for lab, d in zip(state.labels, shape)]
        dense = state.core[np.ix_(*index)] if index else state.core
        return [sorted(self.sets[i]) for i in dense.reshape(-1).tolist()]

    def at(self, values: Mapping[str, Number]) -> tuple[Number, list[Node]]:
        """The depth for concrete symbol values: the largest weighted length and one path realising it."""
        if not self.critical:
            return 0, []
        best = self.best(values)
        return dot(best, values), self.witness(best)

    def best(self, values: Mapping[str, Number]) -> Vec:
        """The critical vector of the largest weighted length for the given symbol values (the first if tied)."""
        return max(self.critical, key=lambda v: dot(v, values))

    @staticmethod
    def by_operator(path: list[Node]) -> list[tuple[str, Vec]]:
        """Consecutive nodes of a path grouped by scope path, with the vector each group contributes."""
        return [(group.operator, group.depth) for group in group_path(path)]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: critical vectors (full dicts and linear forms), per-symbol maxima, exactness;
        a quiet symbol (d_log, d_trig) is named only when some critical vector counts it."""
        shown = used(self.critical)
        return {
            "critical": [to_dict(v, full=True, also=shown) for v in self.critical],
            "linear": [fmt(v) for v in self.critical],
            "per_symbol": {s: c for s, c in self.per_symbol.items() if s in shown or s not in QUIET_SYMBOLS},
            "exact": self.exact,
            "inexact_reasons": list(self.inexact_reasons),
        }


@dataclass(frozen=True)
class _Inside:
    """The part of a witness path inside one call: the body's path (output end first), shared by
    every call whose path takes the same way through the body."""

    call: Node
    path: list


def _flatten(path: list, prefix: tuple) -> list[tuple[Node, Any]]:
    """A witness path (output end first) as (node, position) pairs of the flattened graph: a body's
    nodes with the call's scopes before their own."""
    out: list[tuple[Node, Any]] = []
    joined: dict[int, tuple[tuple, str]] = {}
    for entry in path:
        if isinstance(entry, _Inside):
            out.extend(_flatten(entry.path, prefix + entry.call.scope))
            continue
        node, at = entry
        if prefix:
            found = joined.get(id(node.scope))
            if found is None:
                scope = prefix + node.scope
                found = joined[id(node.scope)] = (scope, "/".join(s.name for s in scope))
            node = Node(node.id, node.prim, node.shape, node.inputs, node.attrs, found[0], node._name)
            node._scope_path = found[1]
        out.append((node, at))
    return out


def _groups(path: list, memo: dict[int, list[PathGroup]]) -> list[PathGroup]:
    """``group_path`` of a witness path (output end first), each shared body part grouped once."""
    out: list[PathGroup] = []
    pending: list[Node] = []
    for entry in reversed(path):
        if not isinstance(entry, _Inside):
            pending.append(entry[0])
            continue
        _join(out, group_path(pending))
        pending = []
        inner = memo.get(id(entry.path))
        if inner is None:
            inner = memo[id(entry.path)] = _groups(entry.path, memo)
        where = entry.call.scope_path
        ref = entry.call.scope[-1].ref if entry.call.scope else ""
        _join(out, [PathGroup(f"{where}/{g.operator}" if where and g.operator != "(top)" else where or g.operator,
                              g.ref if g.operator != "(top)" else ref, g.depth, g.gates) for g in inner])
    _join(out, group_path(pending))
    return out


def _join(groups: list[PathGroup], more: list[PathGroup]) -> None:
    """Append ``more`` to ``groups``, merging the first with the last of ``groups`` when they are one operator."""
    if more and groups and groups[-1].operator == more[0].operator:
        last, first = groups[-1], more[0]
        groups[-1] = PathGroup(last.operator, last.ref, tuple(map(operator.add, last.depth, first.depth)), last.gates + first.gates)
        more = more[1:]
    groups.extend(more)


@dataclass
class Body:
    """One analysis of a shared body: its depth result and memo tables."""

    result: DepthResult
    parts: dict[int, list[tuple[int, Vec]]] = field(default_factory=dict)
    paths: dict[tuple, tuple[list, tuple | None]] = field(default_factory=dict)

    def split(self, set_id: int) -> list[tuple[int, Vec]]:
        """The vectors of a body set as (argument class or -1, symbol part)."""
        found = self.parts.get(set_id)
        if found is None:
            n = len(SYMBOLS)
            found = self.parts[set_id] = [(_tag(u, n), u[:n]) for u in sorted(self.result.sets[set_id])]
        return found


def _tag(u: Vec, n: int) -> int:
    """The argument class of a body vector (the index of its extra coordinate that is 1), or -1."""
    for k in range(n, len(u)):
        if u[k]:
            return k - n
    return -1
