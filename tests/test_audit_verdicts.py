"""Verdicts that say exactly what holds (issue 32): every verdict word has a claim that gets it, every
verdict carries its hypotheses and what was held fixed, O(1) verdicts their growth, and the
counterexamples are re-derived here independently — exact rationals and mpmath, never the code
under test.
"""

from __future__ import annotations

import itertools
import json
from fractions import Fraction

import mpmath
import numpy as np
import pytest
from click.testing import CliRunner

from tc0sim.audit import error_checks
from tc0sim.audit.audit import FAILING, VERDICTS, audit_claim, audit_claims
from tc0sim.audit.claims import get, parse
from tc0sim.audit.construction_checks import GRID, quantized_inputs
from tc0sim.cli.main import main
from tc0sim.interp.evaluate import evaluate
from tc0sim.kinds import build

mpmath.mp.dps = 60

TOO_SHALLOW = """
paper: Test
claims:
- id: TEST-SHALLOW
  ref: Lemma T.2
  title: Matrix multiplication, claimed too shallow
  statement: The product of two n x n matrices has depth d_std.
  check: sweep
  kind: matmul
  dims: {n1: n, d: n, n2: n}
  depth: {d_std: 1}
"""

WORDS = {
    "tight": "VAR-L5.1",  # 2 d_std + d_sum: gather, two weight products, one ⊕ of 16 taps (docs/operators.md)
    "slack": "FlowAR-L4.6",
    "by construction": "UA-L6.3",
    "violated as printed": "UA-L6.4",
    "precondition": "FlowAR-LD.7",
    "unchecked": "UA-T6.6",
}


@pytest.mark.parametrize("word,claim_id", WORDS.items())
def test_each_verdict_word_has_a_registry_claim(word: str, claim_id: str) -> None:
    verdict = audit_claim(get(claim_id))
    assert verdict.verdict == word
    assert verdict.hypotheses and all(set(h) == {"text", "check", "status"} for h in verdict.hypotheses)
    assert verdict.held_fixed


def test_violated_is_a_claim_below_the_lowering() -> None:
    """matmul is one layer of products (d_std) then one ⊕ (d_sum): a claim of d_std alone is violated."""
    (claim,) = parse(TOO_SHALLOW, "<test>")
    verdict = audit_claim(claim, (2, 3, 4))
    assert verdict.verdict == "violated" and verdict.verdict in FAILING
    assert set(WORDS) | {"violated"} == set(VERDICTS)


def test_o1_verdicts_report_the_growth_in_what_is_held_fixed() -> None:
    """VAR Theorem 5.11 is O(1) in n at 3 scales and 1 layer; the depth per added scale and layer is fitted
    on two values and verified on two more (the issue measured 39, 52, 65 d_std at K = 2, 3, 4)."""
    verdict = audit_claim(get("VAR-T5.11"))
    assert verdict.verdict == "tight" and "scales = 3" in verdict.held_fixed and "layers = 1" in verdict.held_fixed
    growth = {g["quantity"]: g for g in verdict.growth}
    assert growth["scale"]["linear"] and growth["scale"]["per_unit"] == "13 d_std + 7 d_sum + d_exp"
    assert [growth["scale"]["depth"][k].split(" d_std")[0] for k in ("2", "3", "4")] == ["39", "52", "65"]
    assert growth["layer"]["linear"] and growth["layer"]["at"] == [1, 2, 3, 4]
    flowar = audit_claim(get("FlowAR-T4.9"))
    assert {g["quantity"] for g in flowar.growth} == {"scale", "layer"} and all(g["linear"] for g in flowar.growth)


def test_runtime_verdicts_are_the_exponent_at_fixed_widths() -> None:
    verdict = audit_claim(get("FlowAR-L5.5"))
    assert verdict.verdict == "tight" and verdict.scope == "exponent at fixed d, c, g"


def test_the_audit_prints_hypotheses_held_fixed_and_growth_and_exits_on_the_printed_claim() -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["audit", "--claim", "VAR-T5.11", "--format", "json"])
    assert result.exit_code == 0, result.output
    (v,) = json.loads(result.stdout)["claims"]
    assert v["hypotheses"][0] == {"text": "p <= poly(n)", "check": "", "status": "not machine-checkable"}
    assert v["growth"] and v["held_fixed"]
    text = runner.invoke(main, ["audit", "--claim", "UA-L6.4"])
    assert text.exit_code == 1  # violated as printed: the exit status follows the printed claim
    assert "violated as printed" in text.output and "corrected reading: slack" in text.output
    assert "hypotheses:" in text.output and "held fixed:" in text.output
    assert runner.invoke(main, ["audit", "--claim", "UA-L6.3"]).exit_code == 0


# ------------------------------------------------------------------ counterexamples, re-derived


def _mp(m: list[list]) -> mpmath.matrix:
    """An mpmath matrix of exact rationals (Fractions converted as numerator / denominator)."""
    return mpmath.matrix([[mpmath.mpf(Fraction(v).numerator) / Fraction(v).denominator for v in row] for row in m])


def _attention(x: list[list], w_q: list[list], w_k: list[list], w_v: list[list]) -> mpmath.matrix:
    """FlowAR Definition B.5 / the UA paper's attention in mpmath: D⁻¹ exp(X W_Q (X W_K)ᵀ) X W_V (no 1/√d)."""
    X, Q, K, V = (_mp(m) for m in (x, w_q, w_k, w_v))
    scores = (X * Q) * (X * K).T
    weights = scores.apply(mpmath.exp)
    out = weights * (X * V)
    for i in range(out.rows):
        row = sum(weights[i, j] for j in range(weights.cols))
        for j in range(out.cols):
            out[i, j] /= row
    return out


def test_lemma_6_4_counterexample_in_mpmath() -> None:
    """n = 2, j = 1: u_1(x) = x + E, v_1 = identity (growth 1 ≤ K_2 on every input: no domain restriction),
    v_2 = attention with W_Q W_Kᵀ = 1000·[[1, 1], [0, 0]], W_V = I, K_2 = √2 ‖W_V‖ = √2. The printed lemma
    bounds ‖v_2(u_1(x)) − v_2(v_1(x))‖ by K_2 ε; at x = I and E = ε e_22 it is about 0.712."""
    eps = mpmath.mpf(1) / 128
    w_q, w_k, w_v = [[1000, 0], [0, 0]], [[1, 0], [1, 0]], [[1, 0], [0, 1]]
    x = [[1, 0], [0, 1]]
    moved = [[1, 0], [0, 1 + Fraction(1, 128)]]
    diff = _attention(moved, w_q, w_k, w_v) - _attention(x, w_q, w_k, w_v)
    measured = mpmath.sqrt(sum(diff[i, j] ** 2 for i in range(2) for j in range(2)))
    assert abs(measured - mpmath.mpf("0.712")) < 1e-3
    assert measured > 60 * mpmath.sqrt(2) * eps  # K_2 ε = 0.011
    verdict = audit_claim(get("UA-L6.4"))
    assert verdict.verdict == "violated as printed" and verdict.corrected["verdict"] == "slack"
    assert f"{float(measured):.4g}" in verdict.computed


def test_lemma_d7_layer_norm_counterexample_exactly() -> None:
    """LN(x) = (x − μ)/σ (Definition B.8, no ε): x = (0, a) ↦ (−1, 1) and x′ = (a, 0) ↦ (1, −1) for any a > 0,
    so ‖LN(x′) − LN(x)‖∞ = 2 while ‖x′ − x‖∞ = a = 1e-6: LN is not non-expansive in ℓ∞."""
    def layer_norm(v: tuple[Fraction, Fraction]) -> tuple[Fraction, ...]:
        mean = sum(v) / 2
        var = sum((t - mean) ** 2 for t in v) / 2
        sigma = Fraction(abs(v[0] - v[1]), 2)  # √var, exactly: var = ((v0 − v1)/2)²
        assert sigma * sigma == var
        return tuple((t - mean) / sigma for t in v)

    x, moved = error_checks.LN_PAIR
    gap = max(abs(a - b) for a, b in zip(layer_norm(moved), layer_norm(x)))
    assert gap == 2 and max(abs(a - b) for a, b in zip(x, moved)) == Fraction(1, 10**6)
    eps, measured = error_checks.layernorm_gap()
    assert eps == Fraction(1, 10**6) and abs(measured - gap) < Fraction(1, 2**150)
    verdict = audit_claim(get("FlowAR-LD.7"))
    status = {h["text"]: h["status"] for h in verdict.hypotheses}
    assert verdict.verdict == "precondition" and status[error_checks.LN_HYPOTHESIS].startswith("false")


def test_lemma_d4_omits_aattcs_own_error() -> None:
    """AAttC replaces exp(s) by 1 + s + s²/2 (degree g = 2). Re-evaluated in mpmath on the audit's instance,
    ‖AAttC(X + E) − Attn(X)‖∞ stays near δ = ‖AAttC(X) − Attn(X)‖∞ > 0 as ε shrinks, so it exceeds
    k R^{g+1} c ε = 6·8·2 ε for small ε: no constant makes the printed bound hold."""
    graph = build("aattc", {"n": 4, "d": 2}, {})
    inputs, name, signs = error_checks._instance(graph)
    w_q, w_k, w_v = ([[Fraction(v) for v in row] for row in inputs[k]] for k in ("W_Q", "W_K", "W_V"))

    def aattc(x: list[list]) -> mpmath.matrix:
        X = _mp(x)
        Q, K, V = X * _mp(w_q), X * _mp(w_k), X * _mp(w_v)
        out = mpmath.matrix(4, 2)
        for i in range(4):
            p = [1 + s + s * s / 2 for s in (sum(Q[i, t] * K[j, t] for t in range(2)) for j in range(4))]
            for c in range(2):
                out[i, c] = sum(p[j] * V[j, c] for j in range(4)) / sum(p)
        return out

    x = [[Fraction(v) for v in row] for row in inputs[name]]
    exact = _attention(x, w_q, w_k, w_v)
    delta = max(abs(v) for v in (aattc(x) - exact))
    eps = Fraction(1, 2**27)
    moved = [[v + int(s) * eps for v, s in zip(row, srow)] for row, srow in zip(x, signs)]
    error = max(abs(v) for v in (aattc(moved) - exact))
    assert delta > 0.1 and abs(error - delta) < 1e-6 and error > 96 * float(eps)
    measured, tool_delta = error_checks.aattc_measure()
    assert abs(float(tool_delta) - float(delta)) < 1e-12 and abs(float(measured[-1][1]) - float(error)) < 1e-12
    verdict = audit_claim(get("FlowAR-LD.4"))
    assert verdict.verdict == "violated as printed" and verdict.corrected["verdict"] == "slack"


def test_lemma_d3_is_attained_and_d6_constant_is_the_keys_kernel() -> None:
    """D.3: with every W entry R and E = ε the MLP moves by exactly c R ε. D.6: ×2 bicubic taps sit at
    distances 1/4, 3/4, 5/4, 7/4; the Keys kernel (a = −3/4) there has |w| summing to 41/32, so an interior
    output's row of the separable matrix sums to (41/32)² = 1681/1024."""
    c, R, eps = 3, 2, Fraction(1, 2**10)
    graph = build("mlp", {"n": 1, "c": c, "d": 2}, {})
    x = np.array([[Fraction(1, 4), Fraction(-1, 2), Fraction(3, 8)]], dtype=object)
    w = np.full((c, 2), Fraction(R), dtype=object)
    b = np.zeros(2, dtype=object)
    out = [evaluate(graph, 64, {"X": v, "W": w, "b": b})["out"] for v in (x, x + eps)]
    assert error_checks.sup_gap(out[1], out[0]) == c * R * eps

    a = Fraction(-3, 4)

    def keys(t: Fraction) -> Fraction:
        t = abs(t)
        return (a + 2) * t**3 - (a + 3) * t**2 + 1 if t <= 1 else a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a

    row = sum(abs(keys(Fraction(k, 4))) for k in (1, 3, 5, 7))
    assert row == Fraction(41, 32)
    assert error_checks.upsample_norm(4) == error_checks.upsample_norm(8) == row * row


def test_lemma_c1_grid_constants_and_the_neuron_count_by_enumeration() -> None:
    """The grid [δ:δ:1]^d × [1+δ:δ:2]^d × …: least squared norm d δ² (token 1 at (δ, …, δ)), largest d L₀²,
    least squared distance δ² (one coordinate apart): all three printed constants fail. |G_δ| = (1/δ)^{dL₀}."""
    d, steps, tokens = GRID
    delta = Fraction(1, steps)
    points = [tuple(k + Fraction(i, steps) for i in idx) for k in range(tokens)
              for idx in itertools.product(range(1, steps + 1), repeat=d)]
    norms = [sum(v * v for v in p) for p in points]
    distances = [sum((u - v) ** 2 for u, v in zip(p, q)) for p, q in itertools.combinations(points, 2)]
    assert (min(norms), max(norms), min(distances)) == (d * delta**2, d * tokens**2, delta**2)
    assert not min(norms) > d and not max(norms) < d * (tokens - delta) ** 2 and not min(distances) > d * delta**2
    verdict = audit_claim(get("UA-LC.1"))
    assert verdict.verdict == "violated as printed" and verdict.corrected["verdict"] == "tight"
    assert quantized_inputs(2, 2, 3) == len(list(itertools.product(range(3), repeat=4))) == 3**4
    assert audit_claim(get("UA-L6.1")).verdict == "unchecked"


def test_every_failing_registry_claim_names_its_corrected_reading() -> None:
    for verdict in audit_claims():
        if verdict.verdict == "violated as printed":
            assert verdict.corrected and verdict.corrected["reading"] and verdict.corrected["verdict"] in VERDICTS


def test_corollary_7_1_on_flowar_chains() -> None:
    """Φ_down by 2 averages 2 × 2 blocks: as a matrix its rows are orthogonal with four entries 1/4, so its
    operator norm is √4/4 = 1/2 (1/r). The two-layer bound then holds on every chain, by construction."""
    from tc0sim.approx.flowar_chain import chain_weights, down_chain

    (down, attention) = down_chain(4, 2, 2, chain_weights(4, 2, 0, 0.5))
    assert down.lipschitz(1.0) == pytest.approx(0.5, rel=1e-12) and attention.attention
    verdict = audit_claim(get("UA-C7.1"))
    assert verdict.verdict == "by construction" and "FlowAR two-layer chains" in verdict.computed
    assert audit_claim(get("UA-C7.2")).verdict == "unchecked"


@pytest.mark.parametrize("field,message", [
    ("  nature: maybe\n", "nature 'maybe' is not one of bound, construction, existence"),
    ("  growth:\n  - {quantity: scale, param: scales, at: [1, 2, 3], n: 4}\n", "growth is measured for an O(1) depth claim"),
])
def test_schema_refuses_a_bad_nature_or_growth(field: str, message: str) -> None:
    from tc0sim.errors import ConfigError

    with pytest.raises(ConfigError, match="TEST-SHALLOW") as error:
        parse(TOO_SHALLOW + field, "<test>")
    assert message in str(error.value)
