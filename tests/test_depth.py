"""The depth interpreter: worked depth vectors, exactness across non-uniform wiring, witnesses,
claims, and a property test against the scalar expansion (networkx DP over gates)."""

from fractions import Fraction
from itertools import permutations

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tc0sim.errors import ConfigError, MissingRuleError
from tc0sim.interp.depth import DEPTH_RULES, depth, depth_numeric
from tc0sim.interp.expand import expand, scalar_depth, scalar_depth_by_node, scalar_size
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder, Node
from tc0sim.ir.primitives import PRIMITIVES, SYMBOLS
from reference import depth_dict, depth_vector

def v(d_std=0, d_sum=0, d_prod=0, d_exp=0, d_sqrt=0):
    return depth_vector(d_std, d_sum, d_prod, d_exp, d_sqrt)


def path_vector(path: list[Node]) -> tuple[int, ...]:
    """The vector of a path, counted by hand from the primitive table."""
    counts = dict.fromkeys(SYMBOLS, 0)
    for node in path:
        symbol = PRIMITIVES[node.prim].symbol
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


def test_matmul_depth_is_std_plus_sum():
    from tc0sim.ops.matmul import matmul

    b = Builder()
    b.output("out", matmul(b, b.input("X", (2, 3)), b.input("Y", (3, 4))))
    result = depth(b.graph)
    assert result.critical == [v(d_std=1, d_sum=1)]
    assert result.holds("d_std + d_sum")
    assert not result.holds("d_std")
    assert result.exact


def test_two_incomparable_critical_vectors_and_their_witnesses():
    graph = two_branch_graph()
    result = depth(graph)
    exp_path, sum_path = v(d_std=1, d_exp=2), v(d_std=1, d_sum=2)
    assert sorted(result.critical) == sorted([exp_path, sum_path])
    assert result.per_symbol == depth_dict(d_std=1, d_sum=2, d_prod=0, d_exp=2, d_sqrt=0)
    for target, source in [(exp_path, "x"), (sum_path, "y")]:
        path = result.witness(target)
        assert path_vector(path) == target
        assert path[0].name == source
        assert_is_path(graph, path)
    assert result.holds("d_std + 2 d_sum + 2 d_exp")
    assert result.violations("d_std + 2 d_sum + d_exp") == [exp_path]
    assert result.violations({"d_std": 1, "d_exp": 2}) == [sum_path]


def test_at_picks_the_heavier_branch():
    result = depth(two_branch_graph())
    value, path = result.at({"d_std": 1, "d_sum": 5, "d_exp": 2})
    assert value == 1 + 2 * 5 and path_vector(path) == v(d_std=1, d_sum=2)
    value, path = result.at({"d_std": 1, "d_sum": 1, "d_exp": Fraction(7, 2)})
    assert value == 8 and path_vector(path) == v(d_std=1, d_exp=2)
    assert depth_numeric(two_branch_graph(), {"d_std": 1, "d_sum": 5, "d_exp": 2})[0] == 11
    with pytest.raises(ConfigError):
        result.at({"d_std": 1})


def test_by_operator_groups_consecutive_scopes():
    b = Builder()
    x = b.input("x", (2, 2))
    with b.scope("inner", ref="Lemma X"):
        y = b.exp(b.add(x, x))
    with b.scope("outer"):
        z = b.sqrt(y)
    b.output("out", b.relu(z))
    result = depth(b.graph)
    (crit,) = result.critical
    assert crit == v(d_std=2, d_exp=1, d_sqrt=1)
    groups = result.by_operator(result.witness(crit))
    assert groups == [("(top)", v()), ("inner", v(d_std=1, d_exp=1)), ("outer", v(d_sqrt=1)), ("(top)", v(d_std=1))]


def test_concat_then_slice_reads_only_the_shallow_part():
    """concat(exp(x), y) then take the y rows then add: depth d_std, not d_exp + d_std."""
    b = Builder()
    x, y = b.input("x", (2, 3)), b.input("y", (2, 3))
    c = b.concat([b.exp(x), y], axis=0)
    tail = b.slice(c, 0, 2, 4)
    b.output("out", b.add(tail, tail))
    result = depth(b.graph)
    assert result.critical == [v(d_std=1)]
    assert result.exact
    assert [n.name for n in result.witness(v(d_std=1))][0] == "y"


def test_strided_slice_and_gather_pick_classes():
    b = Builder()
    x = b.input("x", (4,))
    c = b.concat([b.exp(x), b.sqrt(x)], axis=0)  # 0..3 d_exp, 4..7 d_sqrt
    b.output("evens_of_exp", b.relu(b.slice(c, 0, 0, 4, 2)))
    b.output("gathered_sqrt", b.gather(c, [[5, 7], [4, 4]], axis=0))
    result = depth(b.graph)
    assert sorted(result.critical) == sorted([v(d_std=1, d_exp=1), v(d_sqrt=1)])
    b2 = Builder()
    x2 = b2.input("x", (4,))
    c2 = b2.concat([b2.exp(x2), b2.sqrt(x2)], axis=0)
    b2.output("only_sqrt", b2.sum(b2.gather(c2, [6, 5], axis=0)))
    assert depth(b2.graph).critical == [v(d_sum=1, d_sqrt=1)]


def test_pad_zeros_have_depth_zero():
    b = Builder()
    x = b.input("x", (2,))
    padded = b.pad(b.exp(x), [(0, 3)])
    b.output("zeros", b.slice(padded, 0, 2, 5))
    b.output("mixed", b.relu(padded))
    result = depth(b.graph)
    assert sorted(result.critical) == [v(d_std=1, d_exp=1)]
    b2 = Builder()
    x2 = b2.input("x", (2,))
    b2.output("zeros", b2.relu(b2.slice(b2.pad(b2.exp(x2), [(1, 3)]), 0, 3, 6)))
    result2 = depth(b2.graph)
    assert result2.critical == [v(d_std=1)]
    path = result2.witness(v(d_std=1))
    assert [n.prim for n in path] == ["pad", "slice", "relu"]


def test_reduction_groups_elements_by_the_classes_they_read():
    """Row sums of [[exp, y], [y, y]]: row 0 reads d_exp, row 1 only inputs."""
    b = Builder()
    x, y = b.input("x", (1, 1)), b.input("y", (1, 1))
    top = b.concat([b.exp(x), y], axis=1)
    bottom = b.concat([y, y], axis=1)
    rows = b.sum(b.concat([top, bottom], axis=0), axis=1)
    b.output("row1", b.sqrt(b.slice(rows, 0, 1, 2)))
    b.output("row0", b.slice(rows, 0, 0, 1))
    assert sorted(depth(b.graph).critical) == sorted([v(d_sum=1, d_sqrt=1), v(d_sum=1, d_exp=1)])


def test_only_live_nodes_count():
    b = Builder()
    x = b.input("x", (2,))
    b.exp(b.exp(x))
    b.output("out", b.relu(x))
    assert depth(b.graph).critical == [v(d_std=1)]


def test_cap_falls_back_to_node_level_and_says_so():
    b = Builder()
    x, y = b.input("x", (2, 3)), b.input("y", (2, 3))
    c = b.concat([b.exp(x), y], axis=0)
    b.output("out", b.add(b.slice(c, 0, 2, 4), y))
    exact = depth(b.graph)
    capped = depth(b.graph, cap=5)
    assert exact.exact and exact.critical == [v(d_std=1)]
    assert not capped.exact
    assert capped.critical == [v(d_std=1, d_exp=1)]
    assert capped.inexact_reasons and "cap of 5" in capped.inexact_reasons[0]
    assert capped.as_dict()["exact"] is False


def test_missing_rule_is_an_error(monkeypatch):
    b = Builder()
    b.output("out", b.exp(b.input("x", (2,))))
    monkeypatch.delitem(DEPTH_RULES, "exp")
    with pytest.raises(MissingRuleError, match="depth.*exp"):
        depth(b.graph)


def test_as_dict_is_json_ready():
    import json

    d = depth(two_branch_graph()).as_dict()
    assert json.loads(json.dumps(d))["critical"] == [
        depth_dict(d_std=1, d_sum=0, d_prod=0, d_exp=2, d_sqrt=0),
        depth_dict(d_std=1, d_sum=2, d_prod=0, d_exp=0, d_sqrt=0),
    ]


# --- property test: tensor-level depth equals the scalar-level depth ---------------------------

UNARY = ["relu", "exp", "sqrt", "neg"]
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
            shape = draw(st.sampled_from([(n,), (1, n), (n, 1), x.shape[::-1] if n else (n,)]))
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
            new = b.gather(x, np.array(indices).reshape(draw(st.sampled_from([(len(indices),), (1, len(indices))]))), axis)
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


def _broadcasts(a, b):
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


def _longest_per_symbol(g: nx.DiGraph, symbol: str) -> int:
    """networkx's own longest path, counting gates of ``symbol``, over nodes that reach an output."""
    outputs = [n for n, d in g.nodes(data="output") if d]
    keep = set(outputs).union(*(nx.ancestors(g, o) for o in outputs))
    sub = g.subgraph(keep).copy()
    for a, c in sub.edges:
        sub.edges[a, c]["w"] = int(sub.nodes[c]["symbol"] == symbol)
    starts = max((int(sub.nodes[n]["symbol"] == symbol) for n in sub if sub.in_degree(n) == 0), default=0)
    return max(nx.dag_longest_path_length(sub, weight="w") if sub.number_of_edges() else 0, starts)


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(), st.dictionaries(st.sampled_from(SYMBOLS), st.integers(0, 9), min_size=len(SYMBOLS)))
def test_tensor_depth_equals_scalar_depth(graph, values):
    result = depth(graph)
    g = expand(graph)
    assert result.exact
    assert result.critical == scalar_depth(g)
    per_gate = scalar_depth_by_node(g)
    for name, node_id in graph.outputs.items():
        elements = g.graph["outputs"][name]
        assert result.element_depths(node_id) == [sorted(per_gate[e]) for e in elements]
    assert dict(size(graph).by_primitive) == dict(scalar_size(g))
    for i, s in enumerate(SYMBOLS):
        assert result.per_symbol[s] == _longest_per_symbol(g, s)
    best, path = result.at(values)
    assert best == max(sum(c * values[s] for c, s in zip(crit, SYMBOLS)) for crit in result.critical)
    assert sum(c * values[s] for c, s in zip(path_vector(path), SYMBOLS)) == best
    for crit in result.critical:
        witness = result.witness(crit)
        assert path_vector(witness) == crit
        assert_is_path(graph, witness)
