"""The depth interpreter's driver: worked depth vectors, the memory budget and upper bounds,
and a property test against the scalar expansion (networkx DP over gates) and the dense oracle."""

import networkx as nx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tc0sim.errors import DepthBudgetError, MissingRuleError
from tc0sim.interp.depth import DEPTH_RULES, depth
from tc0sim.interp.expand import expand, scalar_count, scalar_depth, scalar_depth_by_node, scalar_size
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder
from tc0sim.ir.primitives import EXP, SYMBOLS
from tc0sim.modelfile import load_model

from reference_depth_dense import dense_depth
from depth_cases import EXAMPLES, assert_canonical, assert_is_path, assert_scalar_path, many_classes_graph, path_vector, random_graphs, v


def test_matmul_depth_is_std_plus_sum():
    from tc0sim.ops.matmul import matmul

    b = Builder()
    b.output("out", matmul(b, b.input("X", (2, 3)), b.input("Y", (3, 4))))
    result = depth(b.graph)
    assert result.critical == [v(d_std=1, d_sum=1)]
    assert result.holds("d_std + d_sum")
    assert not result.holds("d_std")
    assert result.exact


def test_only_live_nodes_count():
    b = Builder()
    x = b.input("x", (2,))
    b.exp(b.exp(x))
    b.output("out", b.relu(x))
    assert depth(b.graph).critical == [v(d_std=1)]


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
    monkeypatch.delitem(DEPTH_RULES, EXP)
    with pytest.raises(MissingRuleError, match="depth.*exp"):
        depth(b.graph)


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
