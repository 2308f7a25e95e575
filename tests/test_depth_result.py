"""Depth results: witnesses of incomparable critical vectors, values at given symbols, paths
grouped by operator, JSON form, witnesses followed element by element through wiring."""

from fractions import Fraction

import pytest

from tc0sim.errors import ConfigError
from tc0sim.interp.depth import depth, depth_numeric
from tc0sim.ir.graph import Builder

from reference import depth_dict, report_dict
from depth_cases import assert_is_path, path_vector, two_branch_graph, v


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


def test_as_dict_is_json_ready():
    import json

    d = depth(two_branch_graph()).as_dict()
    assert json.loads(json.dumps(d))["critical"] == [
        report_dict(d_std=1, d_sum=0, d_prod=0, d_exp=2, d_sqrt=0),
        report_dict(d_std=1, d_sum=2, d_prod=0, d_exp=0, d_sqrt=0),
    ]


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
    assert [(n.prim.name, p) for n, p in elements] == [
        ("input", (2,)), ("exp", (2,)), ("pad", (5,)), ("slice", (2,)), ("gather", (0, 0)), ("relu", (0, 0))
    ]
    deep, shallow = [v(d_std=1, d_exp=1)], [v(d_std=1)]
    assert result.element_depths(out.node) == [deep, shallow, deep, deep]
