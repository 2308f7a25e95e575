"""tc0sim.approx and ``tc0sim approx``: the universal-approximation papers' quantities.

Oracles written here, independently of the code under test: numpy float64 brute force (norms,
all pairs, softmax attention), exact Fractions with mpmath square roots at 60 digits (hard float
cases), the closed forms of the papers' constants, and the model references of reference_models.py
(Rational p-bit and high-precision var) for the perturbation errors.
"""

from __future__ import annotations

import json
import math
from fractions import Fraction
from itertools import combinations

import mpmath
import numpy as np
import pytest
import reference_models as RM
from click.testing import CliRunner

from tc0sim.approx import chain as chain_module
from tc0sim.approx.chain import var_chain
from tc0sim.approx.contextual import contextual, lemma_constants, parse_range
from tc0sim.approx.exact import sqrt_float
from tc0sim.approx.lipschitz import (
    area_matrix,
    attention_lipschitz,
    bicubic_matrix,
    conv_matrix,
    rational_spectral_norm,
    resampler_norm,
)
from tc0sim.approx.perturbation import _evaluate, growth_counterexample, perturbation
from tc0sim.approx.separateness import separateness
from tc0sim.audit.audit import audit_claims
from tc0sim.audit.claims import CLAIMS, UA_PAPER
from tc0sim.cli.main import main
from tc0sim.errors import ConfigError
from tc0sim.interp.evaluate import evaluate
from tc0sim.kinds import build
from tc0sim.modelfile import from_mapping
from tc0sim.models.var import _attention

# ------------------------------------------------------------------------------ numpy references


def ref_separateness(x: np.ndarray) -> dict:
    """Brute force in float64: every token norm, every pair of distinct tokens."""
    flat = x.reshape(-1, x.shape[2]) + 0.0
    tokens = {tuple(t) for t in flat.tolist()}
    norms = [math.sqrt(sum(v * v for v in t)) for t in tokens]
    dists = [math.sqrt(sum((a - b) ** 2 for a, b in zip(s, t))) for s, t in combinations(tokens, 2)]
    distinct = all(len({tuple(t) for t in seq.tolist()}) == x.shape[1] for seq in x)
    return {
        "gamma_min": min(norms),
        "gamma_max": max(norms),
        "delta": min(dists) if dists else None,
        "vocabulary": len(tokens),
        "distinct_within_sequences": distinct,
        "kappa": max(norms) / min(norms) if min(norms) else math.inf,
    }


def ref_attention(x: np.ndarray, w_q: np.ndarray, w_k: np.ndarray, w_v: np.ndarray) -> np.ndarray:
    """softmax((X W_Q)(X W_K)ᵀ) X W_V in float64 (no 1/√d scaling, as the papers)."""
    s = (x @ w_q) @ (x @ w_k).T
    a = np.exp(s - s.max(axis=1, keepdims=True))
    return (a / a.sum(axis=1, keepdims=True)) @ x @ w_v


def ref_contextual(x: np.ndarray, weights: dict) -> tuple[float, float]:
    """Definition 5.3's γ (max output norm) and δ (min over the pairs it names), brute force."""
    outs = [ref_attention(seq, weights["W_Q"], weights["W_K"], weights["W_V"]) for seq in x]
    vocab = [frozenset(tuple(t) for t in seq.tolist()) for seq in x]
    positions = [(i, k) for i in range(len(x)) for k in range(x.shape[1])]
    gamma = max(float(np.linalg.norm(outs[i][k])) for i, k in positions)
    delta = math.inf
    for (i, k), (j, l) in combinations(positions, 2):
        if vocab[i] != vocab[j] or tuple(x[i, k]) != tuple(x[j, l]):
            delta = min(delta, float(np.linalg.norm(outs[i][k] - outs[j][l])))
    return gamma, delta


def exact_norm(v) -> float:
    """√(Σ v²) of floats or Fractions: exact Fraction sum, mpmath square root at 60 digits, then float."""
    total = sum((Fraction(a) ** 2 for a in v), Fraction(0))
    with mpmath.workdps(60):
        return float(mpmath.sqrt(mpmath.mpf(total.numerator) / total.denominator))


def _embeddings(seed: int, vocab: int = 6, n: int = 3, sequences: int = 10, d: int = 2) -> np.ndarray:
    rng = np.random.default_rng(seed)
    tokens = rng.standard_normal((vocab, d))
    return np.stack([tokens[rng.permutation(vocab)[:n]] for _ in range(sequences)])


# ---------------------------------------------------------------------------------- separateness


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_separateness_matches_numpy_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((30, 5, 3)) * rng.uniform(0.1, 10)
    got = separateness(x).as_dict()
    want = ref_separateness(x)
    for key in ("gamma_min", "gamma_max", "delta", "kappa"):
        assert got[key] == pytest.approx(want[key], rel=1e-13)
    assert got["vocabulary"] == want["vocabulary"] == 150
    assert got["distinct_within_sequences"] is want["distinct_within_sequences"] is True


def test_separateness_repeated_tokens_and_signed_zero() -> None:
    x = _embeddings(3, vocab=4, n=3, sequences=12)
    x[0, 2] = x[0, 0]  # a repeated token within a sequence
    x[1, 0] = [0.0, 0.0]
    x[2, 0] = [-0.0, 0.0]  # equal to 0.0 as reals: one token
    got = separateness(x)
    want = ref_separateness(x)
    assert got.distinct_within_sequences is False is want["distinct_within_sequences"]
    assert got.vocabulary == want["vocabulary"] == 5
    assert got.gamma_min == 0.0 and math.isinf(got.kappa)


def test_separateness_exact_where_float64_fails() -> None:
    """Squares overflow (1e200) and underflow (1e-200) in float64; the exact values do not."""
    huge = np.array([[[1e200, 3e200], [2e200, 1e200]]])
    got = separateness(huge)
    assert got.gamma_max == exact_norm([1e200, 3e200])
    assert got.delta == exact_norm([Fraction(1e200) - Fraction(2e200), Fraction(3e200) - Fraction(1e200)])
    tiny = np.array([[[1e-200, 0.0], [1e-200, 5e-324]], [[3e-200, 1e-210], [2e-200, 0.0]]])
    got = separateness(tiny)
    assert got.delta == 5e-324  # the closest pair differs by one subnormal in one coordinate
    assert got.gamma_min == exact_norm([1e-200, 0.0])
    assert got.gamma_max == exact_norm([3e-200, 1e-210])
    assert got.kappa == pytest.approx(3.0, rel=1e-15)


def test_separateness_near_ties_decided_exactly() -> None:
    """Candidates a float64 screen cannot order: distances that differ in the last bits."""
    base = 1.0
    step = math.ulp(1.0)
    x = np.array([[[0.0, 0.0], [base, 0.0], [2 * base + step, 0.0], [3 * base + step, 0.0]]])
    got = separateness(x)
    assert got.delta_squared == Fraction(1)  # 1, 1 + ulp, 1: the minimum 1 appears twice, exactly
    assert got.delta == 1.0


def test_separateness_on_a_quantized_grid_with_many_ties() -> None:
    """Tokens on the grid {0, 1/8, …, 7/8}² (the papers' quantized inputs): the minimum 1/8 is
    reached by many pairs at once, all of them screened and verified."""
    rng = np.random.default_rng(9)
    x = rng.integers(0, 8, size=(60, 4, 2)) / 8.0
    got = separateness(x)
    want = ref_separateness(x)
    assert got.delta == want["delta"] == 0.125
    assert got.vocabulary == want["vocabulary"] and got.gamma_max == exact_norm([0.875, 0.875])
    assert got.verified_pairs >= 2


def test_sqrt_float_is_correctly_rounded() -> None:
    rng = np.random.default_rng(5)
    for _ in range(200):
        num, den = int(rng.integers(1, 2**62)) * int(rng.integers(1, 2**40)), int(rng.integers(1, 2**50))
        with mpmath.workdps(80):
            want = float(mpmath.sqrt(mpmath.mpf(num) / den))
        assert sqrt_float(num, den) == want
    assert sqrt_float(4, 1) == 2.0 and sqrt_float(1, 4) == 0.5 and sqrt_float(0, 3) == 0.0
    assert sqrt_float(1, 1 << 2148) == 5e-324


def test_separateness_cli_text_json_and_bad_input(tmp_path) -> None:
    x = _embeddings(1)
    path = tmp_path / "emb.npz"
    np.savez(path, X=x)
    runner = CliRunner()
    result = runner.invoke(main, ["approx", "separateness", str(path), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    want = ref_separateness(x)
    assert {"gamma_min", "gamma_max", "delta", "vocabulary", "distinct_within_sequences", "kappa"} <= set(data)
    assert data["delta"] == pytest.approx(want["delta"], rel=1e-13) and data["vocabulary"] == want["vocabulary"]
    text = runner.invoke(main, ["approx", "separateness", str(path)])
    assert text.exit_code == 0 and "gamma_min" in text.output and "kappa" in text.output
    bad = tmp_path / "bad.npz"
    np.savez(bad, X=np.zeros((2, 3)))
    for args in ([str(bad)], [str(tmp_path / "missing.npz")]):
        result = runner.invoke(main, ["approx", "separateness", *args])
        assert result.exit_code == 2 and "error:" in result.output and "Traceback" not in result.output
    text_array = tmp_path / "text.npz"
    np.savez(text_array, X=np.array([[["a", "b"]]]))
    assert "real numbers" in runner.invoke(main, ["approx", "separateness", str(text_array)]).output
    big = tmp_path / "big.npz"
    np.savez(big, X=np.array([[[2**60, 1]]], dtype=np.int64))
    assert "2^53" in runner.invoke(main, ["approx", "separateness", str(big)]).output
    nan = tmp_path / "nan.npz"
    np.savez(nan, X=np.full((1, 2, 2), np.nan))
    assert runner.invoke(main, ["approx", "separateness", str(nan)]).exit_code == 2


# ---------------------------------------------------------------------------------- contextual


def _attention_spec(n: int = 3, d: int = 2, seed: int = 0):
    return from_mapping({"kind": "attention", "dims": {"n": n, "d": d}, "seed": seed, "scale": 0.5, "precision": 53})


@pytest.mark.parametrize("seed", [0, 4])
def test_contextual_matches_numpy_reference(seed: int) -> None:
    x = _embeddings(seed)
    x = np.concatenate([x, x[:, ::-1]])  # permuted copies: same vocabulary and tokens, excluded pairs
    spec = _attention_spec(seed=seed)
    rng = np.random.default_rng(seed + 100)
    weights = {name: rng.standard_normal((2, 2)) for name in ("W_Q", "W_K", "W_V")}
    report = contextual(spec, x, 200, weights)
    gamma, delta = ref_contextual(x, weights)
    assert report.at_p.gamma == pytest.approx(gamma, rel=1e-12)
    assert report.at_p.delta == pytest.approx(delta, rel=1e-9)
    at53 = contextual(spec, x, 53, weights)
    assert at53.at_p.delta == pytest.approx(delta, rel=1e-6)


def test_contextual_lemma_constants_from_the_formula() -> None:
    x = _embeddings(2)
    report = contextual(_attention_spec(), x, 24)
    sep = ref_separateness(x)
    eps, gmax, kappa = sep["delta"], sep["gamma_max"], sep["kappa"]
    exponent = -5 / eps * sep["vocabulary"] ** 4 * 2 * kappa * gmax * math.log(3)
    assert report.lemma.gamma == pytest.approx(gmax + eps / 4, rel=1e-13)
    assert report.lemma.delta_log10 == pytest.approx(exponent / math.log(10), rel=1e-12)
    assert report.lemma.delta.endswith(f"e{math.floor(exponent / math.log(10))}")
    assert report.lemma.bits_needed() == pytest.approx(math.log2(gmax + eps / 4) - exponent / math.log(2), rel=1e-12)
    repeated = x.copy()
    repeated[0, 1] = repeated[0, 0]
    assert not contextual(_attention_spec(), repeated, 24).lemma.applies


def test_contextual_zero_values_collapse_and_sweep(tmp_path) -> None:
    x = _embeddings(1)
    spec = _attention_spec()
    zero = contextual(spec, x, 24, {"W_V": np.zeros((2, 2))}, sweep=[8, 53])
    assert zero.at_p.delta == 0.0 and zero.at_p.gamma == 0.0
    assert zero.smallest_positive_p() is None
    # two contexts whose outputs differ by about 2^-30: they merge at low precision only
    y = np.stack([x[0], x[0] + np.array([[0.0, 0.0], [0.0, 0.0], [2.0**-30, 0.0]])])
    swept = contextual(spec, y, 53, sweep=list(range(4, 54)))
    first = swept.smallest_positive_p()
    assert first is not None and 8 < first <= 53
    assert all(not a.delta for a in swept.sweep if a.p < first)
    point53 = next(a for a in swept.sweep if a.p == 53)
    assert point53.delta == swept.at_p.delta


def test_contextual_cli(tmp_path) -> None:
    x = _embeddings(0)
    emb = tmp_path / "emb.npz"
    np.savez(emb, X=x)
    model = tmp_path / "att.yaml"
    model.write_text("kind: attention\ndims: {n: 3, d: 2}\nprecision: 24\nseed: 0\nscale: 0.5\n")
    runner = CliRunner()
    result = runner.invoke(main, ["approx", "contextual", str(model), "--embeddings", str(emb), "--format", "json", "--sweep-precision", "20..24"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert {"gamma", "delta", "lemma_gamma", "lemma_delta", "lemma_delta_log10"} <= set(data)
    assert isinstance(data["lemma_delta"], str) and data["sweep"]["precisions"] == [20, 21, 22, 23, 24]
    text = runner.invoke(main, ["approx", "contextual", str(model), "--embeddings", str(emb)])
    assert text.exit_code == 0 and "lemma_delta" in text.output
    bad_weights = tmp_path / "w.npz"
    np.savez(bad_weights, W_V=np.zeros((3, 3)))
    unknown = tmp_path / "u.npz"
    np.savez(unknown, W_O=np.zeros((2, 2)))
    for path in (bad_weights, unknown):
        result = runner.invoke(main, ["approx", "contextual", str(model), "--embeddings", str(emb), "--weights", str(path)])
        assert result.exit_code == 2 and "error:" in result.output and "weight" in result.output, result.output
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("kind: attention\ndims: {n: 4, d: 2}\nprecision: 24\n")
    for args in (
        [str(wrong), "--embeddings", str(emb)],
        [str(model), "--embeddings", str(emb), "--sweep-precision", "9..3"],
        [str(model), "--embeddings", str(emb), "--precision", "1"],
    ):
        result = runner.invoke(main, ["approx", "contextual", *args])
        assert result.exit_code == 2 and "error:" in result.output, result.output
    with pytest.raises(ConfigError):
        parse_range("2-64")


# ------------------------------------------------------------------------------ Lipschitz bounds


def test_resampler_norms_against_numpy() -> None:
    for size_in, size_out in ((1, 2), (2, 4), (3, 8), (4, 8)):
        dense = np.asarray(bicubic_matrix(size_in, size_out), dtype=np.float64)
        want = np.linalg.norm(dense, 2)
        got = rational_spectral_norm(bicubic_matrix(size_in, size_out))
        assert want <= got <= want * (1 + 1e-12)
    assert resampler_norm(bicubic_matrix, (2, 2), (4, 4)) == pytest.approx(np.linalg.norm(np.asarray(bicubic_matrix(2, 4), dtype=float), 2) ** 2, rel=1e-12)
    for r in (2, 3, 4):  # area averaging by r: 1/√r per axis, 1/r for a map
        assert resampler_norm(area_matrix, (4 * r, 4 * r), (4, 4)) == pytest.approx(1 / r, rel=1e-14)
        assert resampler_norm(area_matrix, (4 * r, 4 * r), (4, 4)) >= 1 / r


def test_spectral_norms_are_certified_upper_bounds() -> None:
    """Against singular values at 50 digits (mpmath): never below, and only ulps above."""
    from tc0sim.approx.lipschitz import spectral_norm

    rng = np.random.default_rng(3)
    for shape in ((3, 3), (5, 2), (2, 7), (12, 12)):
        a = rng.standard_normal(shape)
        with mpmath.workdps(50):
            sigma = max(mpmath.svd_r(mpmath.matrix(a.tolist()), compute_uv=False))
            got = spectral_norm(a)
            assert mpmath.mpf(got) >= sigma and mpmath.mpf(got) <= sigma * (1 + mpmath.mpf(10) ** -12)
    assert spectral_norm(np.eye(4) * 3.0) >= 3.0 and spectral_norm(np.zeros((2, 2))) >= 0.0


def test_conv_matrix_matches_a_direct_convolution() -> None:
    rng = np.random.default_rng(0)
    kernel = rng.standard_normal((3, 3, 3, 2))
    x = rng.standard_normal((4, 5, 2))
    got = (conv_matrix(kernel, 4, 5) @ x.ravel()).reshape(4, 5, 3)
    direct = np.zeros((4, 5, 3))
    padded = np.pad(x, ((1, 1), (1, 1), (0, 0)))
    for i in range(4):
        for j in range(5):
            direct[i, j] = np.einsum("omnc,mnc->o", kernel, padded[i : i + 3, j : j + 3])
    np.testing.assert_allclose(got, direct, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_attention_lipschitz_bound_dominates_finite_differences(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, d = 5, 3
    w_q, w_k, w_v = (rng.standard_normal((d, d)) for _ in range(3))
    for _ in range(20):
        x = rng.standard_normal((n, d))
        e = rng.standard_normal((n, d)) * 10.0 ** rng.uniform(-6, 0)
        radius = max(np.linalg.norm(x), np.linalg.norm(x + e))
        ratio = np.linalg.norm(ref_attention(x + e, w_q, w_k, w_v) - ref_attention(x, w_q, w_k, w_v)) / np.linalg.norm(e)
        assert ratio <= attention_lipschitz(w_q, w_k, w_v, n, radius)


# ---------------------------------------------------------------------------------- perturbation

SMALL_VAR = {"dims": {"h": 2, "w": 2, "c": 2}, "params": {"scales": [1, 2], "layers": 1, "g": "ffn", "kernel": 3, "decoder": ["resnet", "attn", "up"]}}


def _var_weights(dims: dict, params: dict, seed: int, scale: float = 0.5) -> dict:
    return RM.draw_inputs(RM.input_shapes(build("var", dims, params)), seed, scale)


@pytest.mark.parametrize(
    "params",
    [
        {"scales": 3, "layers": 1, "g": "ffn", "decoder": ["resnet", "attn", "up"]},
        {"scales": [1, 2, 4], "layers": 2, "g": ["mlp", "ffn"], "kernel": 1, "decoder": ["up", "attn"]},
    ],
)
def test_chain_composes_to_the_model_bit_for_bit(params: dict) -> None:
    dims = {"h": 4, "w": 4, "c": 2}
    weights = _var_weights(dims, params, 3)
    full = evaluate(build("var", dims, params), 12, weights)["out"]
    chain = var_chain(dims, params, weights)
    y = np.asarray(weights["X_init"]).reshape(chain[0].in_shape)
    for layer in chain:
        y = _evaluate(layer.graph(_attention), 12, y, weights)
    assert y.shape == full.shape and all(a == b for a, b in zip(y.ravel(), full.ravel()))


def test_linear_layer_norms_match_the_dag_probed_on_a_basis() -> None:
    """Pyramid up-interpolation, phase 2 and the up block are affine: their matrix, probed column by
    column through the DAG at 200 bits, has the spectral norm the layer reports."""
    dims = {"h": 4, "w": 4, "c": 2}
    params = {"scales": 3, "layers": 1, "g": "ffn", "decoder": ["up"]}
    weights = _var_weights(dims, params, 5)
    checked = 0
    for layer in var_chain(dims, params, weights):
        if layer.role not in ("pyramid_up", "phase2", "up"):
            continue
        graph = layer.graph(_attention)
        size = int(np.prod(layer.in_shape))
        origin = np.vectorize(float)(_evaluate(graph, 200, np.zeros(layer.in_shape), weights)).ravel()
        columns = []
        for k in range(size):
            basis = np.zeros(size)
            basis[k] = 1.0
            out = np.vectorize(float)(_evaluate(graph, 200, basis.reshape(layer.in_shape), weights)).ravel()
            columns.append(out - origin)
        want = np.linalg.norm(np.stack(columns, axis=1), 2)
        assert want <= layer.lipschitz(1.0) <= want * (1 + 1e-9), layer.name
        checked += 1
    assert checked == 5  # three pyramid levels, phase 2, one up block


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("p", [10, 24])
def test_perturbation_bound_holds_against_the_reference_error(seed: int, p: int) -> None:
    dims, params = SMALL_VAR["dims"], SMALL_VAR["params"]
    weights = _var_weights(dims, params, seed)
    report = perturbation(dims, params, weights, p)
    args = {"scales": params["scales"], "layers": 1, "g": ("ffn",), "decoder": tuple(params["decoder"])}
    approx_out = RM.var_reference(weights, RM.Rational(p), **args)["out"]
    exact_out = RM.var_reference(weights, RM.Rational(300), **args)["out"]
    diff = RM.as_fractions(approx_out) - RM.as_fractions(exact_out)
    measured_sq = sum((v * v for v in diff.ravel()), Fraction(0))
    assert float(report.measured_squared) == pytest.approx(float(measured_sq), rel=1e-20, abs=1e-300)
    assert Fraction(report.bound) ** 2 >= measured_sq > 0
    assert report.bound_a_priori >= report.bound
    assert report.reference_gap < 1e-60 * report.measured
    assert report.telescoped >= report.measured * (1 - 1e-12)
    for row in report.rows:
        assert row.term_measured <= row.term_bound * (1 + 1e-9)
        if row.two_layer_measured is not None:
            assert row.two_layer_measured <= row.two_layer_bound * (1 + 1e-9)
    assert not report.violations


@pytest.mark.parametrize("seed", [0, 1])
def test_perturbation_aattc_replacement(seed: int) -> None:
    dims, params = SMALL_VAR["dims"], SMALL_VAR["params"]
    weights = _var_weights(dims, params, seed)
    report = perturbation(dims, params, weights, 24, replace="aattc", degree=2)
    nonzero = [r.role for r in report.rows if r.epsilon > 1e-60]
    assert nonzero and set(nonzero) == {"attention"}
    assert report.measured > 1e-6 and report.bound >= report.measured and not report.violations


def test_a_failing_bound_is_reported_with_the_instance(monkeypatch) -> None:
    dims, params = SMALL_VAR["dims"], SMALL_VAR["params"]
    monkeypatch.setattr(chain_module, "attention_bound", lambda *args: 0.0)
    report = perturbation(dims, params, _var_weights(dims, params, 0), 12, instance={"seed": 0})
    assert report.violations and any("Lemma 6.4" in v for v in report.violations)
    assert report.as_dict()["holds"] is False and report.as_dict()["instance"] == {"seed": 0}


def test_growth_counterexample_to_lemma_6_4_as_printed() -> None:
    example = growth_counterexample()
    x = np.eye(2)
    moved = np.array([[1.0, 0.0], [0.0, 1.0 + 1 / 128]])
    w_q, w_k = np.array([[1000.0, 0.0], [0.0, 0.0]]), np.array([[1.0, 0.0], [1.0, 0.0]])
    want = np.linalg.norm(ref_attention(moved, w_q, w_k, np.eye(2)) - ref_attention(x, w_q, w_k, np.eye(2)))
    assert example.measured == pytest.approx(want, rel=1e-9)
    assert math.sqrt(2) <= example.k2_growth <= math.sqrt(2) * (1 + 1e-9)
    assert example.measured > 10 * example.printed_bound
    assert example.measured <= example.lipschitz_bound


def test_perturbation_cli(tmp_path) -> None:
    model = tmp_path / "var.yaml"
    model.write_text(
        "kind: var\nprecision: 16\ndims: {h: 2, w: 2, c: 2}\nscales: [1, 2]\ndecoder: [resnet]\nseed: 1\nscale: 0.5\n"
    )
    runner = CliRunner()
    result = runner.invoke(main, ["approx", "perturbation", str(model), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["holds"] and data["bound_lemma_6_4_6_5"] >= data["measured_end_to_end"] > 0
    assert [r["name"] for r in data["layers"]][:2] == ["level1/pyramid_up", "level1/layer1/attention"]
    text = runner.invoke(main, ["approx", "perturbation", str(model), "--replace", "aattc"])
    assert text.exit_code == 0 and "every bound holds" in text.output
    audited = runner.invoke(main, ["audit", str(model), "--format", "json"])
    assert audited.exit_code == 0, audited.output
    verdicts = {v["id"]: v["verdict"] for v in json.loads(audited.output)["claims"]}
    assert {verdicts[i] for i in ("UA-L6.3", "UA-L6.5")} == {"by construction"}
    assert verdicts["UA-L6.4"] == "slack" and verdicts["UA-T6.6"] == "unchecked"
    norm = tmp_path / "ln.yaml"
    norm.write_text(
        "kind: var\nprecision: 16\ndims: {h: 2, w: 2, c: 3}\nscales: [1, 2]\ng: [ln, ffn]\ndecoder: [resnet]\nseed: 2\nscale: 0.5\n"
    )
    result = runner.invoke(main, ["approx", "perturbation", str(norm), "--format", "json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["unbounded_layers"] == ["level1/layer1/ln", "level2/layer2/ln"]
    assert data["bound_lemma_6_4_6_5"] is None and data["k2"] is None and data["measured_end_to_end"] > 0
    other = tmp_path / "att.yaml"
    other.write_text("kind: attention\ndims: {n: 3, d: 2}\nprecision: 24\n")
    result = runner.invoke(main, ["approx", "perturbation", str(other)])
    assert result.exit_code == 2 and "kind 'var'" in result.output


# ---------------------------------------------------------------------------------- registry

UA_IDS = ("UA-D5.2", "UA-D5.3", "UA-L5.4", "UA-L6.1", "UA-L6.3", "UA-L6.4", "UA-L6.5", "UA-T6.6", "UA-C7.1", "UA-C7.2",
          "UA-C7.3", "UA-LC.1")


def test_universality_claims_registered_and_audited() -> None:
    claims = {c.id: c for c in CLAIMS if c.paper == UA_PAPER}
    assert tuple(claims) == UA_IDS
    for claim in claims.values():
        assert claim.title and claim.statement and claim.note and claim.kind is None and claim.depth is None
    verdicts = {v.id: v for v in audit_claims(UA_IDS)}
    assert verdicts["UA-L6.4"].verdict == "violated as printed" and verdicts["UA-L6.4"].corrected["verdict"] == "slack"
    assert {verdicts[i].verdict for i in ("UA-L6.3", "UA-L6.5", "UA-C7.1")} == {"by construction"}
    assert verdicts["UA-T6.6"].verdict == "unchecked" and "existence statement" in verdicts["UA-T6.6"].notes[0]
    for i in ("UA-D5.2", "UA-D5.3", "UA-L5.4", "UA-L6.1", "UA-C7.2", "UA-C7.3"):
        assert verdicts[i].verdict == "unchecked" and verdicts[i].notes
    assert any("W_V = 0" in note and "delta = 0" in note for note in verdicts["UA-L5.4"].notes)


def test_lemma_c1_grid_separateness_closed_forms() -> None:
    """The grid of Lemma C.1: least norm √d·δ, largest √d·L₀, least distance δ (numpy brute force too)."""
    from tc0sim.audit.approx_checks import _grid_instance

    for d, steps, tokens in ((2, 4, 3), (3, 2, 2)):
        x = _grid_instance(d, steps, tokens)
        got = separateness(x)
        want = ref_separateness(x)
        assert got.vocabulary == want["vocabulary"] == tokens * steps**d
        assert got.gamma_min == pytest.approx(math.sqrt(d) / steps, rel=1e-15) == want["gamma_min"]
        assert got.gamma_max == pytest.approx(math.sqrt(d) * tokens, rel=1e-15)
        assert got.delta == 1 / steps == want["delta"]


def test_lemma_5_4_constants_underflow_every_float() -> None:
    x = _embeddings(0, vocab=20, n=4, sequences=30)
    lemma = lemma_constants(separateness(x))
    assert lemma.applies and lemma.delta_log10 < -400  # below float64's smallest subnormal (1e-324)
    assert lemma.delta.startswith(str(int(mpmath.floor(mpmath.power(10, lemma.delta_log10 - mpmath.floor(lemma.delta_log10))))))


# ---------------------------------------------------------------------------------- the paper's text

PAPER_FILE = "000_21041c7b078f59ae.txt"
"""The ICML version of the universal-approximation paper, where the test environment has it."""

QUOTES = (
    ("UA-D5.2", r"\|X_k^{(i)} X_l^{(j)}\|_2 > \delta"),  # the lost minus sign the note records
    ("UA-D5.3", r"\|q(X^{(i)})_k q(X^{(j)})_l\|_2 > \delta"),
    ("UA-L5.4", r"-5\epsilon^{-1}|\mathcal{V}|^4 d\kappa \gamma_{\max} \log L"),
    ("UA-L5.4", r"\gamma = \gamma_{\max} + \frac{\epsilon}{4}"),
    ("UA-L5.4", r"(\sqrt{d}, \sqrt{d}(L_0 - \delta), \sqrt{d}\delta)"),  # Lemma C.1's claimed separateness
    ("UA-L6.3", "from Theorem 6.1"),
    ("UA-L6.4", r"v_i(x) \leq K_2 \cdot \|x\|"),
    ("UA-L6.4", "follows from linearity"),
    ("UA-T6.6", "Assume $K_2 > 2$"),
    ("UA-T6.6", r"\frac{K_{2}^{n} - 1}{K_{2} - 1}"),
    ("UA-C7.2", "Informal Version of Corollary 4.2"),
)


@pytest.fixture(scope="module")
def paper() -> str:
    import os
    from pathlib import Path

    directory = Path(os.environ.get("TC0SIM_SEEDS") or Path(__file__).resolve().parents[2] / "shared" / "seeds")
    if not (directory / PAPER_FILE).is_file():
        pytest.skip(f"the paper's text is not in {directory}")
    return (directory / PAPER_FILE).read_text(encoding="utf-8", errors="replace")


def test_references_are_headings_of_the_paper(paper: str) -> None:
    import re

    for claim in (c for c in CLAIMS if c.paper == UA_PAPER):
        assert re.search(rf"^{re.escape(claim.ref)}[ .]", paper, re.M), claim.ref


@pytest.mark.parametrize("claim_id,quote", QUOTES, ids=[f"{q[0]}:{i}" for i, q in enumerate(QUOTES)])
def test_quoted_constants_are_the_papers(claim_id: str, quote: str, paper: str) -> None:
    assert quote in paper
    assert claim_id in UA_IDS


def test_size_limits_refuse_with_one_line(tmp_path) -> None:
    with pytest.raises(ConfigError, match="tokens"):
        separateness(np.zeros((1001, 1000, 1)))
    with pytest.raises(ConfigError, match="evaluations"):
        contextual(_attention_spec(), np.zeros((4000, 3, 2)), 24, sweep=list(range(2, 65)))
    model = tmp_path / "var.yaml"
    model.write_text("kind: var\nprecision: 16\ndims: {h: 2, w: 2, c: 2}\nscales: [1, 2]\ndecoder: [resnet]\n")
    result = CliRunner().invoke(main, ["approx", "perturbation", str(model), "--max-gates", "10"])
    assert result.exit_code == 2 and "--max-gates" in result.output
