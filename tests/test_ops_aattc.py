"""Tests of aattc, approximate attention (seed 002 Definition 5.1 / Lemma 5.2, Alman & Song 2023)."""

from __future__ import annotations

import math

import networkx as nx
import numpy as np
import pytest

from reference_flow import aattc_exact, aattc_ref, softmax_attention_ref
from tc0sim.errors import ConfigError, GraphError
from tc0sim.fp import Format
from tc0sim.interp.depth import depth
from tc0sim.interp.evaluate import evaluate
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder
from tc0sim.ir.vectors import vec
from tc0sim.kinds import build
from tc0sim.ops.aattc import aattc, aattc_error_bound, feature_rank


def _data(n: int, d: int, seed: int, x_scale: float = 1.0, w_scale: float = 1.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "X": rng.standard_normal((n, d)) * x_scale,
        "W_Q": rng.standard_normal((d, d)) * w_scale,
        "W_K": rng.standard_normal((d, d)) * w_scale,
        "W_V": rng.standard_normal((d, d)) * w_scale,
    }


def _run(n: int, d: int, g: int, p: int, data: dict[str, np.ndarray]) -> np.ndarray:
    return evaluate(build("aattc", {"n": n, "d": d}, {"g": g}), p, inputs=data)["out"]


def _lagrange_bound(B: float, g: int, vmax: float) -> float:
    """The test's own derivation: |e^s − P_g(s)| ≤ e^B B^(g+1)/(g+1)! for |s| ≤ B, i.e. relative
    error ε ≤ e^(2B) B^(g+1)/(g+1)! per weight; normalising rows of weights with relative errors
    δ_j, |δ_j| ≤ ε, moves the output by Σ_j w_j (δ_j − δ̄)/(1 + δ̄) v_j, at most 2ε/(1−ε)·max|v|."""
    eps = math.e ** (2 * B) * B ** (g + 1) / math.gamma(g + 2)
    return 2 * eps / (1 - eps) * vmax if eps < 1 else math.inf


# --- evaluation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("g", [1, 2, 3])
def test_p53_matches_float64_reference_within_derived_bound(g):
    n, d = 5, 3
    data = _data(n, d, seed=10 + g, x_scale=0.7, w_scale=0.7)
    out = Format(53).to_float64_array(_run(n, d, g, 53, data))
    ref = aattc_ref(data["X"], data["W_Q"], data["W_K"], data["W_V"], g)
    # The reference forms P_g(QKᵀ) explicitly (no feature maps); its running error bound also
    # bounds the circuit's rounding error (one rounding per primitive, at the same values).
    assert np.all(np.abs(out - ref.value) <= 2 * ref.err)
    assert np.max(ref.err) < 1e-12


def test_exact_rational_evaluation_p24():
    n, d, g, p = 3, 2, 2, 24
    data = _data(n, d, seed=20)
    got = np.frompyfunc(Format(p).to_fraction, 1, 1)(_run(n, d, g, p, data))
    want = aattc_exact(data["X"], data["W_Q"], data["W_K"], data["W_V"], g, p)
    assert got.shape == (n, d)
    assert all(a == b for a, b in zip(got.ravel(), want.ravel()))


@pytest.mark.parametrize("p", [8, 11])
def test_exact_rational_evaluation_low_precision(p):
    """g = 3 needs 1/3! = 1/6, not representable: the lowering rounds the constant once and
    multiplies. On this instance dividing by α! instead gives different bits, so the comparison
    also pins the order of the feature scaling."""
    n, d, g = 3, 2, 3
    data = _data(n, d, seed=22, x_scale=0.5)
    got = np.frompyfunc(Format(p).to_fraction, 1, 1)(_run(n, d, g, p, data))
    args = (data["X"], data["W_Q"], data["W_K"], data["W_V"], g, p)
    want = aattc_exact(*args)
    assert all(a == b for a, b in zip(got.ravel(), want.ravel()))
    divided = aattc_exact(*args, divide_by_factorial=True)
    assert any(a != b for a, b in zip(got.ravel(), divided.ravel()))


def test_error_vs_exact_attention_within_bound_and_shrinking_with_g():
    n, d = 6, 3
    data = _data(n, d, seed=30, x_scale=0.35, w_scale=0.6)
    x, w_q, w_k, w_v = data["X"], data["W_Q"], data["W_K"], data["W_V"]
    exact = softmax_attention_ref(x, w_q, w_k, w_v)
    scores = ((x @ w_q) @ (x @ w_k).T)
    values = x @ w_v
    # Safe upper bounds of the exact scores and values from the float64 ones (relative slack
    # far above float64 rounding at these sizes).
    B = float(np.max(np.abs(scores))) * (1 + 1e-12)
    vmax = float(np.max(np.abs(values))) * (1 + 1e-12)
    assert 0.3 < B < 0.7  # ε_1 < 1 so every degree has a finite bound
    errors, bounds = [], []
    for g in range(1, 7):
        out = Format(53).to_float64_array(_run(n, d, g, 53, data))
        approx_math = aattc_ref(x, w_q, w_k, w_v, g)
        bound = _lagrange_bound(B, g, vmax)
        assert aattc_error_bound(B, g, vmax) == pytest.approx(bound, rel=1e-12)
        rounding = 2 * float(np.max(approx_math.err)) + float(np.max(exact.err))
        error = float(np.max(np.abs(out - exact.value)))
        assert error <= bound + rounding
        errors.append(error)
        bounds.append(bound)
    assert all(a > b for a, b in zip(errors, errors[1:]))
    assert all(a > b for a, b in zip(bounds, bounds[1:]))
    assert errors[-1] < 1e-5 < errors[0]


def test_error_bound_function():
    assert aattc_error_bound(0.0, 3, 5.0) == 0.0
    eps = math.exp(1.0) * 0.5**3 / 6
    assert aattc_error_bound(0.5, 2, 2.0) == pytest.approx(2 * eps / (1 - eps) * 2.0, rel=1e-14)
    assert aattc_error_bound(3.0, 1, 1.0) == math.inf  # ε_1 = e^6·9/2 ≥ 1
    with pytest.raises(ConfigError):
        aattc_error_bound(-1.0, 2, 1.0)


# --- depth and size -----------------------------------------------------------------------------

@pytest.mark.parametrize("n, d, g", [(3, 2, 2), (5, 3, 2), (4, 2, 4), (7, 3, 3)])
def test_depth_is_constant(n, d, g):
    """Q (d_std + d_sum) → monomials (d_prod) → ·1/α! (d_std) → U1 (U2ᵀV) (d_std + d_sum, after
    U2ᵀV at 2 d_std + 2 d_sum + d_prod) → ÷ (d_std); the denominator path is shorter."""
    graph = build("aattc", {"n": n, "d": d}, {"g": g})
    assert depth(graph).critical == [vec(d_std=4, d_sum=3, d_prod=1)]


def test_depth_degree_one_has_no_product_gates():
    graph = build("aattc", {"n": 4, "d": 3}, {"g": 1})
    assert depth(graph).critical == [vec(d_std=4, d_sum=3)]
    assert "prod" not in size(graph).by_primitive


def test_depth_agrees_with_independent_longest_path():
    graph = build("aattc", {"n": 4, "d": 2}, {"g": 3})
    weights = {"mul": 2, "add": 2, "sub": 2, "div": 2, "sum": 7, "prod": 11, "exp": 13, "sqrt": 17}
    g = nx.DiGraph()
    for node in graph.live():
        for i in node.inputs:
            g.add_edge(i, node.id, w=weights.get(node.prim.name, 0))
    longest = nx.dag_longest_path_length(g, weight="w")
    value, _ = depth(graph).at({"d_std": 2, "d_sum": 7, "d_prod": 11, "d_exp": 13, "d_sqrt": 17})
    assert longest == value == 4 * 2 + 3 * 7 + 11


@pytest.mark.parametrize("n, d, g", [(3, 2, 2), (5, 3, 3), (4, 4, 1)])
def test_size_matches_hand_count(n, d, g):
    r = math.comb(d + g, g)
    higher = sum(math.comb(d + j - 1, j) for j in range(2, g + 1))  # monomials of degree ≥ 2
    report = size(build("aattc", {"n": n, "d": d}, {"g": g}))
    expected = {
        # Q, K, V: n·d·d products, n·d sums each; U2ᵀV: r·n·d and r·d; U1(·): n·r·d and n·d;
        # denominator: n·r products, n sums; ⊕_j U2: r sums.
        "mul": 3 * n * d * d + n * r + r * n * d + n * r * d + n * r,
        "sum": 3 * n * d + r * d + n * d + r + n,
        "div": n * d,
    }
    if higher:
        expected["prod"] = 2 * n * higher
    assert dict(report.by_primitive) == expected
    assert feature_rank(d, g) == r
    if g >= 2:
        assert report.max_fan_in["prod"] == g


def test_never_forms_an_n_by_n_matrix():
    n, d = 9, 2
    graph = build("aattc", {"n": n, "d": d}, {"g": 2})
    assert all(not (len(node.shape) >= 2 and node.shape[0] == n and node.shape[1] == n) for node in graph.live())


def test_feature_rank():
    assert [feature_rank(2, g) for g in (1, 2, 3)] == [3, 6, 10]
    assert feature_rank(5, 2) == 21


# --- configuration errors -----------------------------------------------------------------------

@pytest.mark.parametrize("g", [0, -1])
def test_degree_below_one_is_config_error(g):
    with pytest.raises(ConfigError, match=r"degree g=.* must be ≥ 1"):
        build("aattc", {"n": 3, "d": 2}, {"g": g})


@pytest.mark.parametrize("g", [1.5, "2", True, None])
def test_degree_not_an_integer_is_config_error(g):
    with pytest.raises(ConfigError, match="degree g="):
        build("aattc", {"n": 3, "d": 2}, {"g": g})


def test_mismatched_shapes_are_graph_errors():
    b = Builder()
    x = b.input("X", (4, 3))
    w = b.input("W", (3, 3))
    with pytest.raises(GraphError, match="W_Q"):
        aattc(b, x, b.input("bad", (3, 2)), w, w, 2)
    with pytest.raises(GraphError, match="W_V"):
        aattc(b, x, w, w, b.input("bad2", (2, 2)), 2)
    with pytest.raises(GraphError, match=r"\[n, d\]"):
        aattc(b, b.input("X3", (2, 2, 3)), w, w, w, 2)


def test_exact_rational_evaluation_p53_degree_four():
    """g = 4 uses the constants 1/α! ∈ {1, 1/2, 1/6, 1/24, 1/4, 1/12}, some not representable,
    each rounded once then multiplied in: bit-identical to the exact rational oracle."""
    n, d, g, p = 2, 2, 4, 53
    data = _data(n, d, seed=40, x_scale=0.5)
    got = np.frompyfunc(Format(p).to_fraction, 1, 1)(_run(n, d, g, p, data))
    want = aattc_exact(data["X"], data["W_Q"], data["W_K"], data["W_V"], g, p)
    assert all(a == b for a, b in zip(got.ravel(), want.ravel()))


@pytest.mark.parametrize("d", [1, 2, 3, 5, 9])
@pytest.mark.parametrize("degree", [0, 1, 2, 3, 4])
def test_monomial_array_is_combinations_with_replacement(d, degree):
    from itertools import combinations_with_replacement

    from tc0sim.ops.aattc import monomial_array

    got = monomial_array(d, degree)
    assert got.dtype == np.int64 and got.shape == (math.comb(d + degree - 1, degree), degree)
    assert [tuple(r) for r in got.tolist()] == list(combinations_with_replacement(range(d), degree))


@pytest.mark.parametrize(("d", "g"), [(1, 4), (3, 3), (4, 2), (6, 4)])
def test_inverse_factorials_are_one_over_alpha_factorial(d, g):
    from fractions import Fraction
    from itertools import combinations_with_replacement

    from tc0sim.ops.aattc import _inverse_factorials

    expected = []
    for degree in range(g + 1):
        for coords in combinations_with_replacement(range(d), degree):
            alpha = [coords.count(i) for i in range(d)]  # the multi-index itself
            expected.append(Fraction(1, math.prod(math.factorial(a) for a in alpha)))
    assert _inverse_factorials(d, g).tolist() == expected
