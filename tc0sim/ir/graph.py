"""The tensor-level DAG and the builder operators use to lower themselves onto it (docs/dag.md).

A node applies one primitive to whole arrays: every element of a node is a parallel gate with the
node's depth symbol. Nodes are appended in topological order, so ``graph.nodes`` is already a
topological order; ``Graph.to_networkx`` gives the same graph to networkx's algorithms.
"""

from __future__ import annotations

import gc
import itertools
import math
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tc0sim.errors import GraphError
from tc0sim.ir.exact import ConstantCache, LazyConstant
from tc0sim.ir.primitives import (BROADCAST, BUILTIN, CALL, CONCAT, CONSTANT, GATHER, INPUT, PAD, RESHAPE, RESULT, SLICE,
                                  TRANSPOSE, Primitive, is_defined)
from tc0sim.ir.rules import RuleTable
from tc0sim.ir.shapes import Shape, ShapeRule, broadcast_shapes, norm_axes

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


SHAPE_RULES: RuleTable[ShapeRule] = RuleTable("shape", lambda p: p.shape)
"""The shape interpreter: one rule per primitive (the row's ``shape``), checked when a node is built."""


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


class Builder:
    """Appends nodes to a Graph; operators call ``b.mul(x, y)``, ``b.sum(x, axis=...)`` etc.

    The methods of the built-in elementwise and reduction primitives are made from their rows of
    the primitive table, once (``_builder_method``); sources and wiring are written here; any row
    (a scratch one too) is applied with ``b.node(row, operands, **attrs)``. Binary operators broadcast their operands numpy-style by inserting explicit ``broadcast``
    wiring nodes. ``with b.scope(name, ref=...)`` tags every node built inside with the operator.
    """

    def __init__(self, share: bool = False) -> None:
        self.graph = Graph()
        self.share = share
        self._scopes: tuple[Scope, ...] = ()
        self._constants = ConstantCache()
        self._functions: dict[Hashable, Function] = {}
        self._bound: dict[tuple[Function, WeightSource], dict[str, Tensor]] = {}

    def child(self) -> Builder:
        """The builder of a shared body: same constants and functions, its own graph and scopes."""
        sub = Builder(share=True)
        sub._constants, sub._functions = self._constants, self._functions
        return sub

    def call(
        self,
        key: Hashable,
        body: Callable[[Builder, dict[str, Tensor], WeightSource], Mapping[str, Tensor]],
        args: Mapping[str, Tensor],
        weights: WeightSource,
    ) -> dict[str, Tensor]:
        """``body(b, args, weight)``: a sub-circuit whose weights come from ``weight(name, shape)``.

        A plain builder builds the body in place, with ``weights`` as the weight source: the graph
        is as if the body's code were written here. A sharing builder (``share=True``) builds the
        body once per ``key`` and argument shapes, as a ``Function`` whose weights are parameters,
        and appends a ``call`` node reading ``args`` and the weights ``weights(name, shape)`` gives
        for the body's weight names, then one ``result`` node per output. The body must read
        nothing but its arguments, its weights and constants; a weight source must give the same
        tensor for the same name every time (it is asked once per body)."""
        if not self.share:
            return dict(body(self, dict(args), weights))
        full_key = (key, tuple((name, t.shape) for name, t in args.items()))
        fn = self._functions.get(full_key)
        if fn is None:
            fn = self._functions[full_key] = self._function(str(key[0] if isinstance(key, tuple) else key), body, args)
        bound = self._bound.get((fn, weights))
        if bound is None:  # the weights of a (body, weight source) pair are looked up once
            bound = self._bound[(fn, weights)] = {
                name: weights(name, fn.graph.nodes[nid].shape)
                for name, nid in fn.graph.inputs.items()
                if fn.graph.nodes[nid].attrs.get("role") != "param"
            }
        inputs = [bound[name] if name in bound else args[name] for name in fn.graph.inputs]
        call = self._append(CALL, (), tuple(t.node for t in inputs), {"fn": fn}, None)
        out = {}
        for index, (name, nid) in enumerate(fn.graph.outputs.items()):
            out[name] = Tensor(self._append(RESULT, fn.graph.nodes[nid].shape, (call,), {"index": index}, name), fn.graph.nodes[nid].shape)
        return out

    def _function(self, name: str, body: Callable[..., Mapping[str, Tensor]], args: Mapping[str, Tensor]) -> Function:
        sub = self.child()
        params = {arg: sub.input(arg, t.shape, role="param") for arg, t in args.items()}

        def weight(wname: str, shape: tuple[int, ...]) -> Tensor:
            found = sub.graph.inputs.get(wname)
            if found is None:
                return sub.input(wname, shape, role="weight")
            if sub.graph.nodes[found].shape != tuple(shape):
                raise GraphError(f"weight {wname!r} of {name} asked with shapes {sub.graph.nodes[found].shape} and {tuple(shape)}")
            return Tensor(found, tuple(shape))

        for out_name, t in body(sub, params, weight).items():
            sub.output(out_name, t)
        return Function(name, sub.graph)

    def _append(self, prim: Primitive, shape: Shape, inputs: tuple[int, ...], attrs: dict[str, Any], name: str | None) -> int:
        nodes = self.graph.nodes
        nodes.append(Node(len(nodes), prim, shape, inputs, attrs, self._scopes, name))
        return len(nodes) - 1

    @contextmanager
    def scope(self, name: str, ref: str = "") -> Iterator[None]:
        """Tag nodes built inside with operator ``name`` and its paper reference ``ref``."""
        outer = self._scopes
        self._scopes = outer + (Scope(name, ref),)  # one tuple shared by every node of the scope
        try:
            yield
        finally:
            self._scopes = outer

    def _where(self) -> str:
        return "/".join(s.name for s in self._scopes) or "(top)"

    def node(self, prim: Primitive, inputs: Sequence[Tensor], name: str | None = None, **attrs: Any) -> Tensor:
        """Append a node after checking its primitive (a defined row), arity and shapes."""
        if not isinstance(prim, Primitive):
            raise TypeError(f"Builder.node takes a Primitive row (tc0sim.ir.primitives), not {prim!r}")
        if not is_defined(prim):
            raise GraphError(f"unknown primitive {prim.name!r}")
        if prim.arity is not None and len(inputs) != prim.arity:
            raise GraphError(f"{prim.name} takes {prim.arity} operand(s), got {len(inputs)}")
        rule = SHAPE_RULES[prim]
        try:
            shape = tuple(map(int, rule([t.shape for t in inputs], attrs)))
            if shape and min(shape) < 0:
                raise GraphError(f"negative dimension in {shape}")
        except GraphError as e:
            raise GraphError(f"{prim.name} in operator {self._where()}: {e}") from None
        nodes = self.graph.nodes
        nid = len(nodes)
        nodes.append(Node(nid, prim, shape, tuple([t.node for t in inputs]), attrs, self._scopes, name))
        return Tensor(nid, shape)

    # sources and outputs
    def input(self, name: str, shape: Sequence[int], role: str = "input") -> Tensor:
        """A circuit input (role 'input') or weight (role 'weight'), rounded to p bits on entry."""
        if name in self.graph.inputs:
            raise GraphError(f"duplicate input name {name!r}")
        shape = tuple(int(d) for d in shape)
        if any(d < 0 for d in shape):
            raise GraphError(f"input {name!r} has negative dimension in {shape}")
        t = self.node(INPUT, [], name=name, shape=shape, role=role)
        self.graph.inputs[name] = t.node
        return t

    def constant(self, value: Any, name: str | None = None) -> Tensor:
        """A constant fixed at build time, held exactly (rounded to p bits when evaluated)."""
        exact = self._constants.exact(value)
        return self.node(CONSTANT, [], name=name, shape=exact.shape, value=exact)

    def lazy_constant(self, shape: Sequence[int], compute: Callable[[], Any], name: str | None = None) -> Tensor:
        """A constant of the given shape whose value ``compute()`` gives when an interpreter first reads it."""
        shape = tuple(int(d) for d in shape)
        return self.node(CONSTANT, [], name=name, shape=shape, value=LazyConstant(shape, compute, self._constants))

    def reserve(self, elements: int, bytes_each: int, what: str) -> None:
        """Called before allocating an array of ``elements``; a plain Builder has no budget to check."""

    def output(self, name: str, x: Tensor) -> None:
        if name in self.graph.outputs:
            raise GraphError(f"duplicate output name {name!r}")
        self.graph.outputs[name] = x.node

    # computation
    def _binary(self, prim: Primitive, x: Tensor, y: Tensor) -> Tensor:
        if x.shape == y.shape:
            return self.node(prim, [x, y])
        try:
            shape = broadcast_shapes(x.shape, y.shape)
        except GraphError as e:
            raise GraphError(f"{prim.name} in operator {self._where()}: {e}") from None
        return self.node(prim, [self.broadcast(x, shape), self.broadcast(y, shape)])

    # wiring
    def reshape(self, x: Tensor, shape: Sequence[int]) -> Tensor:
        shape = tuple(int(d) for d in shape)
        return x if shape == x.shape else self.node(RESHAPE, [x], shape=shape)

    def transpose(self, x: Tensor, perm: Sequence[int]) -> Tensor:
        perm = tuple(int(a) for a in perm)
        return x if perm == tuple(range(x.ndim)) else self.node(TRANSPOSE, [x], perm=perm)

    def slice(self, x: Tensor, axis: int, start: int, stop: int, step: int = 1) -> Tensor:
        if not -x.ndim <= axis < x.ndim:
            raise GraphError(f"slice axis {axis} out of range for shape {x.shape}")
        return self.node(SLICE, [x], axis=axis % x.ndim, start=int(start), stop=int(stop), step=int(step))

    def concat(self, xs: Sequence[Tensor], axis: int = 0) -> Tensor:
        if len(xs) == 1:
            return xs[0]
        nd = xs[0].ndim if xs else 0
        return self.node(CONCAT, list(xs), axis=axis % nd if nd else axis)

    def broadcast(self, x: Tensor, shape: Sequence[int]) -> Tensor:
        shape = tuple(int(d) for d in shape)
        if shape == x.shape:
            return x
        if len(shape) > x.ndim:
            x = self.reshape(x, (1,) * (len(shape) - x.ndim) + x.shape)
            if shape == x.shape:
                return x
        return self.node(BROADCAST, [x], shape=shape)

    def gather(self, x: Tensor, indices: Any, axis: int = 0) -> Tensor:
        """``numpy.take(x, indices, axis)`` with indices fixed at build time."""
        idx = np.asarray(indices, dtype=np.int64)
        if not -x.ndim <= axis < x.ndim:
            raise GraphError(f"gather axis {axis} out of range for shape {x.shape}")
        return self.node(GATHER, [x], axis=axis % x.ndim, indices=idx)

    def pad(self, x: Tensor, widths: Sequence[tuple[int, int]]) -> Tensor:
        """Zero padding: ``widths[i] = (before, after)`` for axis i."""
        w = tuple((int(a), int(b)) for a, b in widths)
        return x if all(a == b == 0 for a, b in w) else self.node(PAD, [x], widths=w)


def _builder_method(row: Primitive) -> Callable[..., Tensor] | None:
    """The Builder method of an elementwise or reduction primitive, from its row."""
    name = row.name
    if row.role == "reduction":

        def reduce(self: Builder, x: Tensor, axis: int | Sequence[int] | None = None) -> Tensor:
            return self.node(row, [x], axes=norm_axes(axis, x.ndim))

        method = reduce
    elif "elementwise" in row.properties and row.arity == 2:

        def binary(self: Builder, x: Tensor, y: Tensor) -> Tensor:
            return self._binary(row, x, y)

        method = binary
    elif "elementwise" in row.properties and row.arity == 1:

        def unary(self: Builder, x: Tensor) -> Tensor:
            return self.node(row, [x])

        method = unary
    else:
        return None
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"``{name}``: {row.doc}" + (" along ``axis`` (all axes when None)." if row.role == "reduction" else "")
    return method


for _row in BUILTIN:  # b.add, b.sum, ...: one method per built-in elementwise/reduction row, made once
    _method = _builder_method(_row)
    if _method is not None:
        assert not hasattr(Builder, _row.name), _row.name
        setattr(Builder, _row.name, _method)
