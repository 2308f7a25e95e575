"""The audit of FlowAR as released: the stored closed form of the depth is re-fitted and verified on
held-out configurations, its assumptions (depth independent of widths; the VAE adds a constant) are
checked against the depth interpreter, and Theorem 4.9's preconditions are judged per variant."""

from __future__ import annotations

from fractions import Fraction

import pytest

from tc0sim.audit.flowar_release import (
    FORMS, HELD_OUT, _config, closed_form, euler_steps, fit_depth, theorem_4_9, unguided_steps, vae_depth,
)
from tc0sim.interp.depth import depth
from tc0sim.ir.graph import Builder
from tc0sim.ir.vectors import add, pareto_max
from tc0sim.kinds import build
from tc0sim.models.vae_decoder import DecoderConfig, vae_decoder


def test_block_v2_form_refits_to_the_stored_one_and_holds_out():
    form = fit_depth(True)
    assert form.coefficients == FORMS[True]
    assert len(form.verified) == len(HELD_OUT)


@pytest.mark.parametrize("point", [{"K": 4, "L": 2, "B": 2, "steps": 6, "guidance": "3/4"},
                                   {"K": 2, "L": 3, "B": 3, "steps": 5, "guidance": "1"}])
def test_block_v1_form_predicts_held_out_depths(point):
    direct = sorted(depth(build("flowar_release", {}, _config(point, False))).critical)
    S, u = euler_steps(point["steps"]), unguided_steps(point["steps"], Fraction(point["guidance"]))
    assert closed_form(False).at(point["K"], point["L"], point["B"], S, u) == direct


def test_depth_does_not_depend_on_widths():
    point = {"K": 3, "L": 1, "B": 1, "steps": 4, "guidance": "9/10"}
    narrow = _config(point, True)
    wide = dict(narrow, width=24, heads=3, head_width=32, head_heads=2, classes=5)
    assert depth(build("flowar_release", {}, narrow)).critical == depth(build("flowar_release", {}, wide)).critical


def test_vae_depth_adds_to_the_sampler_and_ignores_channels():
    params = dict(_config({"K": 2, "L": 1, "B": 1, "steps": 2, "guidance": "1"}, True), vae=True, vae_channels=32,
                  vae_mult=[1, 2], vae_res_blocks=1)
    full = depth(build("flowar_release", {}, params)).critical
    sampler = depth(build("flowar_release", {}, dict(params, vae=False))).critical
    cfg = DecoderConfig(32, (1, 2), 1, 16, 3, frozenset(), True, False, 32, (16, 1))
    assert full == pareto_max(add(a, v) for a in sampler for v in vae_depth(cfg))
    b = Builder()
    z = b.input("z", (2, 2, 16))
    b.output("out", vae_decoder(b, b.div(z, b.constant(1)), cfg))
    assert depth(b.graph).critical == vae_depth(cfg)


@pytest.mark.parametrize("variant", ["S", "L", "H"])
def test_theorem_4_9_preconditions_per_variant(variant):
    verdict = theorem_4_9(variant)
    assert verdict["readings"] == {"side": 16, "tokens": 1 + 4 + 16 + 64 + 256, "pixels": (16 * 16) ** 2}  # KL-16 VAE
    holds = {p["text"]: p["holds"] for p in verdict["preconditions"]}
    assert holds["h = w = n"] == {"side": True, "tokens": False, "pixels": False}
    assert holds["c ≤ n"] == {"side": False, "tokens": False, "pixels": True}  # widths ≥ 768 > 341 tokens
    assert holds["K = O(1)"] is None and holds["p ≤ poly(n)"] is None  # not decidable on a fixed configuration
    assert verdict["verdict"] == "precondition" and verdict["joint"] == [] and verdict["failed"] == []
    assert "fixed configuration: asymptotic hypotheses are not decidable" in verdict["summary"]
    assert any("erf" in t for t in verdict["outside_primitives"])


def test_audit_of_a_released_file(tmp_path):
    from tc0sim.reports import audit_report

    path = tmp_path / "h.yaml"
    path.write_text("kind: flowar_release\nvariant: H\n")
    report = audit_report([path])
    assert not report.violated
    (verdict,) = report.as_dict()["claims"]
    assert verdict["id"] == "FlowAR-T4.9" and verdict["verdict"] == "precondition"
    assert "d_erf" in verdict["computed"] and not any("K = O(1): fails" in n for n in verdict["notes"])
    status = {h["text"]: h["status"] for h in verdict["hypotheses"]}
    assert status["K = O(1)"].startswith("not machine-checkable") and status["c ≤ n"].startswith("holds for n = pixels")
    assert any("no reading of n satisfies" in n and "each added scale adds" in n for n in verdict["notes"])


def test_closed_form_equals_the_direct_depth_of_flowar_s():
    """The whole released FlowAR-S circuit (VAE included), through the depth interpreter, has exactly the
    closed form's critical vectors at K = 5, L = 6, B = 2, S = 24, u = 2."""
    from tc0sim.audit.flowar_release import released_depth

    direct = depth(build("flowar_release", {}, {"variant": "S"}))
    assert direct.exact
    assert sorted(direct.critical) == sorted(released_depth("S")["critical"])
