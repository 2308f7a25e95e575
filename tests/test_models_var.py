"""The VAR model (seed 004 Section 4, Theorem 5.11; seed 000 Definitions 3.7–3.11).

Oracles: tests/reference_models.py (independent numpy float64 and exact-rational implementations of
the paper's definitions), PyTorch float64 for the reference's bicubic and convolution, the scalar
expansion of the DAG (networkx) for the depth, and the papers' per-lemma depths for the upper bound.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import reference_models as RM
from tc0sim.errors import ConfigError
from tc0sim.interp.depth import depth
from tc0sim.interp.evaluate import evaluate
from tc0sim.interp.expand import expand, scalar_depth
from tc0sim.interp.size import size
from tc0sim.ir.vectors import vec
from tc0sim.kinds import build, get_kind


# Tolerance of the p = 53 comparison. Both sides compute in binary64-sized significands; the DAG rounds
# once per primitive and numpy rounds each pairwise addition, so each primitive differs by a few units
# of 2^-53 ≈ 1.1e-16. The deepest path has ~90 primitives, and with inputs of scale 0.4 the scores
# stay below 1 (exp is well conditioned) and no row of a layer norm is near-constant, so the normwise
# error stays near 1e-14 (measured ≤ 1e-14); 1e-9 leaves a wide margin yet any wrong formula, weight
# or wiring changes the outputs at order 1e-2 or more.
TOLERANCE = 1e-9
SCALE = 0.4

CONFIGS = [
    ({"h": 4, "w": 4, "c": 2}, {}),
    ({"h": 3, "w": 3, "c": 3}, {"scales": [1, 2, 3], "layers": 2, "g": ["ln", "mlp"], "decoder": ["up", "resnet"]}),
    ({"h": 3, "w": 2, "c": 2}, {"scales": [1, [3, 2]], "g": "identity", "kernel": 1, "decoder": ["attn"]}),
]


def _reference_args(dims: dict, params: dict) -> dict:
    """The reference's arguments; an int ``scales`` is the paper-free pyramid spelled out by hand."""
    full = {**get_kind("var").defaults, **params}
    g = full["g"]
    g = () if g == "identity" else ((g,) if isinstance(g, str) else tuple(g))
    scales = full["scales"]
    if scales == 3 and dims["h"] == dims["w"] == 4:
        scales = [1, 2, 4]
    return {"scales": scales, "layers": full["layers"], "g": g, "decoder": tuple(full["decoder"])}


@pytest.mark.parametrize("dims, params", CONFIGS)
def test_p53_evaluation_matches_float64_reference(dims: dict, params: dict) -> None:
    graph = build("var", dims, params)
    values = RM.draw_inputs(RM.input_shapes(graph), seed=7, scale=SCALE)
    got = evaluate(graph, 53, inputs=values)
    want = RM.var_reference(values, RM.Float64(), **_reference_args(dims, params))
    assert set(got) == {"out", "tokens", "feature_map"}
    for name in got:
        assert got[name].shape == want[name].shape
        assert RM.normwise_error(got[name], want[name]) < TOLERANCE, name


@pytest.mark.parametrize("p", [11, 24])
def test_low_precision_is_bit_identical_to_rounded_rational_oracle(p: int) -> None:
    dims, params = {"h": 2, "w": 2, "c": 2}, {"scales": [1, 2], "decoder": ["resnet", "attn", "up"]}
    graph = build("var", dims, params)
    values = RM.draw_inputs(RM.input_shapes(graph), seed=11, scale=SCALE)
    got = evaluate(graph, p, inputs=values)
    want = RM.var_reference(values, RM.Rational(p), **_reference_args(dims, params))
    for name in got:
        assert (RM.as_fractions(got[name]) == want[name]).all(), name


def test_reference_bicubic_and_conv_agree_with_pytorch() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    ops = RM.Ops(RM.Float64())
    x = rng.standard_normal((3, 2, 4))
    mine = ops.upsample(x, 7, 5)
    theirs = torch.nn.functional.interpolate(
        torch.from_numpy(x).permute(2, 0, 1)[None], size=(7, 5), mode="bicubic", align_corners=False
    )[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(mine, theirs, rtol=1e-13, atol=1e-13)
    kernel, bias = rng.standard_normal((5, 3, 3, 4)), rng.standard_normal(5)
    x = rng.standard_normal((4, 6, 4))
    mine = ops.conv2d(x, kernel, bias)
    theirs = torch.nn.functional.conv2d(
        torch.from_numpy(x).permute(2, 0, 1)[None], torch.from_numpy(kernel).permute(0, 3, 1, 2), torch.from_numpy(bias), padding="same"
    )[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(mine, theirs, rtol=1e-13, atol=1e-13)


def test_depth_is_the_same_at_three_sizes_and_equals_the_scalar_expansion() -> None:
    """Theorem 5.11: O(1) depth — the critical vector does not move when c and the map sizes grow."""
    sizes = [({"h": 4, "w": 4, "c": 2}, [1, 2, 4]), ({"h": 6, "w": 6, "c": 3}, [1, 3, 6]), ({"h": 8, "w": 8, "c": 5}, 3)]
    criticals = [depth(build("var", dims, {"scales": scales})).critical for dims, scales in sizes]
    assert criticals[0] == criticals[1] == criticals[2]
    assert len(criticals[0]) == 1
    tiny = build("var", {"h": 4, "w": 4, "c": 2}, {"scales": [1, 2, 4]})
    assert scalar_depth(expand(tiny)) == criticals[0]


def test_depth_within_the_papers_per_lemma_bounds() -> None:
    """Composing the lemmas along the model: each level ≤ upsample (L4.2: 2d_std + d_sum) + Attn
    (FlowAR L4.6: 6(d_std + d_sum) + d_exp) + FFN (L4.5: 6d_std + 2d_sum); phase 2 ≤ upsample +
    conv (d_std + d_sum) + one ⊕; resnet ≤ 2 conv + ReLU + add; attn ≤ L4.6; up ≤ upsample + conv."""
    upsample, attn, ffn = vec(d_std=2, d_sum=1), vec(d_std=6, d_sum=6, d_exp=1), vec(d_std=6, d_sum=2)
    conv = vec(d_std=1, d_sum=1)

    def total(*vs):
        return tuple(sum(parts) for parts in zip(*vs))

    levels = 3
    phase1 = total(*([upsample, attn, ffn] * levels))
    phase2 = total(upsample, conv, vec(d_sum=1))
    phase3 = total(conv, vec(d_std=1), conv, vec(d_std=1), attn, upsample, conv)
    result = depth(build("var", {"h": 4, "w": 4, "c": 3}, {"scales": [1, 2, 4]}))
    assert result.holds(total(phase1, phase2, phase3))
    assert not result.holds(total(phase1, phase2))  # the decoder does add depth


def test_size_grows_as_a_degree_four_polynomial_in_the_map_size() -> None:
    """Theorem 5.11: poly(n) size. With scales [1, n, 2n] the tokens are Θ(n²) and attention is
    quadratic in them, so the size is a polynomial of degree 4 in n: its 5th finite differences
    vanish and its 4th do not."""
    sizes = [size(build("var", {"h": 2 * n, "w": 2 * n, "c": 2}, {"scales": [1, n, 2 * n]})).total for n in range(2, 9)]
    diffs = [Fraction(s) for s in sizes]
    for order in range(1, 6):
        diffs = [b - a for a, b in zip(diffs, diffs[1:])]
        if order == 4:
            assert all(d == diffs[0] != 0 for d in diffs)
    assert diffs == [0, 0]


def test_outputs_and_named_weights() -> None:
    graph = build("var", {"h": 2, "w": 2, "c": 2}, {"scales": [1, 2], "layers": 2, "g": ["ffn", "mlp"], "decoder": ["resnet", "attn", "up"]})
    weights = {name for name, node_id in graph.inputs.items() if graph.node(node_id).attrs["role"] == "weight"}
    expected = {f"L{i}.{w}" for i in range(1, 5) for w in ("W_Q", "W_K", "W_V", "FFN.W1", "FFN.W2", "FFN.b1", "FFN.b2", "MLP.W", "MLP.b")}
    expected |= {f"phase2.conv{k}.{w}" for k in (1, 2) for w in ("K", "b")}
    expected |= {"dec1.conv1.K", "dec1.conv1.b", "dec1.conv2.K", "dec1.conv2.b", "dec2.W_Q", "dec2.W_K", "dec2.W_V", "dec3.conv.K", "dec3.conv.b"}
    assert weights == expected
    assert [name for name, node_id in graph.inputs.items() if graph.node(node_id).attrs["role"] == "input"] == ["X_init"]
    shapes = {name: graph.node(node_id).shape for name, node_id in graph.outputs.items()}
    assert shapes == {"out": (4, 4, 2), "tokens": (5, 2), "feature_map": (2, 2, 2)}
    operators = size(graph).by_operator
    assert any(k.startswith("var/phase1/level2/layer4/attention") for k in operators)
    assert any(k.startswith("var/phase3/block2_attn/attention") for k in operators)


def test_pairs_of_scales_give_rectangular_maps() -> None:
    graph = build("var", {"h": 2, "w": 3, "c": 2}, {"scales": [1, [2, 3]], "decoder": []})
    assert graph.node(graph.outputs["feature_map"]).shape == (2, 3, 2)
    assert graph.node(graph.outputs["tokens"]).shape == (7, 2)


@pytest.mark.parametrize(
    "h, w, levels, expected",
    [(4, 4, 3, [1, 2, 4]), (8, 8, 3, [1, 4, 8]), (6, 3, 3, [1, [3, 2], [6, 3]]), (16, 16, 4, [1, 4, 8, 16]), (5, 5, 2, [1, 5])],
)
def test_an_integer_scales_is_the_geometric_pyramid_ending_at_the_final_map(h: int, w: int, levels: int, expected: list) -> None:
    auto = build("var", {"h": h, "w": w, "c": 2}, {"scales": levels, "decoder": []})
    explicit = build("var", {"h": h, "w": w, "c": 2}, {"scales": expected, "decoder": []})
    assert size(auto).as_dict() == size(explicit).as_dict()
    assert graph_shapes(auto) == graph_shapes(explicit)


def graph_shapes(graph) -> list[tuple[str, tuple[int, ...]]]:
    return [(node.prim.name, node.shape) for node in graph.nodes]


@pytest.mark.parametrize(
    "params, message",
    [
        ({"scales": []}, r"'scales' must be a number of levels or a non-empty list"),
        ({"scales": "1,2,4"}, r"'scales' must be a number of levels or a non-empty list"),
        ({"scales": 0}, r"'scales' must be an integer ≥ 1, got 0"),
        ({"scales": 4}, r"4 levels do not fit the final map 4×4: the geometric pyramid would be 1×1, 1×1, 2×2, 4×4"),
        ({"scales": 1}, r"the last scale 1×1 must be the final token map h×w = 4×4"),
        ({"scales": [1, 2]}, r"the last scale 2×2 must be the final token map h×w = 4×4"),
        ({"scales": [1, 2, 4, 8]}, r"the last scale 8×8 must be the final token map h×w = 4×4"),
        ({"scales": [2, 4]}, r"first scale must be 1 .*got 2×2"),
        ({"scales": [1, 4, 2]}, r"increase strictly.*scale 2 is 4×4 and scale 3 is 2×2"),
        ({"scales": [1, 2, 2]}, r"increase strictly.*scale 2 is 2×2 and scale 3 is 2×2"),
        ({"scales": [1, [2, 1]]}, r"increase strictly.*scale 1 is 1×1 and scale 2 is 2×1"),
        ({"scales": [1, 0, 4]}, r"scale 2 must be a positive integer or a pair"),
        ({"scales": [1, [2, 3, 4], 4]}, r"scale 2 must be a positive integer or a pair"),
        ({"scales": [1, True, 4]}, r"scale 2 must be a positive integer or a pair"),
        ({"layers": 0}, r"'layers' must be an integer ≥ 1, got 0"),
        ({"layers": 1.5}, r"'layers' must be an integer ≥ 1, got 1.5"),
        ({"g": "softmax"}, r"'g' must be one of ffn, mlp, ln, 'identity'"),
        ({"g": ["ffn", "relu"]}, r"'g' must be one of"),
        ({"kernel": 0}, r"'kernel' must be an integer ≥ 1, got 0"),
        ({"decoder": ["conv"]}, r"'decoder' must be a list of blocks among resnet, attn, up"),
        ({"decoder": "resnet"}, r"'decoder' must be a list of blocks"),
        ({"depth": 3}, r"no param\(s\) depth"),
    ],
)
def test_config_errors(params: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build("var", {"h": 4, "w": 4, "c": 2}, params)


def test_missing_dims_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"takes dims \{h, w, c\}; missing h, w"):
        build("var", {"c": 2}, {})
