"""Shared cases and checks of the depth tests (tests/test_depth*.py): small graphs, random DAGs,
witness and canonical-form checks against the scalar expansion."""

import math
from itertools import permutations
from pathlib import Path

import networkx as nx
import numpy as np
from hypothesis import strategies as st

from tc0sim.ir.graph import Builder, Node
from tc0sim.ir.primitives import SYMBOLS

from reference import depth_vector


EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def v(d_std=0, d_sum=0, d_prod=0, d_exp=0, d_sqrt=0):
    return depth_vector(d_std, d_sum, d_prod, d_exp, d_sqrt)


def path_vector(path: list[Node]) -> tuple[int, ...]:
    """The vector of a path, counted by hand from the primitive table."""
    counts = dict.fromkeys(SYMBOLS, 0)
    for node in path:
        symbol = node.prim.symbol
        if symbol:
            counts[symbol] += 1
    return tuple(counts[s] for s in SYMBOLS)


def assert_is_path(graph, path: list[Node]) -> None:
    for a, b in zip(path, path[1:]):
        assert a.id in b.inputs
    assert path[-1].id in graph.outputs.values()


def two_branch_graph():
    """out = exp(exp(x)) + sum_k(sum_j(y)) : paths d_std + 2 d_exp and d_std + 2 d_sum — incomparable."""
    b = Builder()
    x = b.input("x", (3,))
    y = b.input("y", (3, 4, 5))
    left = b.exp(b.exp(x))
    right = b.sum(b.sum(y, axis=2), axis=1)
    b.output("out", b.add(left, right))
    return b.graph


def many_classes_graph(k: int):
    """out = rows + cols where rows[i, :] and cols[:, j] have depth i resp. j exps: k² element classes."""
    b = Builder()
    parts = []
    for i in range(k):
        t = b.input(f"x{i}", (1, 1))
        for _ in range(i):
            t = b.exp(t)
        parts.append(t)
    rows = b.broadcast(b.concat(parts, axis=0), (k, k))
    cols = b.broadcast(b.concat([b.sqrt(b.transpose(p, (1, 0))) for p in parts], axis=1), (k, k))
    b.output("out", b.add(rows, cols))
    return b.graph


UNARY = ["relu", "exp", "sqrt", "erf", "neg"]


BINARY = ["add", "sub", "mul", "div", "max", "min", "compare"]


MAX_ELEMENTS = 48


@st.composite
def random_graphs(draw):
    """A random small DAG mixing every primitive, including all the wiring ones."""
    b = Builder()
    dims = st.integers(1, 3)
    tensors = []
    for i in range(draw(st.integers(1, 3))):
        shape = tuple(draw(st.lists(dims, min_size=1, max_size=3)))
        tensors.append(b.input(f"in{i}", shape))
    if draw(st.booleans()):
        tensors.append(b.constant(np.ones(draw(st.lists(dims, min_size=1, max_size=2)), dtype=int)))
    if draw(st.booleans()):
        axis = draw(st.integers(0, 1))
        m = b.input("m", (draw(dims), draw(dims)))
        other = b.input("mixed", m.shape[:axis] + (draw(dims),) + m.shape[axis + 1 :])
        tensors.append(b.concat([b.exp(m), other], axis=axis))
        if draw(st.booleans()):
            tensors.append(b.sum(tensors[-1], axis=1 - axis))
    elif draw(st.booleans()):
        x = draw(st.sampled_from(tensors))
        tensors.append(b.pad(b.sqrt(x), [(draw(st.integers(0, 1)), 1) for _ in x.shape]))
    for step in range(draw(st.integers(3, 16))):
        recent = draw(st.booleans())
        x = draw(st.sampled_from(tensors[-2:] if recent else tensors))
        op = draw(
            st.sampled_from(UNARY + BINARY + ["sum", "prod", "sum", "prod", "reshape", "transpose", "slice", "concat", "broadcast", "gather", "pad"])
        )
        new = None
        if x.ndim == 0 and op in ("sum", "prod", "slice", "concat", "gather"):
            continue
        if op in UNARY:
            new = getattr(b, op)(x)
        elif op in BINARY:
            partners = [t for t in tensors if _broadcasts(t.shape, x.shape)]
            new = getattr(b, op)(x, draw(st.sampled_from(partners)))
        elif op in ("sum", "prod"):
            axes = draw(st.lists(st.integers(0, x.ndim - 1), min_size=1, max_size=x.ndim, unique=True))
            new = getattr(b, op)(x, axes)
        elif op == "reshape":
            n = int(np.prod(x.shape))
            shape = draw(st.sampled_from([(n,), (1, n), (n, 1), x.shape[::-1] if n else (n,), *factorisations(n)]))
            if int(np.prod(shape)) == n:
                new = b.reshape(x, shape)
        elif op == "transpose":
            new = b.transpose(x, draw(st.sampled_from(list(permutations(range(x.ndim))))))
        elif op == "slice":
            axis = draw(st.integers(0, x.ndim - 1))
            start = draw(st.integers(0, x.shape[axis] - 1))
            stop = draw(st.integers(start + 1, x.shape[axis]))
            new = b.slice(x, axis, start, stop, draw(st.integers(1, 2)))
        elif op == "concat":
            axis = draw(st.integers(0, x.ndim - 1))
            partners = [
                t for t in tensors if t.ndim == x.ndim and all(t.shape[a] == x.shape[a] for a in range(x.ndim) if a != axis)
            ]
            fresh = x.shape[:axis] + (draw(dims),) + x.shape[axis + 1 :]
            partners.append(b.input(f"cat{step}", fresh))
            parts = [x, draw(st.sampled_from(partners))]
            new = b.concat(parts if draw(st.booleans()) else parts[::-1], axis=axis)
        elif op == "broadcast":
            target = tuple(draw(st.integers(1, 2)) if d == 1 else d for d in x.shape)
            new = b.broadcast(x, (draw(st.integers(1, 2)),) + target)
        elif op == "gather":
            axis = draw(st.integers(0, x.ndim - 1))
            index = st.integers(0, x.shape[axis] - 1)
            indices = draw(st.lists(index, min_size=1, max_size=3))
            layout = draw(st.sampled_from([(len(indices),), (1, len(indices)), (-1, 1), ()]))
            chosen = np.array(indices[0] if layout == () else indices).reshape(layout)
            new = b.gather(x, chosen, axis)
        elif op == "pad":
            widths = [tuple(draw(st.integers(0, 1)) for _ in range(2)) for _ in x.shape]
            new = b.pad(x, widths)
        if new is not None and int(np.prod(new.shape)) <= MAX_ELEMENTS:
            tensors.append(new)
    last = tensors[-1]
    if last.ndim and draw(st.booleans()):
        axis = draw(st.integers(0, last.ndim - 1))
        start = draw(st.integers(0, last.shape[axis] - 1))
        tensors.append(b.slice(last, axis, start, draw(st.integers(start + 1, last.shape[axis]))))
    outputs = draw(st.lists(st.sampled_from(tensors), min_size=0, max_size=2, unique_by=lambda t: t.node))
    for k, t in enumerate([tensors[-1], *outputs]):
        if t.node not in b.graph.outputs.values():
            b.output(f"out{k}", t)
    return b.graph


def factorisations(n: int) -> list[tuple[int, ...]]:
    """Every way to write n as an ordered product of 2 or 3 factors > 1 (reshapes that mix axes)."""
    pairs = [(a, n // a) for a in range(2, n) if n % a == 0]
    return pairs + [(a, *rest) for a, m in pairs for rest in factorisations(m) if len(rest) == 2]


def _broadcasts(a, b):
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


def scalar_ids(graph, g: nx.DiGraph):
    """Where each tensor node's elements start in the scalar expansion, and the shared zero of pad."""
    offsets, zero = {}, None
    for i, data in g.nodes(data=True):
        if graph.node(data["tensor"]).prim.name == "pad":
            zero = i
        else:
            offsets.setdefault(data["tensor"], i)
    return offsets, zero


def assert_scalar_path(graph, g: nx.DiGraph, elements) -> None:
    """The witness's (node, position) pairs, wiring left out, are consecutive edges of the expansion."""
    offsets, zero = scalar_ids(graph, g)
    ids = []
    for node, position in elements:
        if node.prim.name == "pad" and position is None:
            ids.append(zero)
        elif not node.prim.is_wiring or "source" in node.prim.properties:
            ids.append(offsets[node.id] + (int(np.ravel_multi_index(position, node.shape)) if node.shape else 0))
    assert g.in_degree(ids[0]) == 0
    assert all(g.has_edge(a, c) for a, c in zip(ids, ids[1:]))
    assert g.nodes[ids[-1]].get("output")


def assert_canonical(result) -> None:
    """Every factored state is minimal: each label is used, no two labels of an axis have equal slices."""
    for node_id, state in result.states.items():
        shape = result.graph.node(node_id).shape
        if math.prod(shape) == 0:
            continue
        for axis, lab in enumerate(state.labels):
            m = state.core.shape[axis]
            if lab is None:
                assert m == 1
                continue
            assert len(lab) == shape[axis] and m > 1 and set(lab.tolist()) == set(range(m))
            rows = np.moveaxis(state.core, axis, 0).reshape(m, -1)
            assert len({tuple(r) for r in rows.tolist()}) == m
