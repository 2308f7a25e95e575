"""Exact constants: the vectorised conversion against fractions.Fraction, element by element."""

from __future__ import annotations

import sys
from fractions import Fraction

import numpy as np
import pytest

from tc0sim.errors import GraphError
from tc0sim.ir.exact import ConstantCache, exact_array
from tc0sim.ir.graph import Builder

EDGE_FLOAT64 = [
    0.0,
    -0.0,
    5e-324,  # smallest subnormal
    -5e-324,
    2.2250738585072009e-308,  # largest subnormal
    2.2250738585072014e-308,  # smallest normal
    1.7976931348623157e308,  # largest finite
    -1.7976931348623157e308,
    2.0**1023,
    2.0**-1074 * 3,
    1 / 3,
    0.1,
    -2.5,
    1.0 + 2.0**-52,
    2.0**53 + 2,
]


def _oracle(values) -> list[Fraction]:
    """Fraction of each Python number: float -> its exact binary value, int -> itself."""
    return [Fraction(v) for v in values]


def test_float64_edge_cases_are_exact():
    arr = np.array(EDGE_FLOAT64, dtype=np.float64)
    got = exact_array(arr)
    assert got.dtype == object and got.shape == arr.shape
    assert got.tolist() == _oracle(EDGE_FLOAT64)
    assert all(type(v) is Fraction for v in got.tolist())
    assert got[1] == 0 and got[2] == Fraction(1, 2**1074)
    assert got[6] == Fraction((2**53 - 1) * 2**971)


def test_random_float64_bits_match_fraction_one_by_one():
    rng = np.random.default_rng(18)
    bits = rng.integers(0, 2**64, size=4000, dtype=np.uint64)
    arr = bits.view(np.float64)
    arr = arr[np.isfinite(arr)].reshape(-1, 8)[:300]
    got = exact_array(arr)
    assert got.shape == arr.shape
    assert got.reshape(-1).tolist() == [Fraction(float(v)) for v in arr.reshape(-1).tolist()]


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_narrow_floats_are_their_exact_values(dtype):
    info = np.finfo(dtype)
    values = np.array([info.tiny, info.smallest_subnormal, info.max, -info.max, -0.0, 0.1, 1 / 3], dtype=dtype)
    got = exact_array(values)
    # oracle: each value's exact rational from its own significand and exponent
    expected = []
    for v in values:
        m, e = np.frexp(v)
        num = int(np.ldexp(np.float64(m), 60))  # m has ≤ 24 significant bits: exact in float64 and int
        expected.append(Fraction(num) * Fraction(2) ** (int(e) - 60))
    assert got.tolist() == expected


def test_integers_of_every_width_are_exact():
    values = np.array([np.iinfo(np.int64).min, -1, 0, 7, np.iinfo(np.int64).max], dtype=np.int64)
    assert exact_array(values).tolist() == [Fraction(-(2**63)), -1, 0, 7, Fraction(2**63 - 1)]
    big = np.array([2**64 - 1], dtype=np.uint64)
    assert exact_array(big).tolist() == [Fraction(2**64 - 1)]
    assert exact_array(np.arange(6, dtype=np.int8).reshape(2, 3)).tolist() == [[0, 1, 2], [3, 4, 5]]


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_non_finite_is_refused(bad, dtype):
    with pytest.raises(GraphError, match="not a finite number"):
        exact_array(np.array([1.0, bad], dtype=dtype))
    with pytest.raises(GraphError, match="not a finite number"):
        Builder().constant(np.array([[bad]], dtype=dtype))


def test_lists_strings_and_fractions_take_the_element_path():
    got = exact_array([["1/3", 0.5], [Fraction(2, 7), 2**70]])
    assert got.tolist() == [[Fraction(1, 3), Fraction(1, 2)], [Fraction(2, 7), Fraction(2**70)]]
    fractions = np.array([Fraction(1, 3), Fraction(-5, 2)], dtype=object)
    assert exact_array(fractions).tolist() == [Fraction(1, 3), Fraction(-5, 2)]
    with pytest.raises(GraphError, match="not an exact number"):
        exact_array(["x"])
    with pytest.raises(GraphError, match="not a finite number"):
        exact_array([float("inf")])


def test_cache_shares_equal_content_only():
    cache = ConstantCache()
    a = cache.exact(np.array([0.1, 0.2]))
    assert cache.exact(np.array([0.1, 0.2])) is a
    assert not a.flags.writeable
    narrow = cache.exact(np.array([0.1, 0.2], dtype=np.float32))
    assert narrow is not a and narrow.tolist() != a.tolist()  # float32 0.1 is another rational
    assert cache.exact(np.array([[0.1, 0.2]])) is not a  # another shape
    assert cache.exact(0.1).tolist() == Fraction(0.1) and cache.exact(3).tolist() == Fraction(3)
    assert cache.exact(2**70).tolist() == Fraction(2**70)


def test_builder_constants_share_one_exact_array():
    b = Builder()
    table = np.sin(np.arange(12.0)).reshape(3, 4)
    first, second = b.constant(table), b.constant(table.copy())
    values = [b.graph.node(t.node).attrs["value"] for t in (first, second)]
    assert values[0] is values[1]
    assert values[0].tolist() == [[Fraction(v) for v in row] for row in table.tolist()]


def test_float_info_is_ieee_double():
    assert sys.float_info.mant_dig == 53  # the oracle above relies on Python floats being binary64


def test_a_lazy_constant_is_computed_only_when_evaluated():
    """Depth and size read a constant's shape only; evaluation computes the value once, exactly."""
    from tc0sim.interp.depth import depth
    from tc0sim.interp.evaluate import evaluate
    from tc0sim.interp.size import size

    calls = []

    def table():
        calls.append(1)
        return [Fraction(1, 3), Fraction(2, 3)]

    b = Builder()
    x = b.input("x", (2,))
    b.output("out", b.mul(x, b.lazy_constant((2,), table)))
    graph = b.graph
    assert size(graph).total == 2 and depth(graph).critical and not calls
    out = evaluate(graph, 53, {"x": [3, 3]}, values="float64")
    assert out["out"].tolist() == [1.0, 2.0] and calls == [1]
    evaluate(graph, 24, {"x": [3, 3]})
    assert calls == [1]
    bad = Builder()
    bad.output("out", bad.lazy_constant((3,), table))
    with pytest.raises(GraphError, match="lazy constant of shape"):
        evaluate(bad.graph, 24)
