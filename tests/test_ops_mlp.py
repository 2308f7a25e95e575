"""mlp (seed 004 Definition 4.6 / Lemma 5.4, seed 002 Definition B.6 / Lemma C.1): X W then + b, depth 2d_std + d_sum."""

from __future__ import annotations

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
from tc0sim.ops.mlp import mlp


def _inputs(n: int, c: int, d: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"X": R.random_array(rng, (n, c)), "W": R.random_array(rng, (c, d)), "b": R.random_array(rng, (d,))}


@pytest.mark.parametrize("n,c,d,seed", [(1, 1, 1, 0), (3, 4, 2, 1), (5, 6, 7, 2)])
def test_float64_reference(n: int, c: int, d: int, seed: int) -> None:
    inputs = _inputs(n, c, d, seed)
    out = evaluate(build("mlp", {"n": n, "c": c, "d": d}), 53, inputs)["out"]
    # bound: γ_(c+1)·Σ_k|X_ik W_kj| for X W, then + b adds e + γ_1·(|XW| + |b| + e)
    ref = R.ref_mlp(inputs["X"], inputs["W"], inputs["b"])
    assert ref.error.max() < 1e-13
    R.assert_within_bound(out, ref, Format(53).to_float64_array)


@pytest.mark.parametrize("p", [8, 11, 24])
def test_bit_identical_to_exact_rationals(p: int) -> None:
    inputs = _inputs(3, 4, 2, p)
    out = evaluate(build("mlp", {"n": 3, "c": 4, "d": 2}), p, inputs)["out"]
    ex = R.exact_inputs(inputs, p)
    R.assert_bit_identical(out, R.exact_mlp(ex["X"], ex["W"], ex["b"], p), Format(p).to_fraction)


def test_bias_is_added_after_the_rounded_product() -> None:
    # p = 8: X W = 1 + 2^-8 rounds (tie, to even) to 1, then + 2^-8 is again a tie and rounds to 1;
    # adding the bias inside the ⊕ would give 1 + 2^-7 exactly
    inputs = {"X": np.array([[1.0, 2.0**-8]]), "W": np.array([[1.0], [1.0]]), "b": np.array([2.0**-8])}
    out = evaluate(build("mlp", {"n": 1, "c": 2, "d": 1}), 8, inputs)["out"]
    assert Format(8).to_fraction(out[0, 0]) == 1


@pytest.mark.parametrize("n,c,d", [(1, 1, 1), (2, 3, 4), (8, 5, 6), (16, 16, 32)])
def test_size_and_depth(n: int, c: int, d: int) -> None:
    g = build("mlp", {"n": n, "c": c, "d": d})
    report = size(g)
    # X W: n c d products and n d sums of fan-in c; + b: n d adds
    assert dict(report.by_primitive) == {"mul": n * c * d, "sum": n * d, "add": n * d}
    assert report.total == n * c * d + 2 * n * d
    assert dict(report.by_operator) == {"mlp/matmul": n * c * d + n * d, "mlp": n * d}
    assert depth(g).critical == [vec(d_std=2, d_sum=1)]


def test_shape_mismatches_are_graph_errors() -> None:
    b = Builder()
    x, w = b.input("X", (2, 3)), b.input("W", (3, 4))
    with pytest.raises(GraphError, match=r"bias must have shape \(4,\)"):
        mlp(b, x, w, b.input("b", (3,)))
    with pytest.raises(GraphError, match="cannot multiply"):
        mlp(b, x, b.input("W2", (2, 4)), b.input("b2", (4,)))
