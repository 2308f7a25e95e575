"""The parameter schema of the kinds (tc0sim.ir.params): one validation path, its conversions, the
estimate checked against the build budget before building, and the hostile params of issue 33.

Expected values come from the rules as written in the issue and docs/model_files.md (exact
rationals, IEEE float64), never from the code under test.
"""

from __future__ import annotations

import math
import os
from fractions import Fraction
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tc0sim.errors import BudgetError, ConfigError
from tc0sim.ir.budget import BudgetedBuilder, BuildBudget
from tc0sim.ir.params import TYPES, Param, exact_text, validate
from tc0sim.kinds import KINDS, build, describe, get_kind, params_markdown
from tc0sim.modelfile import MAX_FILE_READ, load_model
from test_fuzz import HOSTILE, ROOT, assert_clean, run_batch

SCHEMA = [(kind.name, p) for kind in KINDS.values() for p in kind.params if p.type != "any"]
"""Every typed param of every kind."""

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**40), max_value=10**40),
    st.integers(min_value=-3, max_value=70000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["1e400", "1e-3", "1/3", "1/0", "0x10", "nan", "inf", "9" * 200, " 2 ", "S", "exact", "aattc"]),
    st.lists(st.integers(min_value=-(10**16), max_value=10**16), max_size=6),
    st.lists(st.one_of(st.booleans(), st.text(max_size=2), st.floats()), max_size=3),
    st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
)


def _obeys(p: Param, value) -> bool:
    """Whether a validated value obeys the param's rule, checked directly from the Param's fields."""
    if value is None:
        return p.nullable
    items = value if p.type == "ints" else [value]
    types = {"int": int, "ints": int, "real": float, "rational": Fraction, "bool": bool, "str": str}
    if any(type(v) is not types[p.type] for v in items):
        return False
    if p.type == "real" and not math.isfinite(value):
        return False
    if p.type == "ints":
        if len(items) < p.min_len or (p.max_len is not None and len(items) > p.max_len):
            return False
        if p.increasing and any(a >= b for a, b in zip(items, items[1:])):
            return False
    in_range = all((p.min is None or v >= p.min) and (p.max is None or v <= p.max) for v in items) if p.type not in ("bool", "str") else True
    return in_range and (not p.choices or value in p.choices)


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SCHEMA), _values)
def test_a_random_value_is_accepted_only_when_it_obeys_the_rule(entry, value):
    """Any value of any typed param: a ConfigError naming the param, or a value that obeys the rule."""
    name, param = entry
    kind = get_kind(name)
    try:
        out = validate(kind, {param.name: value})
    except ConfigError as e:
        text = str(e)
        assert "\n" not in text and len(text) < 600
        assert f"'{param.name}'" in text, text
        return
    assert _obeys(param, out[param.name]), (name, param.name, value, out[param.name])


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([(k.name, p) for k in KINDS.values() for p in k.params if p.type == "any"]), _values)
def test_a_structured_param_never_raises_another_exception(entry, value):
    name, param = entry
    try:
        validate(get_kind(name), {param.name: value})
    except ConfigError as e:
        assert "\n" not in str(e)


@pytest.mark.parametrize(
    "value, exact",
    [
        (0.1, Fraction(1, 10)),  # a float at its shortest decimal (as the released FlowAR code's str())
        ("0.2325", Fraction(2325, 10000)),
        ("1/3", Fraction(1, 3)),
        ("-2/6", Fraction(-1, 3)),
        ("1e-3", Fraction(1, 1000)),
        (" 2.5E2 ", Fraction(250)),
        (7, Fraction(7)),
        (Fraction(5, 7), Fraction(5, 7)),
    ],
)
def test_a_rational_is_read_exactly(value, exact):
    assert TYPES["rational"].convert(value) == exact


@pytest.mark.parametrize("text", ["1e101", "1e-101", "1" * 101, "1/0", "0x10", "1/2/3", "nan", "inf", "", "1e99999999999"])
def test_a_number_text_beyond_the_limits_is_refused(text):
    with pytest.raises(ConfigError):
        exact_text(text)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), True, None, "x", [1.0], 10**400])
def test_a_real_is_finite(value):
    p = Param("r", "real", 1.0)
    kind = type("K", (), {"name": "k", "params": (p,), "rules": ()})
    with pytest.raises(ConfigError, match=r"^k: param 'r' must be a number"):
        validate(kind, {"r": value})


def test_a_real_read_from_text_is_the_float_of_the_text():
    p = Param("r", "real", 1.0)
    kind = type("K", (), {"name": "k", "params": (p,), "rules": ()})
    assert validate(kind, {"r": "1e-3"})["r"] == 0.001
    assert validate(kind, {"r": 3})["r"] == 3.0 and isinstance(validate(kind, {"r": 3})["r"], float)


def test_list_rules_and_their_message():
    p = Param("s", "ints", [1, 2], min=1, max=9, min_len=2, max_len=3, increasing=True)
    kind = type("K", (), {"name": "k", "params": (p,), "rules": ()})
    assert validate(kind, {"s": [1, 5, 9]})["s"] == [1, 5, 9]
    for bad in ([1], [1, 2, 3, 4], [2, 2], [3, 1], [0, 1], [1, 10], [1, True], "12", [1.0, 2.0]):
        with pytest.raises(ConfigError, match=r"^k: param 's' must be a list of 2 to 3 integers, strictly increasing, each in \[1, 9\], got "):
            validate(kind, {"s": bad})


def test_choices_name_the_param_the_value_and_the_choices():
    with pytest.raises(ConfigError, match=r"^flowar_release: param 'variant' must be one of S, L, H, got \['S'\]$"):
        validate(get_kind("flowar_release"), {"variant": ["S"]})
    with pytest.raises(ConfigError, match=r"unknown variant 'XL'; expected one of S, L, H \(param 'variant'\)"):
        validate(get_kind("flowar_release"), {"variant": "XL"})


def test_divisibility_rule():
    p = Param("c", "int", 8, divisible_by=4)
    kind = type("K", (), {"name": "k", "params": (p,), "rules": ()})
    assert validate(kind, {"c": 12})["c"] == 12
    with pytest.raises(ConfigError, match=r"param 'c' must be an integer divisible by 4, got 10"):
        validate(kind, {"c": 10})


def test_cross_parameter_rules_run_on_the_validated_params():
    with pytest.raises(ConfigError, match=r"^var_release: 3 heads do not divide width 100 \(params 'heads', 'width'\)$"):
        validate(get_kind("var_release"), {"width": 100, "heads": 3})
    with pytest.raises(ConfigError, match=r"round\(1024 · 0\.0001\) = 0"):  # VAR-d16: width 64 · 16
        validate(get_kind("var_release"), {"mlp_ratio": 0.0001})
    with pytest.raises(ConfigError, match=r"'vae_scale' must be > 0"):
        validate(get_kind("flowar_release"), {"vae_scale": 0})
    with pytest.raises(ConfigError, match=r"param 'lo' = 1 exceeds param 'hi' = 0"):
        validate(get_kind("clamp"), {"lo": 1, "hi": 0})


def test_every_default_obeys_its_own_rule():
    for name, kind in KINDS.items():
        out = kind.validate({})
        for p in kind.params:
            if p.type != "any":
                assert _obeys(p, out[p.name]), (name, p.name)


def test_unknown_and_unhashable_param_names_are_config_errors():
    with pytest.raises(ConfigError, match=r"kind 'matmul' has no param\(s\) depth; it takes none"):
        build("matmul", {"n1": 1, "d": 1, "n2": 1}, {"depth": 3})


def test_describe_reads_the_schema():
    kinds = {k["name"]: k for k in describe()}
    assert set(kinds) == set(KINDS)
    steps = next(p for p in kinds["flowar_release"]["params"] if p["name"] == "steps")
    assert steps == {"name": "steps", "type": "int", "default": None, "rule": "an integer in [2, 10000], or null",
                     "doc": steps["doc"]} and steps["doc"]
    assert "| `var_release` | `scales` | null | a list of 2 to 256 integers, strictly increasing" in params_markdown()


# ---------------------------------------------------------------------- the estimate and the budget


@pytest.mark.parametrize(
    "kind, params",
    [
        ("var_release", {"depth": 2, "width": 32, "heads": 2, "scales": [1, 2, 3], "codebook": 16, "vae_channels": 4,
                         "classes": 5, "decoder_ch": 8, "decoder_levels": [1, 2], "decoder_res_blocks": 1, "decoder_groups": 4,
                             "top_k": 5}),
        ("var_release", {"depth": 1, "width": 16, "heads": 1, "scales": [1, 4], "codebook": 64, "vae_channels": 4,
                         "classes": 2, "decoder_ch": 8, "decoder_levels": [1, 1, 2], "decoder_groups": 8, "phi_count": 0,
                             "top_k": 64}),
        ("flowar_release", {"width": 32, "heads": 2, "blocks": 1, "head_width": 32, "head_heads": 2, "head_blocks": 2,
                            "scales": [1, 2], "steps": 4, "classes": 3, "latent_channels": 4, "vae": False}),
        ("flowar_release", {"width": 32, "heads": 2, "blocks": 2, "head_width": 32, "head_heads": 2, "head_blocks": 1,
                            "scales": [1, 2, 3], "steps": 2, "classes": 3, "latent_channels": 4, "cross": True,
                            "vae_channels": 32, "vae_mult": [1, 1], "vae_res_blocks": 0, "attention": "aattc"}),
    ],
)
@pytest.mark.parametrize("share", [False, True])
def test_the_estimate_is_a_lower_bound_of_the_build(kind, params, share):
    """What the estimate promises (nodes and bytes) is at most what the budgeted builder counts."""
    info = get_kind(kind)
    full = info.validate(params)
    nodes, size = info.estimate({}, full)
    b = BudgetedBuilder(BuildBudget(), kind, share)
    info.build(b, {}, full)
    assert 0 < nodes <= b.nodes and size <= b.bytes, (nodes, b.nodes, size, b.bytes)


def test_the_estimate_refuses_before_building_and_names_the_param():
    with pytest.raises(BudgetError, match=r"^param 'steps' = 10000: flowar_release \(\) has more than 10,000 tensor nodes .*--max-nodes"):
        build("flowar_release", {}, {"steps": 10_000}, BuildBudget(max_nodes=10_000))
    with pytest.raises(BudgetError, match=r"^params 'attention' = 'aattc', 'aattc_degree' = 1000: .*needs more than 10\^\d+ bytes.*--max-memory"):
        build("flowar_release", {}, {"attention": "aattc", "aattc_degree": 1000}, BuildBudget())
    with pytest.raises(BudgetError, match=r"^param 'layers' = 100000: var \(h=4, w=4, c=2\) has more than"):
        build("var", {"h": 4, "w": 4, "c": 2}, {"layers": 100_000}, BuildBudget())


# ----------------------------------------------------------------------- model files and issue 33

ISSUE_33 = {
    "param_var_release_scale_1e15.yaml": "'scales'",
    "param_flowar_release_variant_list.yaml": "'variant' must be one of S, L, H",
    "param_flowar_release_mlp_ratio_nan.yaml": "'mlp_ratio'",
    "param_var_release_mlp_ratio_hidden_0.yaml": "'mlp_ratio'",
    "param_var_release_width_huge.yaml": "'width' must be an integer in [1, 65536], or null",
    "param_var_release_codebook_huge.yaml": "'codebook'",
    "param_var_release_phi_count_huge.yaml": "'phi_count'",
    "param_flowar_release_latent_huge.yaml": "'latent_channels'",
    "param_var_release_many_scales.yaml": "'scales'",
    "param_flowar_release_many_scales.yaml": "'scales'",
    "param_flowar_release_steps_1e9_text.yaml": "'steps'",
    "param_flowar_release_steps_1e9.yaml": "'steps' must be an integer in [2, 10000], or null",
    "param_flowar_release_guidance_inf.yaml": "'guidance'",
    "param_flowar_release_cfg_1e400_text.yaml": "'cfg'",
    "param_flowar_release_vae_scale_1e400.yaml": "'vae_scale'",
    "param_flowar_release_vae_scale_0.yaml": "'vae_scale' must be > 0",
    "param_flowar_release_aattc_degree_huge.yaml": "'aattc_degree'",
    "param_var_release_depth_huge.yaml": "'depth' = 1000000000",
    "param_var_release_decoder_levels_long.yaml": "'decoder_levels'",
    "param_flowar_release_head_blocks_huge.yaml": "'head_blocks' = 100000000",
}
"""The hostile params of issue 33 (files in tests/hostile/) and what their one error line must say."""
BUILT_ONLY = {"param_flowar_release_aattc_degree_huge.yaml", "param_var_release_depth_huge.yaml",
              "param_flowar_release_head_blocks_huge.yaml"}
"""Files valid by the schema and refused by the build budget (from the estimate): ``audit`` builds nothing."""


def test_issue_33_params_are_one_line_refusals_in_every_command(tmp_path):
    """Under a 3 GB address-space limit and 20 s per case (tests/test_fuzz.py's driver)."""
    assert sorted(ISSUE_33) == sorted(p.name for p in HOSTILE.glob("param_*.yaml"))
    cases = []
    for name in ISSUE_33:
        rel = (HOSTILE / name).relative_to(ROOT)
        cases += [["depth", rel], ["size", rel], ["eval", rel, "--precision", "24", "--output", tmp_path / "o.json"],
                  ["graph", rel, "--output", tmp_path / "g.json"], ["audit", rel]]
    cases += [["depth", "/dev/zero"], ["size", "/dev/urandom"]]
    for case in run_batch(cases, tmp_path):
        assert_clean(case)
        name = Path(case["args"][1]).name
        if case["args"][0] == "audit" and name in BUILT_ONLY:
            assert case["exit"] in (0, 2), case  # the released models' audit reads a closed form, builds nothing
        else:
            assert case["exit"] == 2, case
        if case["args"][0] == "depth":
            assert case["seconds"] < 10, case  # refused from the params, before anything grows
        if case["exit"] == 2 and name in ISSUE_33:
            assert ISSUE_33[name] in case["stderr"], case["stderr"]
        if name in ("zero", "urandom"):
            assert "not read further" in case["stderr"] or "UTF-8" in case["stderr"], case["stderr"]


def test_a_device_is_read_no_further_than_the_limit():
    with pytest.raises(ConfigError, match=rf"/dev/zero: the model device or pipe gives more than {MAX_FILE_READ:,} bytes"):
        load_model("/dev/zero")


def test_a_regular_file_above_the_limit_is_refused_from_its_size(tmp_path):
    path = tmp_path / "big.yaml"
    with open(path, "wb") as f:
        f.truncate(10**12)  # sparse: reading it would take minutes
    with pytest.raises(ConfigError, match=rf"is 1,000,000,000,000 bytes, more than the limit of {MAX_FILE_READ:,}"):
        load_model(path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_without_a_writer_reads_as_empty(tmp_path):
    path = tmp_path / "pipe.yaml"
    os.mkfifo(path)
    with pytest.raises(ConfigError, match="empty model file"):
        load_model(path)
