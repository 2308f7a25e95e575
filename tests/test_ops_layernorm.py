"""layernorm (seed 004 Definition 4.7 / Lemma 5.5, seed 002 Definition B.8 / Lemma C.4): μ = (⊕X)/c; Δ = X − μ;
σ² = (⊕ Δ·Δ)/c; out = Δ / √σ² (no ε, no affine), depth 5d_std + 2d_sum + d_sqrt."""

from __future__ import annotations

import numpy as np
import pytest

import reference as R
from tc0sim.errors import GraphError
from tc0sim.fp import DivisionByZero, Format
from tc0sim.interp.depth import depth
from tc0sim.interp.evaluate import evaluate
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder
from tc0sim.ir.vectors import vec
from tc0sim.kinds import build
from tc0sim.ops.layernorm import layernorm

CLAIM = vec(d_std=5, d_sum=2, d_sqrt=1)  # VAR Lemma 5.5, FlowAR Lemma 4.7 / C.4


@pytest.mark.parametrize("n,c,seed", [(1, 2, 0), (3, 4, 1), (5, 7, 2)])
def test_float64_reference(n: int, c: int, seed: int) -> None:
    x = R.random_array(np.random.default_rng(seed), (n, c), scale=3.0)
    out = evaluate(build("layernorm", {"n": n, "c": c}), 53, {"X": x})["out"]
    # bound: running error bound through ⊕/c, the subtraction, the squares, ⊕/c, √ and the division
    ref = R.ref_layernorm(x)
    assert ref.error.max() < 1e-13
    R.assert_within_bound(out, ref, Format(53).to_float64_array)


def test_matches_torch_layer_norm_without_epsilon() -> None:
    torch = pytest.importorskip("torch")
    x = R.random_array(np.random.default_rng(3), (4, 6))
    out = Format(53).to_float64_array(evaluate(build("layernorm", {"n": 4, "c": 6}), 53, {"X": x})["out"])
    expected = torch.nn.functional.layer_norm(torch.from_numpy(x), (6,), eps=0.0).numpy()
    # both are (X − μ)/σ computed with a handful of roundings: a relative 64u of the row's max |out|
    assert np.abs(out - expected).max() <= 64 * R.U64 * np.abs(expected).max()


@pytest.mark.parametrize("p", [8, 11, 24])
def test_bit_identical_to_exact_rationals(p: int) -> None:
    x = R.random_array(np.random.default_rng(p), (3, 5))
    out = evaluate(build("layernorm", {"n": 3, "c": 5}), p, {"X": x})["out"]
    R.assert_bit_identical(out, R.exact_layernorm(R.to_fractions(x, p), p), Format(p).to_fraction)


def test_constant_row_divides_by_zero() -> None:
    # σ² = 0 for a constant row: the paper's LN has no ε, so Δ / √0 is a division by zero
    x = np.array([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]])
    with pytest.raises(DivisionByZero, match="layernorm"):
        evaluate(build("layernorm", {"n": 2, "c": 3}), 24, {"X": x})


@pytest.mark.parametrize("n,c", [(1, 1), (2, 3), (8, 16), (5, 7)])
def test_size_and_depth(n: int, c: int) -> None:
    g = build("layernorm", {"n": n, "c": c})
    report = size(g)
    # ⊕X and ⊕Δ² (2n sums); μ and σ² divisions (2n) and Δ/√σ² (n c); Δ (n c subs); Δ·Δ (n c); √ (n)
    assert dict(report.by_primitive) == {"sum": 2 * n, "div": 2 * n + n * c, "sub": n * c, "mul": n * c, "sqrt": n}
    result = depth(g)
    assert result.critical == [CLAIM]
    assert result.holds(CLAIM)


def test_bad_input_shape_is_a_graph_error() -> None:
    b = Builder()
    with pytest.raises(GraphError, match=r"expected X\[n, c\]"):
        layernorm(b, b.input("X", (2, 3, 4)))
