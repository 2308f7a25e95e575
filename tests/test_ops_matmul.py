"""matmul (seed 004 Lemma 5.2, seed 002 Lemma 4.1): (XY)_ij = ⊕_k (X_ik · Y_kj), depth d_std + d_sum."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import reference as R
from tc0sim.errors import GraphError
from tc0sim.fp import Format
from tc0sim.interp.depth import depth
from tc0sim.interp.evaluate import evaluate
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder
from tc0sim.ir.vectors import vec
from tc0sim.kinds import build
from tc0sim.ops.matmul import matmul


@pytest.mark.parametrize("n1,d,n2,seed", [(1, 1, 1, 0), (3, 5, 2, 1), (4, 7, 6, 2)])
def test_float64_reference(n1: int, d: int, n2: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, y = R.random_array(rng, (n1, d)), R.random_array(rng, (d, n2), scale=3.0)
    out = evaluate(build("matmul", {"n1": n1, "d": d, "n2": n2}), 53, {"X": x, "Y": y})["out"]
    # bound: both results within γ_(d+1)·Σ_k |X_ik Y_kj| of the exact product
    ref = R.ref_matmul(x, y)
    assert ref.error.max() < 1e-13 * max(1.0, np.abs(ref.value).max())
    R.assert_within_bound(out, ref, Format(53).to_float64_array)


@pytest.mark.parametrize("p", [8, 11, 24])
def test_bit_identical_to_exact_rationals(p: int) -> None:
    rng = np.random.default_rng(p)
    x, y = R.random_array(rng, (3, 4)), R.random_array(rng, (4, 2))
    out = evaluate(build("matmul", {"n1": 3, "d": 4, "n2": 2}), p, {"X": x, "Y": y})["out"]
    ex = R.Exact(p)
    expected = ex.matmul(R.to_fractions(x, p), R.to_fractions(y, p))
    R.assert_bit_identical(out, expected, Format(p).to_fraction)


def test_one_rounding_per_sum_differs_from_sequential_rounding() -> None:
    # 1 + 2^-8 + 2^-8 at p = 8: one rounding of the exact sum gives 1 + 2^-7 (exact);
    # rounding after each addition would give 1 (1 + 2^-8 is a tie, rounded to the even 1, twice)
    x = np.array([[1.0, 2.0**-8, 2.0**-8]])
    y = np.ones((3, 1))
    out = evaluate(build("matmul", {"n1": 1, "d": 3, "n2": 1}), 8, {"X": x, "Y": y})["out"]
    assert Format(8).to_fraction(out[0, 0]) == 1 + Fraction(1, 128)


@pytest.mark.parametrize("n1,d,n2", [(1, 1, 1), (2, 3, 4), (5, 8, 3), (16, 16, 16)])
def test_size_and_depth(n1: int, d: int, n2: int) -> None:
    g = build("matmul", {"n1": n1, "d": d, "n2": n2})
    report = size(g)
    assert dict(report.by_primitive) == {"mul": n1 * d * n2, "sum": n1 * n2}
    assert report.total == n1 * d * n2 + n1 * n2
    assert report.max_fan_in["sum"] == d
    assert depth(g).critical == [vec(d_std=1, d_sum=1)]


def test_scope_names_the_lemma() -> None:
    g = build("matmul", {"n1": 2, "d": 2, "n2": 2})
    compute = [n for n in g.live() if n.prim.name in ("mul", "sum")]
    assert compute and all(n.scope[-1].name == "matmul" and "Lemma 5.2" in n.scope[-1].ref for n in compute)


def test_shape_mismatch_is_a_graph_error() -> None:
    b = Builder()
    x, y = b.input("X", (2, 3)), b.input("Y", (4, 2))
    with pytest.raises(GraphError, match=r"cannot multiply \(2, 3\) by \(4, 2\)"):
        matmul(b, x, y)
