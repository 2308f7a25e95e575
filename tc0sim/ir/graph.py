"""The tensor-level DAG and the builder operators use to lower themselves onto it (docs/dag.md).

A node applies one primitive to whole arrays: every element of a node is a parallel gate with the
node's depth symbol. Nodes are appended in topological order, so ``graph.nodes`` is already a
topological order; ``Graph.to_networkx`` gives the same graph to networkx's algorithms.
"""

from __future__ import annotations

import gc
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from tc0sim.errors import GraphError
from tc0sim.ir.exact import ConstantCache
from tc0sim.ir.primitives import PRIMITIVES, Primitive, watch
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
    """One tensor-level node: ``prim`` applied to ``inputs``, producing an array of ``shape``.

    Nodes compare by identity: their attrs may hold numpy arrays. A node built without a name is
    named ``f"{prim}{id}"`` when asked (the name is not stored, to keep big graphs small)."""

    __slots__ = ("id", "prim", "shape", "inputs", "attrs", "scope", "_name", "_scope_path")

    def __init__(
        self,
        id: int,
        prim: str,
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
        return f"{self.prim}{self.id}" if self._name is None else self._name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    def __repr__(self) -> str:
        return f"Node(id={self.id}, prim={self.prim!r}, shape={self.shape}, inputs={self.inputs}, name={self.name!r})"

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


@dataclass
class Graph:
    """A DAG of primitive nodes with named inputs and outputs."""

    nodes: list[Node] = field(default_factory=list)
    inputs: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, int] = field(default_factory=dict)

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
        """The node-level graph as a networkx DiGraph (node attributes: prim, shape, scope, name)."""
        import networkx as nx

        g = nx.DiGraph()
        for n in self.nodes:
            g.add_node(n.id, prim=n.prim, shape=n.shape, scope=n.scope_path, name=n.name)
            g.add_edges_from((i, n.id) for i in n.inputs)
        return g

    def live(self) -> list[Node]:
        """Nodes from which some output is reachable, in topological order."""
        keep: set[int] = set()
        stack = list(self.outputs.values())
        while stack:
            i = stack.pop()
            if i not in keep:
                keep.add(i)
                stack.extend(self.nodes[i].inputs)
        return [n for n in self.nodes if n.id in keep]




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

    The methods of the elementwise and reduction primitives are made from their rows of the
    primitive table (``_install_builder_method``); sources and wiring are written here. Binary operators broadcast their operands numpy-style by inserting explicit ``broadcast``
    wiring nodes. ``with b.scope(name, ref=...)`` tags every node built inside with the operator.
    """

    def __init__(self) -> None:
        self.graph = Graph()
        self._scopes: tuple[Scope, ...] = ()
        self._constants = ConstantCache()

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

    def node(self, prim: str, inputs: Sequence[Tensor], name: str | None = None, **attrs: Any) -> Tensor:
        """Append a node after checking its primitive, arity and shapes."""
        p = PRIMITIVES.get(prim)
        if p is None:
            raise GraphError(f"unknown primitive {prim!r}")
        if p.arity is not None and len(inputs) != p.arity:
            raise GraphError(f"{prim} takes {p.arity} operand(s), got {len(inputs)}")
        rule = SHAPE_RULES.get(prim) or SHAPE_RULES.rule(prim)
        try:
            shape = tuple(map(int, rule([t.shape for t in inputs], attrs)))
            if shape and min(shape) < 0:
                raise GraphError(f"negative dimension in {shape}")
        except GraphError as e:
            raise GraphError(f"{prim} in operator {self._where()}: {e}") from None
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
        t = self.node("input", [], name=name, shape=shape, role=role)
        self.graph.inputs[name] = t.node
        return t

    def constant(self, value: Any, name: str | None = None) -> Tensor:
        """A constant fixed at build time, held exactly (rounded to p bits when evaluated)."""
        exact = self._constants.exact(value)
        return self.node("constant", [], name=name, shape=exact.shape, value=exact)

    def reserve(self, elements: int, bytes_each: int, what: str) -> None:
        """Called before allocating an array of ``elements``; a plain Builder has no budget to check."""

    def output(self, name: str, x: Tensor) -> None:
        if name in self.graph.outputs:
            raise GraphError(f"duplicate output name {name!r}")
        self.graph.outputs[name] = x.node

    # computation
    def _binary(self, prim: str, x: Tensor, y: Tensor) -> Tensor:
        if x.shape == y.shape:
            return self.node(prim, [x, y])
        try:
            shape = broadcast_shapes(x.shape, y.shape)
        except GraphError as e:
            raise GraphError(f"{prim} in operator {self._where()}: {e}") from None
        return self.node(prim, [self.broadcast(x, shape), self.broadcast(y, shape)])

    # wiring
    def reshape(self, x: Tensor, shape: Sequence[int]) -> Tensor:
        shape = tuple(int(d) for d in shape)
        return x if shape == x.shape else self.node("reshape", [x], shape=shape)

    def transpose(self, x: Tensor, perm: Sequence[int]) -> Tensor:
        perm = tuple(int(a) for a in perm)
        return x if perm == tuple(range(x.ndim)) else self.node("transpose", [x], perm=perm)

    def slice(self, x: Tensor, axis: int, start: int, stop: int, step: int = 1) -> Tensor:
        if not -x.ndim <= axis < x.ndim:
            raise GraphError(f"slice axis {axis} out of range for shape {x.shape}")
        return self.node("slice", [x], axis=axis % x.ndim, start=int(start), stop=int(stop), step=int(step))

    def concat(self, xs: Sequence[Tensor], axis: int = 0) -> Tensor:
        if len(xs) == 1:
            return xs[0]
        nd = xs[0].ndim if xs else 0
        return self.node("concat", list(xs), axis=axis % nd if nd else axis)

    def broadcast(self, x: Tensor, shape: Sequence[int]) -> Tensor:
        shape = tuple(int(d) for d in shape)
        if shape == x.shape:
            return x
        if len(shape) > x.ndim:
            x = self.reshape(x, (1,) * (len(shape) - x.ndim) + x.shape)
            if shape == x.shape:
                return x
        return self.node("broadcast", [x], shape=shape)

    def gather(self, x: Tensor, indices: Any, axis: int = 0) -> Tensor:
        """``numpy.take(x, indices, axis)`` with indices fixed at build time."""
        idx = np.asarray(indices, dtype=np.int64)
        if not -x.ndim <= axis < x.ndim:
            raise GraphError(f"gather axis {axis} out of range for shape {x.shape}")
        return self.node("gather", [x], axis=axis % x.ndim, indices=idx)

    def pad(self, x: Tensor, widths: Sequence[tuple[int, int]]) -> Tensor:
        """Zero padding: ``widths[i] = (before, after)`` for axis i."""
        w = tuple((int(a), int(b)) for a, b in widths)
        return x if all(a == b == 0 for a, b in w) else self.node("pad", [x], widths=w)


def _builder_method(row: Primitive) -> Callable[..., Tensor] | None:
    """The Builder method of an elementwise or reduction primitive, from its row."""
    name = row.name
    if row.role == "reduction":

        def reduce(self: Builder, x: Tensor, axis: int | Sequence[int] | None = None) -> Tensor:
            return self.node(name, [x], axes=norm_axes(axis, x.ndim))

        method = reduce
    elif "elementwise" in row.properties and row.arity == 2:

        def binary(self: Builder, x: Tensor, y: Tensor) -> Tensor:
            return self._binary(name, x, y)

        method = binary
    elif "elementwise" in row.properties and row.arity == 1:

        def unary(self: Builder, x: Tensor) -> Tensor:
            return self.node(name, [x])

        method = unary
    else:
        return None
    method.__name__ = method.__qualname__ = name
    method.__doc__ = f"``{name}``: {row.doc}" + (" along ``axis`` (all axes when None)." if row.role == "reduction" else "")
    return method


_GENERATED: set[str] = set()


def _install_builder_method(name: str, row: Primitive | None) -> None:
    """Give Builder a method per elementwise/reduction primitive (``b.add``, ``b.sum``, ...)."""
    if row is None:
        if name in _GENERATED:
            delattr(Builder, name)
            _GENERATED.discard(name)
        return
    method = _builder_method(row)
    if method is not None:
        if hasattr(Builder, name) and name not in _GENERATED:
            raise GraphError(f"primitive {name!r} would replace the Builder method of the same name")
        setattr(Builder, name, method)
        _GENERATED.add(name)


for _row in PRIMITIVES.values():
    _install_builder_method(_row.name, _row)
watch(_install_builder_method)
