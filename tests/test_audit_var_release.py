"""The audit of released VAR: the bilinear fit, the depth proxy, the closed form and the verdicts."""

from __future__ import annotations

from fractions import Fraction

from tc0sim.audit.var_release import (
    PROXY, Bilinear, agrees, closed_form, fit_bilinear, longest_contraction, proxy_depth, verdict, verdict_of,
)
from tc0sim.interp.depth import depth
from tc0sim.ir.primitives import SYMBOLS
from tc0sim.kinds import build
from tc0sim.models.var_release import parse_config


def test_fit_bilinear_recovers_a_known_form_and_refuses_others() -> None:
    points = [(1, 2), (2, 2), (1, 3), (2, 3), (5, 7)]
    truth = lambda l, k: Fraction(7, 2) * k * l - 3 * k + 11  # noqa: E731
    form = fit_bilinear(points, [truth(l, k) for l, k in points])
    assert form == Bilinear(Fraction(7, 2), Fraction(-3), Fraction(11))
    assert fit_bilinear(points, [k * l + l for l, k in points]) is None  # an L term: not of the form


MID = {"depth": 2, "scales": [1, 2, 3], "codebook": 64, "top_k": 9, "top_p": 0.9, "classes": 20}


def test_depth_proxy_equals_the_full_graph() -> None:
    """Widths, heads and channels do not move the critical set (a ⊕ is one gate at any fan-in)."""
    full = depth(build("var_release", {}, {**MID, "width": 128, "heads": 2, "vae_channels": 4, "decoder_ch": 64}))
    critical, maxima, _ = proxy_depth(MID)
    assert sorted(full.critical) == sorted(critical)
    assert dict(full.per_symbol) == maxima


def test_closed_form_is_verified_on_held_out_configurations() -> None:
    form = closed_form()
    assert form.verified and len(form.checked) >= 3
    # one more configuration, computed directly here
    _, maxima, number = proxy_depth({"depth": 2, "scales": [1, 2, 3, 4]})
    assert form.maxima(4, 2) == {s: maxima[s] for s in SYMBOLS}
    assert form.unit(4, 2) == number
    assert agrees(form, {"shared_aln": True}, [(2, 2)])


def test_verdicts_of_the_released_configurations() -> None:
    v = verdict(16, 256, {"add", "mul", "sum", "exp", "compare"})
    assert v.primitives_ok and v.scales == 10 and v.tokens == 680
    assert v.readings == {"tokens": 680, "pixels": 256 * 256, "side": 256}  # Σ pn² of the 256 px list; 256²; 256
    assert len(v.failing) == 2 and "5,760 > n for n = tokens 680, side 256" in v.failing[0]
    assert "1,024 > n for n = tokens 680, side 256" in v.failing[1] and "holds for n = pixels 65,536" in v.failing[1]
    assert v.joint == ("pixels",) and v.word == "unchecked"
    assert not any("O(1)" in text for text in v.failing)  # asymptotic hypotheses are not templated as failing
    tiny = verdict_of(parse_config({"depth": 1, "scales": [1, 2], "width": 1024, "heads": 1}), set())
    # final map 2 × 2 latent → 32 px: n = 5 tokens, 1,024 pixels, side 32; the decoder conv reads 9 · 640 > all three
    assert tiny.readings == {"tokens": 5, "pixels": 1024, "side": 32}
    assert tiny.word == "precondition" and tiny.joint == ()
    assert not verdict(16, 256, {"add", "erf"}).primitives_ok
    assert longest_contraction(parse_config({"depth": 30})) == (7680, "fc2 reads 7680 hidden units")
    assert verdict(16, 1024, set()).scales == 14


def test_proxy_keeps_the_released_structure() -> None:
    assert set(PROXY) <= set(parse_config({}).__dataclass_fields__) | {"decoder_ch"}


def test_audit_of_a_released_model_file_gives_the_theorem_verdict_and_the_exact_depth():
    """`tc0sim audit examples/var_d16.yaml`: Theorem 5.11's failing preconditions for VAR-d16 and the
    exact critical depth of the whole circuit, which the closed form in K and L reproduces."""
    from tc0sim.audit.audit import audit_model
    from tc0sim.ir.vectors import fmt
    from tc0sim.modelfile import load_model

    spec = load_model("examples/var_d16.yaml")
    (v,) = audit_model(spec)
    exact = depth(build("var_release", {}, spec.params_at(None), share=True)).critical
    assert v.computed.startswith(fmt(exact[0])) and f"{len(exact) - 1} more" in v.computed
    notes = " ".join(v.notes)
    assert (v.id, v.verdict) == ("VAR-T5.11", "unchecked")
    assert "fixed configuration: asymptotic hypotheses are not decidable" in notes and "it agrees with the exact" in notes
    status = {h["text"].split(" (")[0]: h["status"] for h in v.hypotheses}
    assert status["width ≤ n"].startswith("holds for n = pixels 65,536; fails for n = tokens 680, side 256")
    assert status["m = O(1) transformer layers"].startswith("not machine-checkable")
