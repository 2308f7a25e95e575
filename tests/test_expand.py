"""The scalar expansion: one networkx node per gate, wiring resolved into edges, refusal above the limit."""

import networkx as nx
import numpy as np
import pytest

from tc0sim.errors import ExpansionLimitError, MissingRuleError
from tc0sim.interp.expand import EXPAND_RULES, expand, scalar_depth, scalar_size
from tc0sim.ir.graph import Builder
from tc0sim.ir.primitives import SQRT
from tc0sim.ops.matmul import matmul
from reference import depth_vector as V


def by_tensor(g: nx.DiGraph, tensor_id: int) -> list[int]:
    """Scalar nodes of one tensor node, in row-major element order."""
    return sorted(n for n, t in g.nodes(data="tensor") if t == tensor_id)


def test_matmul_gates_read_the_right_elements():
    b = Builder()
    x, y = b.input("X", (2, 3)), b.input("Y", (3, 4))
    out = matmul(b, x, y)
    b.output("out", out)
    g = expand(b.graph)
    xs = np.array(by_tensor(g, x.node)).reshape(2, 3)
    ys = np.array(by_tensor(g, y.node)).reshape(3, 4)
    sums = np.array(by_tensor(g, out.node)).reshape(2, 4)
    assert scalar_size(g) == {"mul": 2 * 3 * 4, "sum": 2 * 4}
    assert g.number_of_nodes() == 6 + 12 + 24 + 8
    for i in range(2):
        for j in range(4):
            products = set(g.predecessors(int(sums[i, j])))
            assert len(products) == 3
            read = {frozenset(g.predecessors(p)) for p in products}
            assert read == {frozenset({int(xs[i, k]), int(ys[k, j])}) for k in range(3)}
            assert g.nodes[int(sums[i, j])]["output"] is True
            assert g.nodes[int(sums[i, j])]["scope"] == "matmul"
    assert all(g.nodes[int(n)]["kind"] == "source" for n in xs.reshape(-1))
    assert g.graph["outputs"]["out"] == sums.reshape(-1).tolist()
    assert scalar_depth(g) == [V(1, 1, 0, 0, 0)]


def test_wiring_becomes_edges_and_pad_zeros_share_one_source():
    b = Builder()
    x = b.input("x", (2, 2))
    t = b.transpose(x, (1, 0))
    padded = b.pad(b.neg(t), [(1, 0), (0, 1)])  # 3x3, zeros in row 0 and column 2
    out = b.relu(padded)
    b.output("out", out)
    g = expand(b.graph)
    xs = np.array(by_tensor(g, x.node)).reshape(2, 2)
    relus = np.array(by_tensor(g, out.node)).reshape(3, 3)
    zeros = [n for n, d in g.nodes(data=True) if d["kind"] == "source" and d["prim"] == "constant"]
    assert len(zeros) == 1
    for i in range(3):
        for j in range(3):
            (pred,) = g.predecessors(int(relus[i, j]))
            expected = zeros[0] if i == 0 or j == 2 else int(xs[j, i - 1])
            assert pred == expected
    assert not any(d["prim"] in ("transpose", "neg", "pad") for _, d in g.nodes(data=True))


def test_concat_gather_slice_broadcast_edges():
    b = Builder()
    x, y = b.input("x", (2,)), b.input("y", (1,))
    c = b.concat([x, b.broadcast(y, (3,))], axis=0)  # x0 x1 y y y
    picked = b.gather(b.slice(c, 0, 1, 5, 2), [1, 0, 1], axis=0)  # slice -> x1, y ; gather -> y x1 y
    out = b.exp(picked)
    b.output("out", out)
    g = expand(b.graph)
    (x0, x1), (y0,) = by_tensor(g, x.node), by_tensor(g, y.node)
    gates = by_tensor(g, out.node)
    assert [list(g.predecessors(n)) for n in gates] == [[y0], [x1], [y0]]
    assert g.out_degree(x0) == 0


def test_duplicate_operands_merge_into_one_edge():
    b = Builder()
    x = b.input("x", (3,))
    b.output("sq", b.mul(x, x))
    g = expand(b.graph)
    assert g.number_of_edges() == 3
    assert scalar_size(g) == {"mul": 3}


def test_refuses_oversize_before_allocating():
    b = Builder()
    b.output("out", matmul(b, b.input("X", (100, 100)), b.input("Y", (100, 100))))
    with pytest.raises(ExpansionLimitError) as info:
        expand(b.graph, max_gates=1000)
    message = str(info.value)
    assert "1010000 gates" in message and "1000" in message


def test_dead_nodes_are_not_expanded():
    b = Builder()
    x = b.input("x", (2,))
    b.exp(x)
    b.output("out", b.relu(x))
    assert scalar_size(expand(b.graph)) == {"relu": 2}


def test_missing_rule_is_an_error(monkeypatch):
    b = Builder()
    b.output("out", b.sqrt(b.input("x", (2,))))
    monkeypatch.delitem(EXPAND_RULES, SQRT)
    with pytest.raises(MissingRuleError, match="expand.*sqrt"):
        expand(b.graph)


def test_edges_carry_no_attributes_and_graph_copies():
    b = Builder()
    x = b.input("x", (2,))
    b.output("out", b.exp(x))
    g = expand(b.graph)
    u, v = next(iter(g.edges))
    with pytest.raises(TypeError):
        g.edges[u, v]["weight"] = 1
    h = g.copy()
    h.edges[u, v]["weight"] = 1
    assert h.edges[u, v]["weight"] == 1 and "weight" not in g.edges[u, v]
    assert nx.is_directed_acyclic_graph(g) and g.reverse().number_of_edges() == 2


def test_scalar_depth_on_a_hand_built_scalar_graph():
    g = nx.DiGraph()
    g.add_node("a", symbol="")
    g.add_node("e", symbol="d_exp")
    g.add_node("s1", symbol="d_sum")
    g.add_node("s2", symbol="d_sum")
    g.add_node("m", symbol="d_std")
    g.add_edges_from([("a", "e"), ("a", "s1"), ("s1", "s2"), ("e", "m"), ("s2", "m")])
    assert scalar_depth(g) == sorted([V(1, 0, 0, 1, 0), V(1, 2, 0, 0, 0)])
