"""The FlowAR model (seed 002 Definition B.13, Theorem 4.9).

Oracles: tests/reference_models.py (independent numpy float64 and exact-rational implementations of
Definitions B.1–B.13), the scalar expansion of the DAG for the depth, the paper's per-lemma depths for
the upper bound, and finite differences for the polynomial size.
"""

from __future__ import annotations

from fractions import Fraction

import pytest

import reference_models as RM
from tc0sim.errors import ConfigError
from tc0sim.interp.depth import depth
from tc0sim.interp.evaluate import evaluate
from tc0sim.interp.expand import expand, scalar_depth
from tc0sim.interp.size import size
from tc0sim.ir.vectors import vec
from tc0sim.kinds import build


# p = 53 against float64: one rounding per primitive (DAG) against numpy's rounding per pairwise
# addition — a few units of 2^-53 per primitive along ~80-primitive paths. Inputs of scale 0.4 keep
# the attention scores below 1 and the layer-norm rows far from constant, so nothing amplifies these
# errors beyond ~1e-14 (measured); 1e-9 keeps a wide margin while a wrong formula, time or wiring
# moves the output by 1e-2 or more.
TOLERANCE = 1e-9
SCALE = 0.4

CONFIGS = [
    ({"h": 4, "w": 4, "c": 2}, {}),
    ({"h": 4, "w": 8, "c": 3}, {"K": 3, "t": [0, "1/3", 1], "flow": "bezier"}),
    ({"h": 4, "w": 4, "c": 2}, {"K": 2, "t": 0.25, "layers": 2, "mode": "training"}),
    ({"h": 3, "w": 3, "c": 2}, {"K": 2, "a": 3, "flow": "bezier", "mode": "training"}),
]


def _reference(values: dict, arith, dims: dict, params: dict) -> dict:
    full = {"K": 2, "a": 2, "t": "1/2", "flow": "linear", "layers": 1, "mode": "inference", **params}
    times = full["t"] if isinstance(full["t"], list) else [full["t"]] * full["K"]
    times = [Fraction(str(t)) for t in times]
    return RM.flowar_reference(
        values, arith, dims["h"], dims["w"], full["K"], full["a"], times, full["flow"], full["layers"], full["mode"]
    )


@pytest.mark.parametrize("dims, params", CONFIGS)
def test_p53_evaluation_matches_float64_reference(dims: dict, params: dict) -> None:
    graph = build("flowar", dims, params)
    values = RM.draw_inputs(RM.input_shapes(graph), seed=5, scale=SCALE)
    got = evaluate(graph, 53, inputs=values)
    want = _reference(values, RM.Float64(), dims, params)
    assert set(got) == set(want)
    for name in got:
        assert got[name].shape == want[name].shape
        assert RM.normwise_error(got[name], want[name]) < TOLERANCE, name


@pytest.mark.parametrize("p", [11, 24])
@pytest.mark.parametrize("params", [{"flow": "linear", "t": ["1/3", "3/4"]}, {"flow": "bezier", "mode": "training"}])
def test_low_precision_is_bit_identical_to_rounded_rational_oracle(p: int, params: dict) -> None:
    dims = {"h": 2, "w": 2, "c": 2}
    graph = build("flowar", dims, params)
    values = RM.draw_inputs(RM.input_shapes(graph), seed=13, scale=SCALE)
    got = evaluate(graph, p, inputs=values)
    want = _reference(values, RM.Rational(p), dims, params)
    for name in got:
        assert (RM.as_fractions(got[name]) == want[name]).all(), name


def test_output_is_the_last_scale_and_every_scale_is_reported() -> None:
    graph = build("flowar", {"h": 8, "w": 4, "c": 2}, {"K": 3})
    shapes = {name: graph.node(node_id).shape for name, node_id in graph.outputs.items()}
    assert shapes == {"out": (8, 4, 2), "scale1": (2, 1, 2), "scale2": (4, 2, 2), "scale3": (8, 4, 2)}
    assert graph.outputs["out"] == graph.outputs["scale3"]
    roles = {name: graph.node(node_id).attrs["role"] for name, node_id in graph.inputs.items()}
    assert sorted(n for n, r in roles.items() if r == "input") == ["F0_1", "F0_2", "F0_3", "Z_init"]
    assert graph.node(graph.inputs["Z_init"]).shape == (2, 1, 2)
    assert {"L1.W_Q", "L3.FFN.b2", "NN2.W_ada", "NN3.b_mlp"} <= {n for n, r in roles.items() if r == "weight"}


@pytest.mark.parametrize("mode, flow", [("inference", "linear"), ("inference", "bezier"), ("training", "linear")])
def test_depth_is_the_same_at_three_sizes_and_equals_the_scalar_expansion(mode: str, flow: str) -> None:
    """Theorem 4.9: O(1) depth for K = O(1) — the critical vector is independent of h = w = n and c."""
    params = {"K": 2, "mode": mode, "flow": flow}
    criticals = [depth(build("flowar", {"h": n, "w": n, "c": c}, params)).critical for n, c in ((2, 2), (4, 3), (8, 4))]
    assert criticals[0] == criticals[1] == criticals[2]
    assert scalar_depth(expand(build("flowar", {"h": 2, "w": 2, "c": 2}, params))) == criticals[0]


def test_inference_depth_grows_with_k_but_teacher_forcing_does_not() -> None:
    """Inference is sequential over the K scales (Ỹ_i feeds scale i + 1); with teacher forcing the
    scales only read the tokenizer, so their circuits are side by side."""
    def critical(K: int, mode: str):
        return depth(build("flowar", {"h": 8, "w": 8, "c": 2}, {"K": K, "mode": mode})).critical

    assert critical(2, "inference") != critical(3, "inference")
    assert critical(2, "training") == critical(3, "training")


def test_depth_within_the_papers_per_lemma_bounds() -> None:
    """Theorem 4.9's proof composes, per scale: upsampling (L4.2: 2d_std + d_sum), Attn (L4.6:
    6(d_std + d_sum) + d_exp), FFN (L4.5: 6d_std + 2d_sum), the flow (B.10: 2d_std; B.11: 3d_std + d_sum)
    and flow matching (L4.8: 26d_std + 12d_sum + 2d_sqrt + d_exp)."""
    upsample, attn, ffn = vec(d_std=2, d_sum=1), vec(d_std=6, d_sum=6, d_exp=1), vec(d_std=6, d_sum=2)
    nn = vec(d_std=26, d_sum=12, d_sqrt=2, d_exp=1)
    for flow, flow_depth in (("linear", vec(d_std=2)), ("bezier", vec(d_std=3, d_sum=1))):
        per_scale = [a + b + c + d + e for a, b, c, d, e in zip(upsample, attn, ffn, flow_depth, nn)]
        for K in (1, 2, 3):
            bound = tuple(K * x for x in per_scale)
            assert depth(build("flowar", {"h": 8, "w": 8, "c": 2}, {"K": K, "flow": flow})).holds(bound)


def test_size_is_a_degree_four_polynomial_in_n() -> None:
    """Theorem 4.9: poly(n) size; attention over Θ(n²) tokens makes it degree 4 in h = w = n (the
    n^4 of Lemma 5.5): 5th finite differences vanish, 4th are a non-zero constant (n even, K = a = 2)."""
    totals = [Fraction(size(build("flowar", {"h": n, "w": n, "c": 2}, {"K": 2})).total) for n in range(2, 16, 2)]
    for order in range(1, 6):
        totals = [b - a for a, b in zip(totals, totals[1:])]
        if order == 4:
            assert all(d == totals[0] != 0 for d in totals)
    assert totals == [0, 0]


def test_training_mode_downsamples_the_latent() -> None:
    graph = build("flowar", {"h": 8, "w": 8, "c": 2}, {"K": 3, "mode": "training"})
    operators = size(graph).by_operator
    assert any(k.startswith("flowar/tokenizer/downsample") for k in operators)
    assert graph.node(graph.inputs["X"]).shape == (8, 8, 2)


@pytest.mark.parametrize(
    "dims, params, message",
    [
        ({"h": 6, "w": 8, "c": 2}, {"K": 3}, r"r_1 = a\^\(K−1\) = 2\^2 = 4 does not divide h = 6"),
        ({"h": 8, "w": 6, "c": 2}, {"K": 3}, r"4 does not divide w = 6"),
        ({"h": 4, "w": 4, "c": 2}, {"K": 2, "a": 3}, r"= 3 does not divide h = 4"),
        ({"h": 4, "w": 4, "c": 2}, {"K": 0}, r"'K' must be an integer ≥ 1, got 0"),
        ({"h": 4, "w": 4, "c": 2}, {"a": 0}, r"'a' must be an integer ≥ 1, got 0"),
        ({"h": 4, "w": 4, "c": 2}, {"t": 1.5}, r"flow time t_1: flow time t=3/2 outside \[0, 1\]"),
        ({"h": 4, "w": 4, "c": 2}, {"t": [0.5, -0.25]}, r"flow time t_2: .*outside \[0, 1\]"),
        ({"h": 4, "w": 4, "c": 2}, {"t": [0.5]}, r"lists 1 flow times for K = 2 scales"),
        ({"h": 4, "w": 4, "c": 2}, {"t": "soon"}, r"flow time t_1: .*not a number"),
        ({"h": 4, "w": 4, "c": 2}, {"flow": "cubic"}, r"unknown flow type 'cubic'; expected one of linear, bezier"),
        ({"h": 4, "w": 4, "c": 2}, {"mode": "sampling"}, r"unknown mode 'sampling'; expected one of inference, training"),
        ({"h": 4, "w": 4, "c": 2}, {"layers": 0}, r"'layers' must be an integer ≥ 1, got 0"),
        ({"h": 4, "w": 4, "c": 2}, {"g": 2}, r"no param\(s\) g"),
    ],
)
def test_config_errors(dims: dict, params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build("flowar", dims, params)
