"""Depth vectors: construction, order, Pareto maxima, formatting, and reading a claim (``as_vec``)."""

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tc0sim.errors import ConfigError
from tc0sim.ir.vectors import (
    add,
    as_vec,
    dot,
    fmt,
    from_dict,
    leq,
    pareto_max,
    to_dict,
    vec,
    zero,
)
from reference import depth_vector as V, report_dict


def test_vec_orders_counts_by_symbol():
    assert vec(d_std=1, d_sum=2, d_exp=3) == V(1, 2, 0, 3, 0)
    assert vec() == zero() == V(0, 0, 0, 0, 0)
    assert from_dict({"d_sqrt": 4}) == V(0, 0, 0, 0, 4)


def test_vec_rejects_unknown_symbol_and_negative_count():
    with pytest.raises(ConfigError, match="d_nope"):
        vec(d_nope=1)
    with pytest.raises(ConfigError):
        vec(d_std=-1)


def test_to_dict_omits_zeros_unless_full():
    v = V(2, 0, 0, 1, 0)
    assert to_dict(v) == {"d_std": 2, "d_exp": 1}
    assert to_dict(v, full=True) == report_dict(d_std=2, d_sum=0, d_prod=0, d_exp=1, d_sqrt=0)
    assert from_dict(to_dict(v)) == v


def test_add_and_leq_are_componentwise():
    assert add(V(1, 2, 0, 0, 0), V(0, 1, 0, 1, 0)) == V(1, 3, 0, 1, 0)
    assert leq(V(1, 1, 0, 0, 0), V(1, 2, 0, 0, 0))
    assert not leq(V(0, 0, 0, 1, 0), V(5, 5, 5, 0, 5))
    assert not leq(V(5, 5, 5, 0, 5), V(0, 0, 0, 1, 0))


def test_pareto_max_keeps_incomparable_and_drops_dominated():
    a, b = V(2, 1, 0, 1, 0), V(1, 3, 0, 0, 0)
    dominated = V(1, 1, 0, 0, 0)
    assert pareto_max([dominated, a, b, a]) == sorted([a, b])
    assert pareto_max([]) == []
    assert pareto_max([zero()]) == [zero()]


def test_fmt():
    assert fmt(V(3, 3, 0, 1, 0)) == "3 d_std + 3 d_sum + d_exp"
    assert fmt(zero()) == "0"
    assert fmt(V(0, 0, 0, 0, 2)) == "2 d_sqrt"


def test_dot_weights_each_symbol():
    assert dot(V(3, 3, 0, 1, 0), {"d_std": 1, "d_sum": 2, "d_exp": 10}) == 3 + 6 + 10
    assert dot(V(1, 0, 0, 0, 0), {"d_std": Fraction(1, 3)}) == Fraction(1, 3)
    with pytest.raises(ConfigError, match="d_exp"):
        dot(V(0, 0, 0, 1, 0), {"d_std": 1})
    with pytest.raises(ConfigError, match="d_bad"):
        dot(V(1, 0, 0, 0, 0), {"d_std": 1, "d_bad": 2})


def test_as_vec_accepts_vec_dict_and_text():
    assert as_vec(V(1, 2, 3, 4, 5)) == V(1, 2, 3, 4, 5)
    assert as_vec({"d_sum": 2}) == V(0, 2, 0, 0, 0)
    assert as_vec("2 d_sum") == V(0, 2, 0, 0, 0)
    with pytest.raises(ConfigError):
        as_vec((1, 2))


def _brute_maximal(vectors):
    distinct = set(vectors)
    return sorted(v for v in distinct if not any(v != w and all(a <= b for a, b in zip(v, w)) for w in distinct))


_rows = st.lists(st.tuples(*[st.integers(0, 3)] * 4), min_size=0, max_size=60)


@settings(max_examples=300, deadline=None)
@given(_rows, st.integers(1, 8))
def test_numpy_pareto_filter_equals_the_definition(vectors, block):
    """The numpy filter (blocks of rows in order of decreasing sum) against the definition, with
    duplicates, entries constant in every vector, blocks of every size and sets above and below the
    numpy threshold of ``maximal``."""
    import numpy as np

    from tc0sim.ir.vectors import maximal, maximal_rows

    assert maximal(set(vectors)) == _brute_maximal(vectors)
    if vectors:
        assert sorted(set(map(tuple, maximal_rows(np.array(vectors), block).tolist()))) == _brute_maximal(vectors)


def test_a_full_dict_names_a_quiet_symbol_only_where_it_counts():
    # d_log and d_trig (log, sin, cos: traced models only) stay out of circuits that never use them
    assert to_dict(vec(d_std=1), full=True) == {"d_std": 1, "d_sum": 0, "d_prod": 0, "d_exp": 0, "d_sqrt": 0, "d_erf": 0}
    assert to_dict(vec(d_log=2), full=True) == {"d_std": 0, "d_sum": 0, "d_prod": 0, "d_exp": 0, "d_sqrt": 0, "d_erf": 0, "d_log": 2}
    assert to_dict(vec(d_std=1), full=True, also={"d_trig"}) == {**report_dict(d_std=1), "d_trig": 0}


def test_a_depth_report_names_a_quiet_symbol_in_every_vector_once_one_uses_it():
    from tc0sim.interp.depth import depth
    from tc0sim.ir.graph import Builder

    b = Builder()
    x = b.input("x", (2,))
    b.output("a", b.sin(x))
    b.output("b", b.exp(x))
    data = depth(b.graph).as_dict()
    # two incomparable paths, one sin (d_trig) and one exp (d_exp); no log anywhere
    assert sorted(data["critical"], key=lambda d: d["d_exp"]) == [report_dict(d_trig=1), report_dict(d_exp=1) | {"d_trig": 0}]
    assert data["per_symbol"] == report_dict(d_exp=1, d_trig=1)
