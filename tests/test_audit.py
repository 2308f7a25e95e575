"""The audit engine (issue 5 items 3 and 6): verdicts against depths derived by hand from SPEC §3.

Every expected depth below is derived in the test from the SPEC lowering, one rounded primitive at a
time (a ``∘`` is one d_std, a ``⊕`` one d_sum, exp one d_exp, √ one d_sqrt; wiring is free), never
read from the code under test. Claims are the registry's, or synthetic ones built here.
"""

from __future__ import annotations

import dataclasses
import json
from fractions import Fraction
from typing import Any

import pytest

from tc0sim.audit.audit import FAILING, Verdict, audit_claim, audit_claims, audit_model, operation_count
from tc0sim.audit.render import render
from tc0sim import polyfit
from tc0sim.audit.claims import CLAIMS, Claim, Precondition, ProofStep, get
from tc0sim.errors import ConfigError
from tc0sim.kinds import KINDS, Kind, build, register
from tc0sim.ir.primitives import SYMBOLS
from tc0sim.modelfile import loads_model

SMALL_NS = (2, 3, 4)


def v(**counts: int) -> tuple[int, ...]:
    """A depth vector written by hand (independent of tc0sim.ir.vectors)."""
    return tuple(counts.get(s, 0) for s in SYMBOLS)


def plus(*vectors: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(sum(parts) for parts in zip(*vectors))


def text(vector: tuple[int, ...]) -> str:
    """The linear form as the papers write it: '3 d_std + 3 d_sum + d_exp'."""
    return " + ".join(s if c == 1 else f"{c} {s}" for s, c in zip(SYMBOLS, vector) if c) or "0"


def as_dict(vector: tuple[int, ...]) -> dict[str, int]:
    return {s: c for s, c in zip(SYMBOLS, vector) if c}


STD, SUM, EXP, SQRT = v(d_std=1), v(d_sum=1), v(d_exp=1), v(d_sqrt=1)
MATMUL = plus(STD, SUM)  # one layer of products, then one ⊕
MLP = plus(MATMUL, STD)  # X W, then + b
# FFN (SPEC §3): XW1 (d_std + d_sum), + b1 (d_std), relu (d_std), ·W2 (d_std + d_sum), + b2 (d_std), X + (d_std)
FFN = plus(MATMUL, STD, STD, MATMUL, STD, STD)
# LN (SPEC §3): μ = (⊕ X)/c: d_sum, d_std; Δ = X − μ: d_std; Δ·Δ: d_std; ⊕: d_sum; /c: d_std; √: d_sqrt; Δ/√: d_std
LAYERNORM = plus(SUM, STD, STD, STD, SUM, STD, SQRT, STD)
# A = exp((X (W_Q W_Kᵀ)) Xᵀ): three matmuls in a chain, then exp
ATTENTION_MATRIX = plus(MATMUL, MATMUL, MATMUL, EXP)
# Attention: out = Dinv · ((A X) W_V) with Dinv = 1/⊕_j A_ij. Branch via D: A, ⊕, 1/· = A + d_sum + d_std;
# branch via values: A, A X, ·W_V = A + 2 matmuls; the final product takes the longer (the second), + d_std.
ATTENTION = plus(ATTENTION_MATRIX, MATMUL, MATMUL, STD)
ATTENTION_VIA_D = plus(ATTENTION_MATRIX, SUM, STD, STD)


def claim(**overrides: Any) -> Claim:
    """A synthetic claim on matmul (n1 = d = n2 = n) unless overridden."""
    base = dict(
        id="TEST-1",
        paper="test",
        ref="Lemma T",
        title="synthetic",
        statement="a synthetic claim",
        check="sweep",
        depth=None,
        depth_o1=False,
        size="poly(n)",
        size_degree=None,
        runtime="",
        preconditions=(),
        steps=(),
        kind="matmul",
        dims={"n1": "n", "d": "n", "n2": "n"},
        unchecked=None,
        note="",
    )
    base.update(overrides)
    return Claim(**base)


@pytest.fixture(scope="module")
def chain_kind() -> str:
    """A kind whose depth grows with n: a chain of n additions (n d_std)."""

    def build_chain(b, dims, params):
        x = b.input("X", (2,))
        for _ in range(dims["n"]):
            x = b.add(x, x)
        return {"out": x}

    name = "test_audit_chain"
    register(Kind(name, ("n",), build_chain, "test"))
    yield name
    KINDS.pop(name)


# ------------------------------------------------------------------- hand-derived verdicts


@pytest.mark.parametrize(
    ("claim_id", "derived"),
    [
        ("VAR-L5.2", MATMUL),
        ("FlowAR-L4.1", MATMUL),
        ("VAR-L5.4", MLP),
        ("FlowAR-L4.4", MLP),
        ("FlowAR-L4.5", FFN),
        ("VAR-L5.5", LAYERNORM),
        ("FlowAR-L4.7", LAYERNORM),
        ("VAR-L5.3", ATTENTION_MATRIX),
    ],
)
def test_registry_claims_equal_to_hand_derivation_are_tight(claim_id: str, derived: tuple[int, ...]) -> None:
    paper_claim = get(claim_id)
    assert paper_claim.depth == as_dict(derived), "the paper's claim equals the hand derivation"
    verdict = audit_claim(paper_claim, SMALL_NS)
    assert verdict.verdict == "tight"
    assert verdict.claimed == text(derived)
    assert verdict.computed == text(derived)
    assert verdict.slack is None and verdict.path == []
    assert verdict.ns == list(SMALL_NS)


def test_attention_layer_claim_has_slack_one_sum() -> None:
    """FlowAR Lemma 4.6 claims 6(d_std + d_sum) + d_exp; the parallel D-branch saves one d_sum."""
    assert all(a <= b for a, b in zip(ATTENTION_VIA_D, ATTENTION)), "the D branch is the shorter one"
    verdict = audit_claim(get("FlowAR-L4.6"), SMALL_NS)
    claimed = v(d_std=6, d_sum=6, d_exp=1)
    assert verdict.verdict == "slack"
    assert verdict.computed == text(ATTENTION)
    assert verdict.slack == as_dict(tuple(a - b for a, b in zip(claimed, ATTENTION)))
    assert verdict.slack == {"d_sum": 1}


def test_flow_matching_claim_has_slack() -> None:
    """FlowAR Lemma 4.8 (SPEC §3 flow_matching), derived stage by stage on the longest chain.

    The MLP producing α, β, γ (Yhat + t: d_std, then MLP) runs in parallel with LN(Ft) and is shorter.
    γ1·LN + β1: 2 d_std. In the attention the weight product W_Q W_Kᵀ is ready long before its input,
    so the chain is X M, (X M) Xᵀ, exp, A X, ·W_V, ·Dinv. Then ·α1, LN, γ2·+β2, MLP, ·α2.
    """
    gamma_branch = plus(STD, MLP)
    ln = LAYERNORM
    assert all(a <= b for a, b in zip(gamma_branch, ln))
    attention_from_late_input = plus(MATMUL, MATMUL, EXP, MATMUL, MATMUL, STD)
    derived = plus(ln, STD, STD, attention_from_late_input, STD, ln, STD, STD, MLP, STD)
    assert derived == v(d_std=23, d_sum=9, d_exp=1, d_sqrt=2)
    verdict = audit_claim(get("FlowAR-L4.8"), SMALL_NS)
    assert verdict.verdict == "slack"
    assert verdict.computed == text(derived)
    assert verdict.slack == {"d_std": 3, "d_sum": 3}


# ------------------------------------------------------------------- each verdict kind


def test_too_small_claim_is_violated_with_the_path() -> None:
    verdict = audit_claim(claim(depth={"d_std": 1}, depth_o1=True), SMALL_NS)
    assert verdict.verdict == "violated"
    assert verdict.path == [("matmul", MATMUL)]
    assert any("exceeds the claim by 1 d_sum" in note for note in verdict.notes)


def test_too_large_claim_is_slack_by_the_difference() -> None:
    verdict = audit_claim(claim(depth={"d_std": 2, "d_sum": 1, "d_exp": 1}), SMALL_NS)
    assert verdict.verdict == "slack"
    assert verdict.slack == {"d_std": 1, "d_exp": 1}
    assert verdict.computed == text(MATMUL)


def test_incomparable_claim_is_violated() -> None:
    """3 d_std + d_exp is larger in d_std but has no d_sum: not ≤ componentwise."""
    verdict = audit_claim(claim(depth={"d_std": 3, "d_exp": 1}), SMALL_NS)
    assert verdict.verdict == "violated"


def test_failing_precondition_is_reported_by_name() -> None:
    pre = Precondition("d <= n", "d <= n")
    verdict = audit_claim(claim(depth={"d_std": 1, "d_sum": 1}, dims={"n1": "n", "d": "2*n", "n2": "n"}, preconditions=(pre,)), SMALL_NS)
    assert verdict.verdict == "precondition"
    failure = next(note for note in verdict.notes if "precondition 'd <= n'" in note)
    assert "n=2 (d=4, n=2)" in failure
    assert verdict.computed == text(MATMUL)


def test_holding_precondition_does_not_change_the_verdict() -> None:
    pre = Precondition("d <= n", "d <= n")
    verdict = audit_claim(claim(depth={"d_std": 1, "d_sum": 1}, preconditions=(pre,)), SMALL_NS)
    assert verdict.verdict == "tight"


def test_o1_claim_on_growing_depth_is_violated(chain_kind: str) -> None:
    verdict = audit_claim(claim(kind=chain_kind, dims={"n": "n"}, depth_o1=True), SMALL_NS)
    assert verdict.verdict == "violated"
    assert verdict.claimed == "O(1)"
    assert any("n=2: 2 d_std; n=3: 3 d_std; n=4: 4 d_std" in note for note in verdict.notes)
    assert verdict.path == [("(top)", v(d_std=4))]


def test_o1_claim_on_constant_depth_is_tight() -> None:
    verdict = audit_claim(claim(depth_o1=True), SMALL_NS)
    assert verdict.verdict == "tight"
    assert verdict.computed == text(MATMUL)


def test_o1_claim_on_one_instance_is_unchecked() -> None:
    spec = loads_model("kind: matmul\ndims: {n1: 2, d: 3, n2: 4}\n")
    (verdict,) = audit_model(spec, claims=[claim(depth_o1=True)])
    assert verdict.verdict == "unchecked"
    assert "one instance: O(1) depth needs an n sweep" in verdict.notes


def test_claim_without_kind_is_unchecked_with_the_reason() -> None:
    verdict = audit_claim(claim(check="unchecked", kind=None, dims={}, depth_o1=True, unchecked="about one gate"))
    assert verdict.verdict == "unchecked"
    assert verdict.notes[0] == "about one gate"


def test_registry_claim_without_kind_is_unchecked() -> None:
    verdict = audit_claim(get("VAR-L3.6"))
    assert verdict.verdict == "unchecked"
    assert verdict.notes[0] == get("VAR-L3.6").unchecked


# ------------------------------------------------------------------- proof steps


def test_steps_that_add_up_are_reported() -> None:
    steps = (ProofStep("products", {"d_std": 1}), ProofStep("sum", {"d_sum": 1}))
    verdict = audit_claim(claim(depth={"d_std": 1, "d_sum": 1}, steps=steps), SMALL_NS)
    assert "the proof's steps add up to the stated total d_std + d_sum" in verdict.notes


def test_steps_that_do_not_add_up_are_reported() -> None:
    steps = (ProofStep("products", {"d_std": 2}), ProofStep("sum", {"d_sum": 1}))
    verdict = audit_claim(claim(depth={"d_std": 1, "d_sum": 1}, steps=steps), SMALL_NS)
    assert any("do NOT add up: they sum to 2 d_std + d_sum" in note for note in verdict.notes)


def test_attention_proof_steps_do_not_add_up() -> None:
    """Seed 002 Lemma C.3 lists d_std+d_⊕, 2(d_std+d_⊕), d_exp, d_⊕, d_std, 2(d_std+d_⊕), d_std."""
    paper_sum = plus(MATMUL, MATMUL, MATMUL, EXP, SUM, STD, MATMUL, MATMUL, STD)
    assert paper_sum == v(d_std=7, d_sum=6, d_exp=1)
    verdict = audit_claim(get("FlowAR-L4.6"), SMALL_NS)
    expected = f"they sum to {text(paper_sum)}, the stated total is 6 d_std + 6 d_sum + d_exp"
    assert any(expected in note for note in verdict.notes)


# ------------------------------------------------------------------- sizes and runtime


def test_fit_polynomial_exact_and_verified() -> None:
    points = {n: n**3 + n**2 for n in (2, 3, 4, 5, 6, 7)}
    fit = polyfit.fit_and_verify(points, 2)
    assert fit.verified and fit.coefficients == [0, 0, 1, 1]
    assert fit.fitted_on == [2, 3, 4, 5] and fit.checked_on == [6, 7]
    halves = {n: Fraction(n * (n + 1), 2) for n in range(1, 6)}
    assert polyfit.fit_and_verify({n: int(y) for n, y in halves.items()}, 2).coefficients == [0, Fraction(1, 2), Fraction(1, 2)]
    assert polyfit.text([Fraction(0), Fraction(1, 2), Fraction(1, 2)]) == "1/2 n^2 + 1/2 n"
    assert polyfit.text([Fraction(4), Fraction(-3), Fraction(0), Fraction(-2)]) == "-2 n^3 - 3 n + 4"


def test_fit_polynomial_refuses_non_polynomials() -> None:
    fit = polyfit.fit_and_verify({n: 2**n for n in range(1, 8)}, 2)
    assert not fit.verified and fit.fitted_on == [1, 2, 3, 4, 5] and fit.failures == [6, 7]


def test_size_polynomial_of_matmul() -> None:
    """n1 = d = n2 = n: n·n·n products and n·n sums of fan-in n, so n^3 + n^2 gates."""
    verdict = audit_claim(claim(depth={"d_std": 1, "d_sum": 1}), SMALL_NS)
    assert verdict.size_polynomial == "n^3 + n^2"
    assert any("degree 3 in n" in note for note in verdict.notes)


def test_size_degree_above_the_stated_degree_is_violated() -> None:
    verdict = audit_claim(claim(depth={"d_std": 1, "d_sum": 1}, size_degree=2), SMALL_NS)
    assert verdict.verdict == "violated"
    assert any("size degree 3 exceeds the claimed degree 2" in note for note in verdict.notes)


def test_operation_count_counts_sum_fan_in() -> None:
    """matmul 2×3 by 3×4: 24 products, then 8 sums reading 3 terms each: 24 + 24 operations."""
    graph = build("matmul", {"n1": 2, "d": 3, "n2": 4})
    assert operation_count(graph) == 2 * 3 * 4 + 2 * 4 * 3


def test_runtime_proxy_compares_the_exponent() -> None:
    """A runtime claim n^{2+o(1)} on matmul n×n×n (2n^3 operations) is violated; n^{3+o(1)} is tight."""
    proxy = {"check": "runtime", "kind": "matmul", "dims": {"n1": "n", "d": "n", "n2": "n"}, "fixed": "nothing"}
    low = audit_claim(claim(id="TEST-RT", runtime="O(n^{2+o(1)})", **proxy), SMALL_NS)
    assert low.verdict == "violated"
    assert low.size_polynomial == "2 n^3"
    exact = audit_claim(claim(id="TEST-RT", runtime="O(n^{3+o(1)})", **proxy), SMALL_NS)
    assert exact.verdict == "tight"


def test_runtime_claims_of_flowar() -> None:
    """Lemma 5.2 (AAttC, d and g fixed) is linear in n; Lemma 5.6 (fast FlowAR) quadratic in the side n."""
    assert audit_claim(get("FlowAR-L5.2"), SMALL_NS).computed == "Θ(n) operations"
    fast = audit_claim(get("FlowAR-L5.6"), (2, 4, 6))
    assert fast.computed == "Θ(n^2) operations"
    assert fast.verdict == "tight"


# ------------------------------------------------------------------- model files


def test_audit_model_sweeps_files_that_use_n() -> None:
    spec = loads_model("kind: matmul\ndims: {n1: n, d: n, n2: 2*n}\nn: 2\n")
    verdicts = audit_model(spec, ns=(2, 3, 4))
    assert [x.id for x in verdicts] == ["VAR-L5.2", "FlowAR-L4.1"]
    assert all(x.verdict == "tight" and x.ns == [2, 3, 4] for x in verdicts)
    assert verdicts[0].size_polynomial == "2 n^3 + 2 n^2"


def test_audit_model_checks_preconditions_on_the_file() -> None:
    """Seed 004 Lemma 5.2 assumes d <= n: broken by d = 2n at every n, and by d = 5 with the file's n: 3."""
    swept = loads_model("kind: matmul\ndims: {n1: n, d: 2*n, n2: n}\n")
    var_l52 = next(x for x in audit_model(swept, ns=(2, 3)) if x.id == "VAR-L5.2")
    assert var_l52.verdict == "precondition"
    assert any("fails at n=2 (d=4, n=2), n=3 (d=6, n=3)" in note for note in var_l52.notes)
    fixed = loads_model("kind: matmul\ndims: {n1: 3, d: 5, n2: 3}\nn: 3\n")
    var_l52 = next(x for x in audit_model(fixed) if x.id == "VAR-L5.2")
    assert var_l52.verdict == "precondition"
    assert any("fails at the instance (d=5, n=3)" in note for note in var_l52.notes)


def test_audit_model_leaves_a_free_n_unchecked() -> None:
    """Without n in the file and with n1, d, n2 disagreeing, n is free: d <= n is not checked."""
    spec = loads_model("kind: matmul\ndims: {n1: 3, d: 5, n2: 3}\n")
    var_l52 = next(x for x in audit_model(spec) if x.id == "VAR-L5.2")
    assert var_l52.verdict == "tight"
    assert any("preconditions that read n are not checked" in note for note in var_l52.notes)


def test_audit_model_of_another_kind_has_no_claims() -> None:
    spec = loads_model("kind: flow\ndims: {h: 2, w: 2, c: 2}\n")
    assert audit_model(spec) == []


# ------------------------------------------------------------------- rendering and the docs


def test_render_json_schema() -> None:
    verdicts = [audit_claim(claim(depth={"d_std": 1}), SMALL_NS), audit_claim(get("VAR-L3.6"))]
    data = json.loads(render(verdicts, "json"))
    assert [c["id"] for c in data["claims"]] == ["TEST-1", "VAR-L3.6"]
    for entry in data["claims"]:
        assert {"id", "verdict", "claimed", "computed", "notes"} <= set(entry)
    assert data["claims"][0]["path"] == [{"operator": "matmul", "depth": "d_std + d_sum"}]


def test_render_text_and_markdown() -> None:
    verdicts = [audit_claim(get("FlowAR-L4.6"), SMALL_NS)]
    table = render(verdicts, "text")
    assert "FlowAR-L4.6" in table and "slack" in table
    markdown = render(verdicts, "markdown")
    assert markdown.startswith("| claim | reference | verdict | claimed | computed |")
    assert "does NOT add up to the stated total 6 d_std + 6 d_sum + d_exp" in markdown
    with pytest.raises(ConfigError):
        render(verdicts, "yaml")


def test_verdict_dataclass_fields() -> None:
    names = {f.name for f in dataclasses.fields(Verdict)}
    assert {"id", "verdict", "claimed", "computed", "notes", "slack", "path", "ns"} <= names


def test_every_registry_claim_with_a_kind_builds() -> None:
    """A registry claim whose dims do not fit its kind would silently stay unchecked."""
    for paper_claim in CLAIMS:
        if paper_claim.kind is None:
            continue
        verdict = audit_claim(paper_claim)
        assert verdict.ns, f"{paper_claim.id}: no instance built: {verdict.notes}"


def test_no_registry_claim_is_violated() -> None:
    """Only claims false as printed but holding under a stated corrected reading fail: FlowAR Lemma D.4
    (without AAttC's own error), UA Lemma 6.4 (growth for Lipschitz) and Lemma C.1's grid constants."""
    failing = {x.id: (x.verdict, x.corrected["verdict"]) for x in audit_claims() if x.verdict in FAILING}
    assert failing == {
        "FlowAR-LD.4": ("violated as printed", "slack"),
        "UA-L6.4": ("violated as printed", "slack"),
        "UA-LC.1": ("violated as printed", "tight"),
    }
