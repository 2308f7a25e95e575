"""The expand interpreter: the tensor-level DAG as a scalar networkx graph, one node per gate (docs/dag.md).

Every element of a live compute node becomes a gate node (kind "gate"); every element of a live
input or constant becomes a source node (kind "source"); pad's zeros share one zero-constant
source. Wiring (neg, reshape, transpose, slice, concat, broadcast, gather, pad) creates no node:
it is resolved into edges by moving integer id arrays with numpy. Used to check the tensor-level
depth and size interpreters against an independent scalar computation on small instances.
"""

from __future__ import annotations

import gc
import itertools
import math
from collections import Counter
from collections.abc import Callable

import networkx as nx
import numpy as np

from tc0sim.errors import ExpansionLimitError
from tc0sim.interp.size import size
from tc0sim.ir.graph import Graph, Node
from tc0sim.ir.moves import CREATING
from tc0sim.ir.rules import by_role
from tc0sim.ir.vectors import Vec, pareto_max, unit, zero
from tc0sim.ir.wiring import move

DEFAULT_MAX_GATES = 2_000_000


class _Expansion:
    """Accumulates scalar nodes (by contiguous id ranges) and edges (as id arrays) before one bulk insert."""

    def __init__(self, graph: Graph):
        self.graph = graph
        self.next_id = 0
        self.ranges: list[tuple[int, int, Node, str]] = []
        self.edge_src: list[np.ndarray] = []
        self.edge_dst: list[np.ndarray] = []
        self.zero_id: int | None = None

    def new_ids(self, node: Node, kind: str) -> np.ndarray:
        start = self.next_id
        self.next_id += node.size
        self.ranges.append((start, self.next_id, node, kind))
        return np.arange(start, self.next_id, dtype=np.int64).reshape(node.shape)

    def zero(self, node: Node) -> int:
        if self.zero_id is None:
            self.zero_id = self.next_id
            self.next_id += 1
            self.ranges.append((self.zero_id, self.next_id, node, "zero"))
        return self.zero_id

    def edges(self, src: np.ndarray, dst: np.ndarray) -> None:
        self.edge_src.append(np.ascontiguousarray(src).reshape(-1))
        self.edge_dst.append(np.ascontiguousarray(dst).reshape(-1))


ExpandRule = Callable[[Node, list[np.ndarray], _Expansion], np.ndarray]


def _source(node: Node, ins: list[np.ndarray], ex: _Expansion) -> np.ndarray:
    return ex.new_ids(node, "source")


def _elementwise(node: Node, ins: list[np.ndarray], ex: _Expansion) -> np.ndarray:
    out = ex.new_ids(node, "gate")
    for operand in ins:
        ex.edges(operand, out)
    return out


def _reduction(node: Node, ins: list[np.ndarray], ex: _Expansion) -> np.ndarray:
    (operand,) = ins
    axes = node.attrs["axes"]
    kept = [a for a in range(operand.ndim) if a not in axes]
    out = ex.new_ids(node, "gate")
    fan_in = math.prod(operand.shape[a] for a in axes)
    grouped = operand.transpose(kept + list(axes)).reshape(node.size, fan_in)
    ex.edges(grouped, np.repeat(out.reshape(-1), fan_in))
    return out


def _move(node: Node, ins: list[np.ndarray], ex: _Expansion) -> np.ndarray:
    """Wiring creates no scalar node: gate ids move like the data (pad's zeros share one source)."""
    return move(node, ins, lambda: ex.zero(node))


EXPAND_RULES = by_role(_source, _reduction, _elementwise, wiring=_move, interpreter="expand")


class _NoEdgeAttributes(dict):
    """The one attribute mapping every scalar edge shares: edges carry no data, so it refuses writes."""

    def _refuse(self, *args: object, **kwargs: object) -> None:
        raise TypeError("edges of an expanded scalar graph carry no attributes (copy the graph to add some)")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = _refuse  # type: ignore[assignment]


_EDGE_DATA = _NoEdgeAttributes()


def _bulk_digraph(ex: _Expansion) -> nx.DiGraph:
    """Fill networkx's documented dict-of-dicts structure directly (``add_edges_from`` costs ~2 µs/edge).

    Duplicate edges (x·x) are merged, as a DiGraph merges them. All edges share one read-only
    attribute mapping instead of one dict each, which halves the construction time.
    """
    g = nx.DiGraph()
    count = ex.next_id
    for start, stop, node, kind in ex.ranges:
        if kind == "zero":
            attrs = {"prim": "constant", "symbol": "", "scope": node.scope_path, "tensor": node.id, "kind": "source"}
        else:
            symbol = node.prim.symbol or ""
            attrs = {"prim": node.prim.name, "symbol": symbol, "scope": node.scope_path, "tensor": node.id, "kind": kind}
        g._node.update((i, attrs.copy()) for i in range(start, stop))
    if ex.edge_src:
        keys = np.concatenate(ex.edge_src) * count + np.concatenate(ex.edge_dst)
        keys.sort()
        keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))]
        src, dst = np.divmod(keys, count)
    else:
        src = dst = np.zeros(0, dtype=np.int64)
    g._succ.update(zip(range(count), _grouped_dicts(src, dst, count)))
    by_dst = np.argsort(dst, kind="stable")
    g._pred.update(zip(range(count), _grouped_dicts(dst[by_dst], src[by_dst], count)))
    return g


def _grouped_dicts(keys: np.ndarray, others: np.ndarray, count: int) -> list[dict]:
    """For each node u < count, {other: edge data} over the run of sorted ``keys`` equal to u."""
    bounds = np.searchsorted(keys, np.arange(count + 1)).tolist()
    runs = map(others.tolist().__getitem__, itertools.starmap(slice, zip(bounds, bounds[1:])))
    return list(map(dict.fromkeys, runs, itertools.repeat(_EDGE_DATA)))


def scalar_count(graph: Graph) -> tuple[int, int]:
    """(gates, source elements) of the scalar expansion, read from shapes only."""
    graph = graph.flat()
    live = graph.live()
    sources = sum(n.size for n in live if "source" in n.prim.properties)
    zero = int(any(n.prim.move in CREATING for n in live))
    return size(graph).total, sources + zero


def expand(graph: Graph, max_gates: int = DEFAULT_MAX_GATES) -> nx.DiGraph:
    """One networkx node per scalar gate and per source element; wiring becomes edges.

    Node attributes: ``prim``, ``symbol`` ('' for sources), ``scope`` (scope path), ``tensor`` (the
    tensor node id), ``kind`` ("gate" or "source") and ``output`` (True on output elements).
    A graph with more than ``max_gates`` scalar nodes (gates plus source elements) is refused
    with ExpansionLimitError before anything is allocated.
    """
    graph = graph.flat()
    gates, sources = scalar_count(graph)
    if gates + sources > max_gates:
        raise ExpansionLimitError(
            f"scalar expansion would have {gates + sources} nodes ({gates} gates + {sources} source elements), "
            f"above the limit of {max_gates}"
        )
    ex = _Expansion(graph)
    ids: dict[int, np.ndarray] = {}
    for node in graph.live():
        rule = EXPAND_RULES[node.prim]
        ids[node.id] = rule(node, [ids[i] for i in node.inputs], ex)

    collecting = gc.isenabled()
    gc.disable()
    try:
        g = _bulk_digraph(ex)
    finally:
        if collecting:
            gc.enable()
    outputs = {name: ids[i] for name, i in graph.outputs.items()}
    for element in np.unique(np.concatenate([a.reshape(-1) for a in outputs.values()])) if outputs else ():
        g.nodes[int(element)]["output"] = True
    g.graph["outputs"] = {name: a.reshape(-1).tolist() for name, a in outputs.items()}
    return g


def scalar_depth_by_node(g: nx.DiGraph) -> dict[int, frozenset]:
    """Every scalar node's Pareto set of path vectors ending at it.

    A dynamic programme over ``nx.topological_sort``: a node's set is the Pareto maximum of its
    predecessors' sets (or {0} for none), each extended by the node's own symbol.
    """
    interned: dict[frozenset, frozenset] = {}
    sets: dict[int, frozenset] = {}
    for v in nx.topological_sort(g):
        preds = {sets[u] for u in g.predecessors(v)}
        if not preds:
            base: frozenset = frozenset({zero()})
        elif len(preds) == 1:
            (base,) = preds
        else:
            base = frozenset(pareto_max(x for s in preds for x in s))
        symbol = g.nodes[v].get("symbol", "")
        if symbol:
            u = unit(symbol)
            base = frozenset(tuple(a + b for a, b in zip(x, u)) for x in base)
        sets[v] = interned.setdefault(base, base)
    return sets


def scalar_depth(g: nx.DiGraph) -> list[Vec]:
    """Pareto-maximal path vectors of a scalar graph ending at its output elements (or at every sink)."""
    sets = scalar_depth_by_node(g)
    ends = [v for v, d in g.nodes(data="output") if d] or [v for v in g if g.out_degree(v) == 0]
    return pareto_max(x for v in ends for x in sets[v])


def scalar_size(g: nx.DiGraph) -> Counter:
    """Gate count per primitive of a scalar graph (sources not counted)."""
    return Counter(data["prim"] for _, data in g.nodes(data=True) if data.get("kind") == "gate")
