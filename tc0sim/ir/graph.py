"""The tensor-level DAG and the builder operators use to lower themselves onto it (SPEC §2).

A node applies one primitive to whole arrays: every element of a node is a parallel gate with the
node's depth symbol. Nodes are appended in topological order, so ``graph.nodes`` is already a
topological order; ``Graph.to_networkx`` gives the same graph to networkx's algorithms.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import networkx as nx
import numpy as np

from tc0sim.errors import GraphError, MissingRuleError
from tc0sim.ir.primitives import PRIMITIVES

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Scope:
    """An operator scope: the operator's name and the paper definition/lemma it implements."""

    name: str
    ref: str = ""

    def __str__(self) -> str:
        return f"{self.name} [{self.ref}]" if self.ref else self.name


@dataclass(eq=False)
class Node:
    """One tensor-level node: ``prim`` applied to ``inputs``, producing an array of ``shape``.

    Nodes compare by identity: their attrs may hold numpy arrays."""

    id: int
    prim: str
    shape: Shape
    inputs: tuple[int, ...]
    attrs: dict[str, Any]
    scope: tuple[Scope, ...]
    name: str

    @property
    def size(self) -> int:
        """Number of elements (= gates, for a non-wiring node)."""
        return math.prod(self.shape)

    @property
    def scope_path(self) -> str:
        """Scope names joined with '/', outermost first ('' at top level)."""
        return "/".join(s.name for s in self.scope)

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


def _broadcast_shapes(*shapes: Shape) -> Shape:
    """numpy's broadcasting rule on shapes alone (numpy's own refuses shapes too big to allocate)."""
    ndim = max(len(s) for s in shapes)
    out = []
    for axis in range(ndim):
        dims = {s[axis - ndim + len(s)] for s in shapes if axis - ndim + len(s) >= 0} - {1}
        if len(dims) > 1:
            raise GraphError(f"shapes {', '.join(map(str, shapes))} do not broadcast")
        out.append(dims.pop() if dims else 1)
    return tuple(out)


def _norm_axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    axes = tuple(range(ndim)) if axis is None else ((axis,) if isinstance(axis, int) else tuple(axis))
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise GraphError(f"axis {a} out of range for {ndim}-d tensor")
        out.append(a % ndim)
    if len(set(out)) != len(out):
        raise GraphError(f"repeated axis in {axes}")
    return tuple(sorted(out))


def _same_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    if any(s != shapes[0] for s in shapes):
        raise GraphError(f"operands have shapes {', '.join(map(str, shapes))}; expected equal shapes")
    return shapes[0]


def _reduce_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    (s,) = shapes
    return tuple(d for i, d in enumerate(s) if i not in attrs["axes"])


def _reshape_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    (s,) = shapes
    if math.prod(s) != math.prod(attrs["shape"]):
        raise GraphError(f"cannot reshape {s} to {attrs['shape']}")
    return attrs["shape"]


def _transpose_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    (s,) = shapes
    if sorted(attrs["perm"]) != list(range(len(s))):
        raise GraphError(f"{attrs['perm']} is not a permutation of the axes of {s}")
    return tuple(s[i] for i in attrs["perm"])


def _slice_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    (s,) = shapes
    ax = attrs["axis"]
    if not 0 <= ax < len(s):
        raise GraphError(f"slice axis {ax} out of range for shape {s}")
    n = len(range(attrs["start"], attrs["stop"], attrs["step"]))
    if not (0 <= attrs["start"] <= s[ax] and attrs["start"] <= attrs["stop"] <= s[ax] and attrs["step"] > 0):
        raise GraphError(f"slice {attrs['start']}:{attrs['stop']}:{attrs['step']} out of range for axis {ax} of {s}")
    return s[:ax] + (n,) + s[ax + 1 :]


def _concat_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    ax = attrs["axis"]
    if not shapes:
        raise GraphError("concat of no tensors")
    rest = {s[:ax] + s[ax + 1 :] for s in shapes}
    if len(rest) != 1 or any(not 0 <= ax < len(s) for s in shapes):
        raise GraphError(f"cannot concatenate shapes {', '.join(map(str, shapes))} along axis {ax}")
    first = shapes[0]
    return first[:ax] + (sum(s[ax] for s in shapes),) + first[ax + 1 :]


def _broadcast_to_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    (s,) = shapes
    if _broadcast_shapes(s, attrs["shape"]) != attrs["shape"]:
        raise GraphError(f"cannot broadcast {s} to {attrs['shape']}")
    return attrs["shape"]


def _gather_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    (s,) = shapes
    ax, idx = attrs["axis"], attrs["indices"]
    if not 0 <= ax < len(s):
        raise GraphError(f"gather axis {ax} out of range for shape {s}")
    if idx.size and (idx.min() < 0 or idx.max() >= s[ax]):
        raise GraphError(f"gather indices out of range [0, {s[ax]}) on axis {ax} of {s}")
    return s[:ax] + idx.shape + s[ax + 1 :]


def _pad_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    (s,) = shapes
    w = attrs["widths"]
    if len(w) != len(s) or any(a < 0 or b < 0 for a, b in w):
        raise GraphError(f"pad widths {w} do not fit shape {s}")
    return tuple(d + a + b for d, (a, b) in zip(s, w))


def _source_shape(shapes: list[Shape], attrs: dict[str, Any]) -> Shape:
    return attrs["shape"]


SHAPE_RULES: dict[str, Callable[[list[Shape], dict[str, Any]], Shape]] = {
    **{name: _same_shape for name in ("add", "sub", "mul", "div", "max", "min", "compare")},
    **{name: _same_shape for name in ("relu", "exp", "sqrt", "erf", "neg")},
    "sum": _reduce_shape,
    "prod": _reduce_shape,
    "input": _source_shape,
    "constant": _source_shape,
    "reshape": _reshape_shape,
    "transpose": _transpose_shape,
    "slice": _slice_shape,
    "concat": _concat_shape,
    "broadcast": _broadcast_to_shape,
    "gather": _gather_shape,
    "pad": _pad_shape,
}
"""The shape interpreter: one rule per primitive, checked when a node is built."""


def _exact_array(value: Any) -> np.ndarray:
    """An object array of exact Fractions from ints, Fractions, decimal strings or finite floats."""
    arr = np.asarray(value, dtype=object)
    out = np.empty(arr.shape, dtype=object)
    flat = out.reshape(-1)
    for i, v in enumerate(arr.reshape(-1)):
        if isinstance(v, float) and not math.isfinite(v):
            raise GraphError(f"constant {v!r} is not a finite number")
        try:
            flat[i] = Fraction(v) if not isinstance(v, (np.floating, np.integer)) else Fraction(v.item())
        except (TypeError, ValueError):
            raise GraphError(f"constant {v!r} is not an exact number") from None
    return out


class Builder:
    """Appends nodes to a Graph; operators call ``b.mul(x, y)``, ``b.sum(x, axis=...)`` etc.

    Binary operators broadcast their operands numpy-style by inserting explicit ``broadcast``
    wiring nodes. ``with b.scope(name, ref=...)`` tags every node built inside with the operator.
    """

    def __init__(self) -> None:
        self.graph = Graph()
        self._scopes: list[Scope] = []

    @contextmanager
    def scope(self, name: str, ref: str = "") -> Iterator[None]:
        """Tag nodes built inside with operator ``name`` and its paper reference ``ref``."""
        self._scopes.append(Scope(name, ref))
        try:
            yield
        finally:
            self._scopes.pop()

    def node(self, prim: str, inputs: Sequence[Tensor], name: str | None = None, **attrs: Any) -> Tensor:
        """Append a node after checking its primitive, arity and shapes."""
        p = PRIMITIVES.get(prim)
        if p is None:
            raise GraphError(f"unknown primitive {prim!r}")
        if p.arity is not None and len(inputs) != p.arity:
            raise GraphError(f"{prim} takes {p.arity} operand(s), got {len(inputs)}")
        rule = SHAPE_RULES.get(prim)
        if rule is None:
            raise MissingRuleError("shape", prim)
        where = "/".join(s.name for s in self._scopes) or "(top)"
        try:
            shape = tuple(int(d) for d in rule([t.shape for t in inputs], attrs))
        except GraphError as e:
            raise GraphError(f"{prim} in operator {where}: {e}") from None
        if any(d < 0 for d in shape):
            raise GraphError(f"{prim} in operator {where}: negative dimension in {shape}")
        nid = len(self.graph.nodes)
        self.graph.nodes.append(
            Node(nid, prim, shape, tuple(t.node for t in inputs), attrs, tuple(self._scopes), name or f"{prim}{nid}")
        )
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
        exact = _exact_array(value)
        return self.node("constant", [], name=name, shape=exact.shape, value=exact)

    def output(self, name: str, x: Tensor) -> None:
        if name in self.graph.outputs:
            raise GraphError(f"duplicate output name {name!r}")
        self.graph.outputs[name] = x.node

    # computation
    def _binary(self, prim: str, x: Tensor, y: Tensor) -> Tensor:
        try:
            shape = _broadcast_shapes(x.shape, y.shape)
        except GraphError as e:
            raise GraphError(f"{prim} in operator {'/'.join(s.name for s in self._scopes) or '(top)'}: {e}") from None
        return self.node(prim, [self.broadcast(x, shape), self.broadcast(y, shape)])

    def add(self, x: Tensor, y: Tensor) -> Tensor:
        return self._binary("add", x, y)

    def sub(self, x: Tensor, y: Tensor) -> Tensor:
        return self._binary("sub", x, y)

    def mul(self, x: Tensor, y: Tensor) -> Tensor:
        return self._binary("mul", x, y)

    def div(self, x: Tensor, y: Tensor) -> Tensor:
        return self._binary("div", x, y)

    def max(self, x: Tensor, y: Tensor) -> Tensor:
        return self._binary("max", x, y)

    def min(self, x: Tensor, y: Tensor) -> Tensor:
        return self._binary("min", x, y)

    def compare(self, x: Tensor, y: Tensor) -> Tensor:
        """1 where x < y, else 0."""
        return self._binary("compare", x, y)

    def relu(self, x: Tensor) -> Tensor:
        return self.node("relu", [x])

    def neg(self, x: Tensor) -> Tensor:
        return self.node("neg", [x])

    def exp(self, x: Tensor) -> Tensor:
        return self.node("exp", [x])

    def sqrt(self, x: Tensor) -> Tensor:
        return self.node("sqrt", [x])

    def erf(self, x: Tensor) -> Tensor:
        """The error function, correctly rounded (one d_erf gate per element)."""
        return self.node("erf", [x])

    def sum(self, x: Tensor, axis: int | Sequence[int] | None = None) -> Tensor:
        """⊕ along ``axis``: one gate of fan-in prod(reduced dims) per output element."""
        return self.node("sum", [x], axes=_norm_axes(axis, x.ndim))

    def prod(self, x: Tensor, axis: int | Sequence[int] | None = None) -> Tensor:
        """⊗ along ``axis``."""
        return self.node("prod", [x], axes=_norm_axes(axis, x.ndim))

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
