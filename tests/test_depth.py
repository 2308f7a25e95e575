"""The depth interpreter: worked depth vectors, exactness across non-uniform wiring, witnesses,
claims, and a property test against the scalar expansion (networkx DP over gates)."""

import math
from fractions import Fraction
from itertools import permutations
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tc0sim.errors import ConfigError, DepthBudgetError, MissingRuleError
from tc0sim.interp.depth import DEPTH_RULES, depth, depth_numeric
from tc0sim.interp.expand import expand, scalar_count, scalar_depth, scalar_depth_by_node, scalar_size
from tc0sim.interp.paths import group_path
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder, Node
from tc0sim.ir.primitives import PRIMITIVES, SYMBOLS
from tc0sim.ir.vectors import leq
from tc0sim.modelfile import load_model

from reference import depth_dict, depth_vector
from reference_depth_dense import dense_depth

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

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


def test_memory_budget_refuses_with_the_node_named():
    graph = many_classes_graph(40)
    exact = depth(graph)
    assert exact.exact
    assert exact.critical == [v(d_std=1, d_exp=39, d_sqrt=1)]
    with pytest.raises(DepthBudgetError, match=r"node \d+ \(add .* in operator \(top\).*memory budget"):
        depth(graph, memory_budget=20_000)


def test_upper_bound_only_when_asked_and_then_it_says_so():
    b = Builder()
    x, y = b.input("x", (2, 3)), b.input("y", (2, 3))
    c = b.concat([b.exp(x), y], axis=0)
    b.output("out", b.add(b.slice(c, 0, 2, 4), y))
    exact = depth(b.graph)
    assert exact.exact and exact.critical == [v(d_std=1)]
    with pytest.raises(DepthBudgetError):
        depth(b.graph, memory_budget=40)
    bounded = depth(b.graph, memory_budget=40, allow_upper_bound=True)
    assert not bounded.exact
    assert bounded.critical == [v(d_std=1, d_exp=1)]
    assert bounded.inexact_reasons and "memory budget" in bounded.inexact_reasons[0]
    assert bounded.as_dict()["exact"] is False
    assert path_vector(bounded.witness(bounded.critical[0])) == v(d_std=1, d_exp=1)


def test_huge_nodes_cost_nothing_and_stay_exact():
    """A 10^15-element product tensor whose borders differ: exp on the first row block, pad zeros around."""
    n = 10**5
    b = Builder()
    top = b.exp(b.input("top", (1, n)))
    x = b.concat([top, b.input("rest", (n - 1, n))], axis=0)
    y = b.pad(b.sqrt(b.input("y", (n - 2, n))), [(1, 1), (0, 0)])
    from tc0sim.ops.matmul import matmul

    products = matmul(b, x, y)  # [n, n]: row 0 reads exp, every row reads sqrt
    b.output("row0", b.slice(products, 0, 0, 1))
    b.output("others", b.relu(b.slice(products, 0, 1, n)))
    result = depth(b.graph, memory_budget=50 * 2**20)
    assert result.exact
    assert sorted(result.critical) == sorted([v(d_std=1, d_sum=1, d_exp=1), v(d_std=2, d_sum=1, d_sqrt=1)])
    assert size(b.graph).total > 10**15


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


def _longest_per_symbol(g: nx.DiGraph, symbol: str) -> int:
    """networkx's own longest path, counting gates of ``symbol``, over nodes that reach an output."""
    outputs = [n for n, d in g.nodes(data="output") if d]
    keep = set(outputs).union(*(nx.ancestors(g, o) for o in outputs))
    sub = g.subgraph(keep).copy()
    for a, c in sub.edges:
        sub.edges[a, c]["w"] = int(sub.nodes[c]["symbol"] == symbol)
    starts = max((int(sub.nodes[n]["symbol"] == symbol) for n in sub if sub.in_degree(n) == 0), default=0)
    return max(nx.dag_longest_path_length(sub, weight="w") if sub.number_of_edges() else 0, starts)


def scalar_ids(graph, g: nx.DiGraph):
    """Where each tensor node's elements start in the scalar expansion, and the shared zero of pad."""
    offsets, zero = {}, None
    for i, data in g.nodes(data=True):
        if graph.node(data["tensor"]).prim == "pad":
            zero = i
        else:
            offsets.setdefault(data["tensor"], i)
    return offsets, zero


def assert_scalar_path(graph, g: nx.DiGraph, elements) -> None:
    """The witness's (node, position) pairs, wiring left out, are consecutive edges of the expansion."""
    offsets, zero = scalar_ids(graph, g)
    ids = []
    for node, position in elements:
        if node.prim == "pad" and position is None:
            ids.append(zero)
        elif not PRIMITIVES[node.prim].is_wiring or "source" in PRIMITIVES[node.prim].properties:
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


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(random_graphs(), st.dictionaries(st.sampled_from(SYMBOLS), st.integers(0, 9), min_size=len(SYMBOLS)))
def test_factored_depth_equals_dense_and_scalar_depth(graph, values):
    result = depth(graph)
    assert_canonical(result)
    g = expand(graph)
    assert result.exact
    assert result.critical == scalar_depth(g)
    dense_critical, dense_elements = dense_depth(graph)
    assert result.critical == dense_critical
    per_gate = scalar_depth_by_node(g)
    for name, node_id in graph.outputs.items():
        elements = g.graph["outputs"][name]
        assert result.element_depths(node_id) == [sorted(per_gate[e]) for e in elements] == dense_elements[node_id]
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
        assert_scalar_path(graph, g, result.witness_elements(crit))


EXPANDABLE = 200_000
"""Examples with at most this many scalar nodes are checked against the expansion."""


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_small_example_matches_dense_and_scalar_depth(path):
    spec = load_model(path)
    graph = spec.build(None)
    gates, sources = scalar_count(graph)
    if gates + sources > EXPANDABLE:
        pytest.skip(f"{gates + sources} scalar nodes")
    result = depth(graph)
    g = expand(graph)
    assert result.critical == scalar_depth(g) == dense_depth(graph)[0]
    for crit in result.critical:
        assert_scalar_path(graph, g, result.witness_elements(crit))


def test_witness_follows_elements_through_wiring():
    """[0, 0, 0, e0, e1, e2, e3][1::2] = [0, e0, e2], gathered to [[e2, 0], [e0, e0]]: the first deep
    element reads slice position 2, padded position 5, exp element 2."""
    b = Builder()
    x = b.input("x", (4,))
    padded = b.pad(b.exp(x), [(3, 0)])
    out = b.relu(b.gather(b.slice(padded, 0, 1, 7, 2), [[2, 0], [1, 1]], axis=0))
    b.output("out", out)
    result = depth(b.graph)
    assert sorted(result.critical) == [v(d_std=1, d_exp=1)]
    elements = result.witness_elements(v(d_std=1, d_exp=1))
    assert [(n.prim, p) for n, p in elements] == [
        ("input", (2,)), ("exp", (2,)), ("pad", (5,)), ("slice", (2,)), ("gather", (0, 0)), ("relu", (0, 0))
    ]
    deep, shallow = [v(d_std=1, d_exp=1)], [v(d_std=1)]
    assert result.element_depths(out.node) == [deep, shallow, deep, deep]


@pytest.mark.parametrize("shape", [(16,), (2, 8), (8, 2), (2, 2, 4), (4, 4), (1, 16, 1)])
def test_reshape_mixing_two_labelled_axes(shape):
    """pad(exp(x[2, 3])) is [4, 4] with classes on both axes; reshapes that merge and split them."""
    b = Builder()
    padded = b.pad(b.exp(b.input("x", (2, 3))), [(1, 1), (0, 1)])
    out = b.relu(b.reshape(padded, shape))
    b.output("out", b.sum(out, axis=len(shape) - 1))
    b.output("elements", out)
    result = depth(b.graph)
    g = expand(b.graph)
    per_gate = scalar_depth_by_node(g)
    deep, shallow = [v(d_std=1, d_exp=1)], [v(d_std=1)]
    by_hand = [deep if 1 <= i // 4 <= 2 and i % 4 < 3 else shallow for i in range(16)]
    assert result.element_depths(out.node) == by_hand == [sorted(per_gate[e]) for e in g.graph["outputs"]["elements"]]
    assert result.critical == scalar_depth(g) == dense_depth(b.graph)[0]


def test_a_move_rule_without_a_factored_rule_is_exact_and_its_witness_a_scalar_path():
    """``reverse`` (flip axis 0, defined here) has no factored rule nor origin: depth expands and
    factors its classes, the witness moves element ids through it."""
    from tc0sim.ir import primitives

    row = primitives.define(
        primitives.wiring("reverse", 1, primitives.shapes.same_shape, lambda node, arrays, fill: arrays[0][::-1], "flip axis 0")
    )
    try:
        b = Builder()
        x = b.input("X", (4, 2))
        mixed = b.concat([b.sqrt(b.slice(x, 0, 0, 3)), b.exp(b.slice(x, 0, 3, 4))], axis=0)  # rows: sqrt ×3, exp
        flipped = b.node("reverse", [mixed])  # rows: exp, sqrt ×3
        b.output("out", b.relu(b.slice(flipped, 0, 0, 2)))
        result = depth(b.graph)
        g = expand(b.graph)
        assert result.critical == scalar_depth(g) == sorted([v(d_std=1, d_exp=1), v(d_std=1, d_sqrt=1)])
        for crit in result.critical:
            elements = result.witness_elements(crit)
            assert_scalar_path(b.graph, g, elements)
        exp_path = result.witness_elements(v(d_std=1, d_exp=1))
        assert [(n.prim, p) for n, p in exp_path][1:4] == [("slice", (0, 0)), ("exp", (0, 0)), ("concat", (3, 0))]
    finally:
        primitives.undefine(row.name)


def test_a_move_rule_that_creates_elements_gives_them_depth_zero():
    """``front_zero`` (one zero before axis 0, defined here): exp(x) is uniform, its moved form is not."""
    from tc0sim.ir import primitives

    def front_zero_shape(shapes, attrs):
        (s,) = shapes
        return (s[0] + 1,) + s[1:]

    def front_zero(node, arrays, fill):
        return np.pad(arrays[0], [(1, 0)] + [(0, 0)] * (arrays[0].ndim - 1), constant_values=fill())

    row = primitives.define(primitives.wiring("front_zero", 1, front_zero_shape, front_zero, "a zero row first"))
    try:
        b = Builder()
        out = b.relu(b.node("front_zero", [b.exp(b.input("x", (2,)))]))
        b.output("out", out)
        result = depth(b.graph)
        g = expand(b.graph)
        assert result.element_depths(out.node) == [[v(d_std=1)], [v(d_std=1, d_exp=1)], [v(d_std=1, d_exp=1)]]
        assert result.critical == scalar_depth(g) == [v(d_std=1, d_exp=1)]
        assert_scalar_path(b.graph, g, result.witness_elements(v(d_std=1, d_exp=1)))
    finally:
        primitives.undefine(row.name)


def test_var_at_full_width_has_the_depth_of_its_expanded_narrow_twin():
    """The width c changes fan-ins, never the layering: VAR at c = 1920 (5.5·10¹⁰ gates, exact here in
    a fraction of a second) has the scalar depth of the same model expanded at c = 2."""
    from tc0sim.kinds import build

    params = {"scales": [1, 2, 4], "layers": 2, "decoder": ["resnet", "attn", "up"]}
    narrow = build("var", {"h": 4, "w": 4, "c": 2}, params)
    wide = build("var", {"h": 4, "w": 4, "c": 1920}, params)
    result = depth(wide, memory_budget=64 * 2**20)
    assert result.exact and size(wide).total > 10**9
    assert result.critical == scalar_depth(expand(narrow)) == depth(narrow).critical


# --- shared bodies (Builder.call) -----------------------------------------------------------------


def replay(b: Builder, graph, args: dict, weight) -> dict:
    """Build ``graph`` again on ``b``: its inputs named ``cat…`` become weights, the others arguments."""
    mapped = {}
    for node in graph.nodes:
        if node.prim == "input":
            mapped[node.id] = weight(node.name, node.shape) if node.name.startswith("cat") else args[node.name]
            continue
        mapped[node.id] = b.node(node.prim, [mapped[i] for i in node.inputs], node._name, **node.attrs)
    return {name: mapped[i] for name, i in graph.outputs.items()}


@st.composite
def callers(draw):
    """A graph calling a random body 1–4 times; each argument a fresh input, a previous result of its
    shape, or a tensor whose elements have different depths (part exp'd, or padded)."""
    body = draw(random_graphs())
    params = {n.name: n.shape for n in body.nodes if n.prim == "input" and not n.name.startswith("cat")}
    b = Builder(share=True)
    made: list = []
    for k in range(draw(st.integers(1, 4))):
        args = {}
        for name, shape in params.items():
            same = [t for t in made if t.shape == shape]
            how = draw(st.sampled_from(["fresh", "deep", "mixed", "padded"] + (["result"] * 3 if same else [])))
            fresh = b.input(f"a{k}_{name}", shape)
            if how == "result":
                args[name] = draw(st.sampled_from(same))
            elif how == "deep":
                args[name] = b.exp(fresh)
            elif how == "mixed" and shape and shape[0] > 1:
                args[name] = b.concat([b.sqrt(b.slice(fresh, 0, 0, 1)), b.slice(fresh, 0, 1, shape[0])], axis=0)
            elif how == "padded" and shape and shape[-1] > 1:
                args[name] = b.pad(b.exp(b.slice(fresh, len(shape) - 1, 1, shape[-1])), [(0, 0)] * (len(shape) - 1) + [(1, 0)])
            else:
                args[name] = fresh
        with b.scope(f"call{k}"):
            out = b.call("body", lambda sb, a, w: replay(sb, body, a, w), args, lambda n, s, k=k: b.input(f"w{k}.{n}", s, role="weight"))
        made.extend(out.values())
        last = out
    for i, (name, t) in enumerate(last.items()):
        b.output(f"out{i}", t)
    if draw(st.booleans()) and len(made) > len(last):
        b.output("early", made[0])
    return b.graph


def flat_elements(result, ids: dict, path: list, chain: tuple = ()) -> list:
    """A shared graph's witness (``_witness_path``, output end first) as (flat node, position) pairs."""
    from tc0sim.interp.depth.result import _Inside

    out = []
    for entry in path:
        if isinstance(entry, _Inside):
            out.extend(flat_elements(result, ids, entry.path, chain + (entry.call.id,)))
        else:
            node, position = entry
            out.append((ids[chain + (node.id,)], position))
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(callers())
def test_shared_bodies_give_the_depth_size_and_witnesses_of_the_flat_graph(graph):
    """A call's depth comes from one symbolic analysis of its body; it must equal the depth of the
    graph with every call inlined (and the dense oracle's), element by element, and every witness
    must be a path of scalar gates of the inlined graph's expansion."""
    assert graph.has_calls
    result = depth(graph)
    flat, ids = graph.flat_with_ids()
    assert not flat.has_calls
    dense_critical, dense_elements = dense_depth(flat)
    assert result.critical == depth(flat).critical == dense_critical
    for name, node_id in graph.outputs.items():
        assert result.element_depths(node_id) == dense_elements[flat.outputs[name]]
    assert size(graph).as_dict() == size(flat).as_dict()
    g = expand(flat)
    for crit in result.critical:
        witness = result.witness(crit)
        assert path_vector(witness) == crit
        assert [grp.operator for grp in result.witness_groups(crit)] == [grp.operator for grp in group_path(witness)]
        pairs = flat_elements(result, ids, result._witness_path(crit))[::-1]
        assert_scalar_path(flat, g, [(flat.node(i), position) for i, position in pairs])


def test_nested_bodies_and_the_scopes_of_a_witness():
    """A body that calls a body: depth, size and the witness's scope paths are those of the inlined graph."""

    def inner(b, a, w):
        with b.scope("inner"):
            return {"y": b.exp(b.add(a["x"], w("bias", a["x"].shape)))}

    def outer(b, a, w):
        h = b.sum(b.mul(a["x"], w("scale", a["x"].shape)), axis=1)
        for j in range(2):
            h = b.call("inner", inner, {"x": h}, lambda n, s, j=j: w(f"inner{j}.{n}", s))["y"]
        return {"y": b.sqrt(h)}

    b = Builder(share=True)
    x = b.input("x", (3, 4))
    weights = {}

    def weight(name, shape):
        if name not in weights:
            weights[name] = b.input(name, shape, role="weight")
        return weights[name]

    h = x
    for k in range(3):
        with b.scope(f"layer{k}"):
            h = b.call("outer", outer, {"x": b.broadcast(b.reshape(h, (3, 1)), (3, 4)) if k else h},
                       lambda n, s, k=k: weight(f"layer{k}.{n}", s))["y"]
    b.output("out", h)
    graph = b.graph
    flat = graph.flat()
    assert len(graph.nodes) < len(flat.nodes)
    result = depth(graph)
    assert result.critical == [v(d_std=9, d_sum=3, d_exp=6, d_sqrt=3)] == depth(flat).critical
    assert size(graph).as_dict() == size(flat).as_dict()
    assert size(graph).by_operator["layer1/inner"] == 12  # 2 inner calls, each 3 adds and 3 exps
    (crit,) = result.critical
    scopes = [n.scope_path for n in result.witness(crit)]
    assert scopes == [n.scope_path for n in depth(flat).witness(crit)]
    assert "layer2/inner" in scopes and "layer0" in scopes


def test_a_call_argument_no_used_result_reads_is_not_live():
    def body(b, a, w):
        return {"used": b.exp(a["x"]), "unused": b.sqrt(a["y"])}

    b = Builder(share=True)
    x, y = b.input("x", (2,)), b.input("y", (2,))
    out = b.call("body", body, {"x": x, "y": b.exp(y)}, lambda n, s: None)
    b.output("out", out["used"])
    live = {n.prim for n in b.graph.live()}
    assert "sqrt" not in {n.prim for n, _, _ in b.graph.occurrences()}
    assert size(b.graph).as_dict() == size(b.graph.flat()).as_dict()
    assert size(b.graph).total == 2 and depth(b.graph).critical == [v(d_exp=1)]
    assert live == {"input", "call", "result"}  # the exp feeding y is dead


def test_a_shared_body_counts_against_the_memory_budget():
    """A body's analysis has the caller's budget: refused with the body's node named, or (when
    asked) an upper bound that says it comes from inside the body."""
    inner = many_classes_graph(40)

    b = Builder(share=True)
    x = b.input("x", (1, 1))
    args = {name: b.exp(x) for name in inner.inputs}
    out = b.call("classes", lambda sb, a, w: replay(sb, inner, a, w), args, lambda n, s: None)
    b.output("out", out["out"])
    exact = depth(b.graph)
    assert exact.exact and exact.critical == [v(d_std=1, d_exp=40, d_sqrt=1)]
    with pytest.raises(DepthBudgetError, match=r"node \d+ \(add .*memory budget"):
        depth(b.graph, memory_budget=20_000)
    bound = depth(b.graph, memory_budget=20_000, allow_upper_bound=True)
    assert not bound.exact and any("in shared classes" in r for r in bound.inexact_reasons)
    assert all(any(leq(c, u) for u in bound.critical) for c in exact.critical)
