"""ffn (seed 002 Definition B.7 / Lemma 4.5 / Lemma C.2): H = relu(X W1 + b1); out = X + (H W2 + b2),
depth 6d_std + 2d_sum."""

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
from tc0sim.ops.ffn import ffn

CLAIM = vec(d_std=6, d_sum=2)  # FlowAR Lemma 4.5 / C.2


def _inputs(n: int, c: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {"X": R.random_array(rng, (n, c))}
    out.update({name: R.random_array(rng, (c, c)) for name in ("W1", "W2")})
    out.update({name: R.random_array(rng, (c,)) for name in ("b1", "b2")})
    return out


@pytest.mark.parametrize("n,c,seed", [(1, 1, 0), (3, 4, 1), (6, 5, 2)])
def test_float64_reference(n: int, c: int, seed: int) -> None:
    inputs = _inputs(n, c, seed)
    out = evaluate(build("ffn", {"n": n, "c": c}), 53, inputs)["out"]
    # bound: running error bound through mlp, relu (exact, 1-Lipschitz), mlp and the residual add
    ref = R.ref_ffn(inputs["X"], inputs["W1"], inputs["W2"], inputs["b1"], inputs["b2"])
    assert ref.error.max() < 1e-13
    R.assert_within_bound(out, ref, Format(53).to_float64_array)


@pytest.mark.parametrize("p", [8, 11, 24])
def test_bit_identical_to_exact_rationals(p: int) -> None:
    inputs = _inputs(3, 3, p)
    out = evaluate(build("ffn", {"n": 3, "c": 3}), p, inputs)["out"]
    ex = R.exact_inputs(inputs, p)
    expected = R.exact_ffn(ex["X"], ex["W1"], ex["W2"], ex["b1"], ex["b2"], p)
    R.assert_bit_identical(out, expected, Format(p).to_fraction)


def test_relu_cuts_negative_hidden_units() -> None:
    # W1 = −I, b1 = 0: H = relu(−X); W2 = I, b2 = 0: out = X + relu(−X) = max(X, 0)
    x = np.array([[1.5, -2.0, 0.25]])
    inputs = {"X": x, "W1": -np.eye(3), "W2": np.eye(3), "b1": np.zeros(3), "b2": np.zeros(3)}
    out = Format(53).to_float64_array(evaluate(build("ffn", {"n": 1, "c": 3}), 53, inputs)["out"])
    assert out.tolist() == [[1.5, 0.0, 0.25]]


@pytest.mark.parametrize("n,c", [(1, 1), (2, 3), (8, 4), (16, 8)])
def test_size_and_depth(n: int, c: int) -> None:
    g = build("ffn", {"n": n, "c": c})
    report = size(g)
    # two matmuls (n c² products, n c sums each), two bias adds and the residual add (n c each), one relu
    assert dict(report.by_primitive) == {"mul": 2 * n * c * c, "sum": 2 * n * c, "add": 3 * n * c, "relu": n * c}
    result = depth(g)
    assert result.critical == [CLAIM]
    assert result.holds(CLAIM)


def test_weight_shape_mismatch_is_a_graph_error() -> None:
    b = Builder()
    x = b.input("X", (2, 3))
    w, bias = b.input("W", (3, 3)), b.input("b", (3,))
    with pytest.raises(GraphError, match=r"W2 must have shape \(3, 3\)"):
        ffn(b, x, w, b.input("W2", (3, 4)), bias, bias)
    with pytest.raises(GraphError, match=r"bias must have shape \(3,\)"):
        ffn(b, x, w, w, b.input("b1", (4,)), bias)
