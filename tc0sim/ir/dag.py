"""The tensor-level DAG (docs/dag.md): its nodes, the tensors operators hold, scopes, shared
sub-circuits (``Function``) and the graph itself; ``tc0sim.ir.graph`` has the builder that appends to it.

A node applies one primitive to whole arrays: every element of a node is a parallel gate with the
node's depth symbol. Nodes are appended in topological order, so ``graph.nodes`` is already a
topological order; ``Graph.to_networkx`` gives the same graph to networkx's algorithms.
"""

from __future__ import annotations

import gc
import itertools
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tc0sim.ir.primitives import CALL, RESULT, Primitive
from tc0sim.ir.shapes import Shape

if TYPE_CHECKING:  # networkx is imported when a graph is converted, not with every command
    import networkx as nx


@dataclass(frozen=True)
class Scope:
    """An operator scope: the operator's name and the paper definition/lemma it implements."""

    name: str
    ref: str = ""

    def __str__(self) -> str:
        return f"{self.name} [{self.ref}]" if self.ref else self.name


class Node:
    """One tensor-level node: ``prim`` (a ``Primitive`` row) applied to ``inputs``, producing an
    array of ``shape``.

    Nodes compare by identity: their attrs may hold numpy arrays. A node built without a name is
    named ``f"{prim.name}{id}"`` when asked (the name is not stored, to keep big graphs small)."""

    __slots__ = ("id", "prim", "shape", "inputs", "attrs", "scope", "_name", "_scope_path")

    def __init__(
        self,
        id: int,
        prim: Primitive,
        shape: Shape,
        inputs: tuple[int, ...],
        attrs: dict[str, Any],
        scope: tuple[Scope, ...],
        name: str | None = None,
    ) -> None:
        self.id = id
        self.prim = prim
        self.shape = shape
        self.inputs = inputs
        self.attrs = attrs
        self.scope = scope
        self._name = name
        self._scope_path: str | None = None

    @property
    def name(self) -> str:
        return f"{self.prim.name}{self.id}" if self._name is None else self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    def __repr__(self) -> str:
        return f"Node(id={self.id}, prim={self.prim.name!r}, shape={self.shape}, inputs={self.inputs}, name={self.name!r})"

    @property
    def size(self) -> int:
        """Number of elements (= gates, for a non-wiring node)."""
        return math.prod(self.shape)

    @property
    def scope_path(self) -> str:
        """Scope names joined with '/', outermost first ('' at top level); computed once per node."""
        if self._scope_path is None:
            self._scope_path = "/".join(s.name for s in self.scope)
        return self._scope_path

    @property
    def operator(self) -> str:
        """The innermost operator scope name, or '(top)'."""
        return self.scope[-1].name if self.scope else "(top)"


@dataclass(frozen=True)
class Tensor:
    """A handle to a node's output, as operators see it."""

    node: int
    shape: Shape

    @property
    def ndim(self) -> int:
        return len(self.shape)


WeightSource = Callable[[str, "tuple[int, ...]"], Tensor]
"""Where a body's weights come from: ``weight(name, shape)`` gives the weight tensor of that name."""


@dataclass
class Graph:
    """A DAG of primitive nodes with named inputs and outputs."""

    nodes: list[Node] = field(default_factory=list)
    inputs: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, int] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    """Values of inputs known when the graph was built (a traced module's own parameters, by
    name): evaluation uses them for the inputs it is not given (docs/torch.md)."""
    folded: dict[str, Any] = field(default_factory=dict)
    """State entries folded into constants when the graph was built (a traced module's integer
    buffers and ±∞ masks), by name: a checkpoint may hold them, and binding checks that it holds
    these very values (docs/torch.md)."""

    def node(self, node_id: int) -> Node:
        return self.nodes[node_id]

    def __iter__(self) -> Iterator[Node]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def consumers(self) -> dict[int, list[int]]:
        """For each node id, the ids of the nodes that read it."""
        users: dict[int, list[int]] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for i in n.inputs:
                users[i].append(n.id)
        return users

    def to_networkx(self) -> nx.DiGraph:
        """The node-level graph as a networkx DiGraph (node attributes: prim (the name), shape, scope, name)."""
        import networkx as nx

        g = nx.DiGraph()
        for n in self.nodes:
            g.add_node(n.id, prim=n.prim.name, shape=n.shape, scope=n.scope_path, name=n.name)
            g.add_edges_from((i, n.id) for i in n.inputs)
        return g

    @property
    def has_calls(self) -> bool:
        """True when some node calls a shared sub-circuit (``Builder.call`` in a sharing builder)."""
        return any(n.prim is CALL for n in self.nodes)

    def flat(self) -> Graph:
        """The same circuit with every call replaced by a copy of its body (``self`` if there is none).

        A body node's copy takes the call's scopes in front of its own, so scope paths, operators
        and gate counts are those of the graph built without sharing."""
        return self.flat_with_ids()[0] if self.has_calls else self

    def flat_with_ids(self) -> tuple[Graph, dict[tuple[int, ...], int]]:
        """``flat()`` and where each node went: ``ids[(call, …, node)]`` is the flat id of ``node``
        of the body reached through those call nodes (``ids[(node,)]`` for this graph's own)."""
        out, ids = Graph(), {}
        mapped = _inline(self, out, {}, (), (), ids)
        out.inputs = {name: mapped[i] for name, i in self.inputs.items()}
        out.outputs = {name: mapped[i] for name, i in self.outputs.items()}
        out.defaults = self.defaults
        out.folded = self.folded
        return out, ids

    def occurrences(self) -> list[tuple[Node, Graph, int]]:
        """Every live node that is not a call or result, through calls: (node, the graph it is
        in, how many copies of it the flat graph has)."""
        out: list[tuple[Node, Graph, int]] = []
        pending: dict[tuple[Function, frozenset[int]], int] = {}

        def visit(graph: Graph, outputs: Iterable[str] | None, times: int) -> None:
            live, used = graph.live_and_used(outputs)
            for node in live:
                if node.prim is CALL:
                    key = (node.attrs["fn"], used[node.id])
                    pending[key] = pending.get(key, 0) + times
                elif node.prim is not RESULT:
                    out.append((node, graph, times))

        visit(self, None, 1)
        while pending:  # a body only calls bodies made before it: latest first sees all its callers
            key = max(pending, key=lambda k: k[0].serial)
            fn, results = key
            visit(fn.graph, fn.outputs_named(results), pending.pop(key))
        return out

    def live_and_used(self, outputs: Iterable[str] | None = None) -> tuple[list[Node], dict[int, frozenset[int]]]:
        """``live(outputs)`` and, for each live call node, the indices of its results in use."""
        live = self.live(outputs)
        used: dict[int, set[int]] = {}
        for node in live:
            if node.prim is RESULT:
                used.setdefault(node.inputs[0], set()).add(node.attrs["index"])
        return live, {call: frozenset(results) for call, results in used.items()}

    def live(self, outputs: Iterable[str] | None = None) -> list[Node]:
        """Nodes from which one of ``outputs`` (default: every output) is reachable, in topological
        order. Through a call, only the arguments that reach a used result count."""
        needed = bytearray(len(self.nodes))
        for name in self.outputs if outputs is None else outputs:
            needed[self.outputs[name]] = 1
        used: dict[int, set[int]] = {}
        for node in reversed(self.nodes):
            if not needed[node.id]:
                continue
            if node.prim is RESULT:
                used.setdefault(node.inputs[0], set()).add(node.attrs["index"])
                needed[node.inputs[0]] = 1
            elif node.prim is CALL:
                reads = node.attrs["fn"].reads(frozenset(used[node.id]))
                for slot, i in enumerate(node.inputs):
                    if slot in reads:
                        needed[i] = 1
            else:
                for i in node.inputs:
                    needed[i] = 1
        return [n for n in self.nodes if needed[n.id]]


_SERIALS = itertools.count()

@dataclass(eq=False)
class Function:
    """A sub-circuit built once and called many times (docs/dag.md, "Shared sub-circuits").

    ``graph.inputs`` are its parameters (role 'param' for the arguments, 'weight' for the weights
    each call binds by name); ``graph.outputs`` its results, in the order of the result nodes."""

    name: str
    graph: Graph
    serial: int = field(default_factory=lambda: next(_SERIALS))
    """Creation order: a body is made (and numbered) after every body it calls."""
    _reads: dict[frozenset[int], frozenset[int]] = field(default_factory=dict, repr=False)

    def outputs_named(self, results: Iterable[int]) -> list[str]:
        """The names of the results with the given indices, in index order."""
        names = list(self.graph.outputs)
        return [names[i] for i in sorted(results)]

    def reads(self, results: frozenset[int]) -> frozenset[int]:
        """The parameter slots some of the given results (by index) depend on."""
        found = self._reads.get(results)
        if found is None:
            live = {n.id for n in self.graph.live(self.outputs_named(results))}
            found = self._reads[results] = frozenset(k for k, nid in enumerate(self.graph.inputs.values()) if nid in live)
        return found


def _inline(
    graph: Graph, out: Graph, bound: dict[int, int], prefix: tuple[Scope, ...], chain: tuple[int, ...], ids: dict
) -> dict[int, int]:
    """Append ``graph``'s nodes to ``out`` (the nodes in ``bound`` are there already); the id map."""
    mapped = dict(bound)
    results: dict[int, list[int]] = {}
    for node in graph.nodes:
        if node.id in mapped:
            ids[chain + (node.id,)] = mapped[node.id]
            continue
        if node.prim is RESULT:
            mapped[node.id] = results[node.inputs[0]][node.attrs["index"]]
            continue
        inputs = tuple(mapped[i] for i in node.inputs)
        scope = prefix + node.scope
        if node.prim is CALL:
            body: Graph = node.attrs["fn"].graph
            inner = _inline(body, out, dict(zip(body.inputs.values(), inputs)), scope, chain + (node.id,), ids)
            results[node.id] = [inner[i] for i in body.outputs.values()]
            continue
        mapped[node.id] = ids[chain + (node.id,)] = len(out.nodes)
        out.nodes.append(Node(len(out.nodes), node.prim, node.shape, inputs, node.attrs, scope, node._name))
    return mapped



@contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector inside the block (restored after, even on error).

    Building or interpreting a graph allocates millions of small acyclic objects (nodes, shapes,
    states); every collection would walk all of them again, which took about half of a large
    build. Reference counting still frees everything at once; only cycles wait for the block's end.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
