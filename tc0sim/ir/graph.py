"""The builder operators use to lower themselves onto the tensor-level DAG (docs/dag.md).

The DAG's records (``Graph``, ``Node``, ``Tensor``, ``Scope``, ``Function``) are defined in
``tc0sim.ir.dag``; ``Graph``, ``Node`` and ``Tensor`` are importable from here too, beside ``Builder``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np

from tc0sim.errors import GraphError
from tc0sim.ir.dag import Function, Graph, Node, Scope, Tensor, WeightSource
from tc0sim.ir.exact import ConstantCache, LazyConstant
from tc0sim.ir.primitives import (BROADCAST, BUILTIN, CALL, CONCAT, CONSTANT, GATHER, INPUT, PAD, RESHAPE, RESULT, SLICE,
                                  TRANSPOSE, Primitive, is_defined)
from tc0sim.ir.rules import RuleTable
from tc0sim.ir.shapes import Shape, ShapeRule, broadcast_shapes, norm_axes

__all__ = ["Builder", "Graph", "Node", "Tensor", "SHAPE_RULES"]


SHAPE_RULES: RuleTable[ShapeRule] = RuleTable("shape", lambda p: p.shape)
"""The shape interpreter: one rule per primitive (the row's ``shape``), checked when a node is built."""


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
