"""Fast FlowAR (seed 002 Definitions 5.3, 5.4; Lemmas 5.6, 5.7): FlowAR with AAttC for every attention.

Oracles: tests/reference_models.py (float64 and exact-rational implementations, AAttC as the degree-g
Taylor polynomial of exp factored through monomial features), the direct Taylor formula
Σ_j ⟨q,k⟩^j / j! for that factorization, the FlowAR model itself for the error of Lemma 5.7, the scalar
expansion for the depth and finite differences for the size.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

import reference_models as RM
from tc0sim.errors import ConfigError
from tc0sim.interp.depth import depth
from tc0sim.interp.evaluate import evaluate
from tc0sim.interp.expand import expand, scalar_depth
from tc0sim.interp.size import size
from tc0sim.kinds import build


# Same argument as for FlowAR (tests/test_models_flowar.py): a few units of 2^-53 per primitive on
# ~80-primitive paths, no amplification at input scale 0.4 (the Taylor denominators U1 (U2ᵀ 1) are
# sums of P_g(s) ≥ 1/2 for even g, so the division is well conditioned); measured ~1e-14.
TOLERANCE = 1e-9
SCALE = 0.4


def _reference(values: dict, arith, dims: dict, params: dict) -> dict:
    full = {"K": 2, "a": 2, "t": "1/2", "flow": "linear", "layers": 1, "mode": "inference", "g": 2, **params}
    times = full["t"] if isinstance(full["t"], list) else [full["t"]] * full["K"]
    return RM.flowar_reference(
        values, arith, dims["h"], dims["w"], full["K"], full["a"], [Fraction(str(t)) for t in times],
        full["flow"], full["layers"], full["mode"], degree=full["g"],
    )


@pytest.mark.parametrize(
    "dims, params",
    [
        ({"h": 4, "w": 4, "c": 2}, {}),
        ({"h": 4, "w": 4, "c": 3}, {"g": 3, "flow": "bezier", "t": ["1/4", "2/3"]}),
        ({"h": 8, "w": 4, "c": 2}, {"K": 3, "g": 4, "mode": "training", "layers": 2}),
    ],
)
def test_p53_evaluation_matches_float64_reference(dims: dict, params: dict) -> None:
    graph = build("fast_flowar", dims, params)
    values = RM.draw_inputs(RM.input_shapes(graph), seed=17, scale=SCALE)
    got = evaluate(graph, 53, inputs=values)
    want = _reference(values, RM.Float64(), dims, params)
    assert set(got) == set(want)
    for name in got:
        assert RM.normwise_error(got[name], want[name]) < TOLERANCE, name


@pytest.mark.parametrize("p, params", [(11, {"g": 2}), (24, {"g": 3, "flow": "bezier"})])
def test_low_precision_is_bit_identical_to_rounded_rational_oracle(p: int, params: dict) -> None:
    dims = {"h": 2, "w": 2, "c": 2}
    graph = build("fast_flowar", dims, params)
    values = RM.draw_inputs(RM.input_shapes(graph), seed=19, scale=SCALE)
    got = evaluate(graph, p, inputs=values)
    want = _reference(values, RM.Rational(p), dims, params)
    for name in got:
        assert (RM.as_fractions(got[name]) == want[name]).all(), name


def test_reference_factorization_equals_the_taylor_polynomial_of_exp() -> None:
    """The reference's ⟨φ1(q), φ2(k)⟩ form equals Σ_{j≤g} ⟨q,k⟩^j / j! (Definition 5.1's polynomial)."""
    rng = np.random.default_rng(2)
    x, w_q, w_k, w_v = (rng.standard_normal(s) * 0.5 for s in ((6, 3), (3, 3), (3, 3), (3, 3)))
    for g in (1, 2, 4):
        scores = (x @ w_q) @ (x @ w_k).T
        weights = sum(scores**j / math.factorial(j) for j in range(g + 1))
        direct = (weights @ (x @ w_v)) / weights.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(RM.Ops(RM.Float64()).taylor_attention(x, w_q, w_k, w_v, g), direct, rtol=1e-12)


def test_outputs_approach_flowar_as_the_degree_grows() -> None:
    """Lemma 5.7: fast FlowAR approximates FlowAR. Both kinds take the same named inputs, so the same
    values feed both; the ℓ∞ gap shrinks as the Taylor degree g grows (scores |s| ≪ 1 here)."""
    dims = {"h": 4, "w": 4, "c": 2}
    exact_graph = build("flowar", dims, {})
    values = RM.draw_inputs(RM.input_shapes(exact_graph), seed=23, scale=0.3)
    exact = np.vectorize(float)(evaluate(exact_graph, 53, inputs=values)["out"])
    gaps = []
    for g in (1, 2, 4, 6):
        graph = build("fast_flowar", dims, {"g": g})
        assert set(graph.inputs) == set(exact_graph.inputs)
        approx = np.vectorize(float)(evaluate(graph, 53, inputs=values)["out"])
        gaps.append(float(np.max(np.abs(approx - exact))))
    assert gaps == sorted(gaps, reverse=True) and gaps[0] > 0
    assert gaps[-1] < 1e-8


def test_depth_is_the_same_at_three_sizes_and_equals_the_scalar_expansion() -> None:
    params = {"K": 2, "g": 2}
    criticals = [depth(build("fast_flowar", {"h": n, "w": n, "c": c}, params)).critical for n, c in ((2, 2), (4, 3), (8, 4))]
    assert criticals[0] == criticals[1] == criticals[2]
    assert scalar_depth(expand(build("fast_flowar", {"h": 2, "w": 2, "c": 2}, params))) == criticals[0]


def test_no_exp_remains_and_the_monomials_add_product_depth() -> None:
    """Every attention is replaced: no exp gate is left; degree g ≥ 2 monomials are ⊗ gates."""
    graph = build("fast_flowar", {"h": 4, "w": 4, "c": 2}, {"g": 2})
    by_primitive = size(graph).by_primitive
    assert by_primitive["exp"] == 0 and by_primitive["prod"] > 0
    per_symbol = depth(graph).per_symbol
    assert per_symbol["d_exp"] == 0 and per_symbol["d_prod"] > 0
    assert depth(build("fast_flowar", {"h": 4, "w": 4, "c": 2}, {"g": 1})).per_symbol["d_prod"] == 0


def test_size_is_quadratic_in_n_where_flowar_is_quartic() -> None:
    """Lemmas 5.5/5.6: with c fixed, AAttC never forms the n_tokens × n_tokens matrix, so the size is a
    degree-2 polynomial in h = w = n (3rd finite differences vanish), against degree 4 for FlowAR."""
    totals = [Fraction(size(build("fast_flowar", {"h": n, "w": n, "c": 2}, {"K": 2})).total) for n in range(2, 14, 2)]
    for order in range(1, 4):
        totals = [b - a for a, b in zip(totals, totals[1:])]
        if order == 2:
            assert all(d == totals[0] != 0 for d in totals)
    assert totals == [0, 0, 0]
    n = 24
    assert size(build("fast_flowar", {"h": n, "w": n, "c": 2}, {})).total * 20 < size(build("flowar", {"h": n, "w": n, "c": 2}, {})).total


@pytest.mark.parametrize(
    "dims, params, message",
    [
        ({"h": 4, "w": 4, "c": 2}, {"g": 0}, r"fast_flowar: param 'g': degree g=0 must be ≥ 1"),
        ({"h": 4, "w": 4, "c": 2}, {"g": 1.5}, r"fast_flowar: param 'g': degree g=1.5 must be ≥ 1"),
        ({"h": 4, "w": 4, "c": 2}, {"g": True}, r"fast_flowar: param 'g'"),
        ({"h": 6, "w": 8, "c": 2}, {"K": 3}, r"fast_flowar: the coarsest factor .* does not divide h = 6"),
        ({"h": 4, "w": 4, "c": 2}, {"t": 2}, r"fast_flowar: flow time t_1: .*outside \[0, 1\]"),
        ({"h": 4, "w": 4, "c": 2}, {"flow": "cubic"}, r"fast_flowar: unknown flow type 'cubic'"),
    ],
)
def test_config_errors(dims: dict, params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build("fast_flowar", dims, params)
