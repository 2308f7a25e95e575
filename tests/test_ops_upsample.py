"""upsample (seed 004 Definition 4.3 / Lemma 5.1, seed 002 Definition B.1 / Lemma 4.2): bicubic as PyTorch
(align_corners=False, Keys a = −3/4, border taps clamped), Y_ijl = ⊕_{s,t} ((W_s · X) · W_t), depth 2d_std + d_sum."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import reference as R
from tc0sim.errors import ConfigError, GraphError
from tc0sim.fp import Format
from tc0sim.interp.depth import depth
from tc0sim.interp.evaluate import evaluate
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder
from tc0sim.ir.vectors import vec
from tc0sim.kinds import build
from tc0sim.ops.upsample import bicubic_taps, upsample

U = R.U64


def _upsample_graph(h: int, w: int, c: int, out_h: int, out_w: int):
    b = Builder()
    b.output("out", upsample(b, b.input("X", (h, w, c)), out_h, out_w))
    return b.graph


def test_weights_for_factor_two_match_the_keys_kernel_by_hand() -> None:
    # r = 2: source (i + 1/2)/2 − 1/2 has fractional part t = 3/4 (even i) or 1/4 (odd i);
    # W(1 + t), W(t), W(1 − t), W(2 − t) with a = −3/4, evaluated by hand from Keys' cubic
    indices, weights = bicubic_taps(3, 6)
    w_t34 = [Fraction(-9, 256), Fraction(67, 256), Fraction(225, 256), Fraction(-27, 256)]
    assert list(weights[0]) == w_t34
    assert list(weights[1]) == w_t34[::-1]
    assert indices.tolist() == [[0, 0, 0, 1], [0, 0, 1, 2], [0, 0, 1, 2], [0, 1, 2, 2], [0, 1, 2, 2], [1, 2, 2, 2]]


@pytest.mark.parametrize("in_size,out_size", [(1, 3), (2, 6), (3, 5), (4, 12), (5, 7)])
def test_weights_form_a_partition_of_unity(in_size: int, out_size: int) -> None:
    _, weights = bicubic_taps(in_size, out_size)
    assert all(sum(row) == 1 for row in weights)


@pytest.mark.parametrize("h,w,c,r,seed", [(1, 1, 1, 2, 0), (2, 3, 2, 2, 1), (3, 2, 1, 3, 2), (4, 4, 2, 2, 3)])
def test_float64_reference(h: int, w: int, c: int, r: int, seed: int) -> None:
    x = R.random_array(np.random.default_rng(seed), (h, w, c))
    out = evaluate(build("upsample", {"h": h, "w": w, "c": c, "r": r}), 53, {"X": x})["out"]
    # bound: constants rounded once (γ_1|W|), two products (γ_1 each), one ⊕ of 16 terms (γ_16 for numpy)
    ref = R.ref_upsample(x, r * h, r * w)
    assert ref.error.max() < 1e-13
    R.assert_within_bound(out, ref, Format(53).to_float64_array)


@pytest.mark.parametrize("h,w,c,out_h,out_w,seed", [(2, 3, 2, 4, 6, 4), (3, 3, 1, 5, 4, 5), (4, 2, 2, 8, 7, 6)])
def test_matches_torch_bicubic(h: int, w: int, c: int, out_h: int, out_w: int, seed: int) -> None:
    torch = pytest.importorskip("torch")
    x = R.random_array(np.random.default_rng(seed), (h, w, c))
    out = Format(53).to_float64_array(evaluate(_upsample_graph(h, w, c, out_h, out_w), 53, {"X": x})["out"])
    nchw = torch.from_numpy(x).permute(2, 0, 1)[None]
    expected = torch.nn.functional.interpolate(nchw, size=(out_h, out_w), mode="bicubic", align_corners=False)
    expected = expected[0].permute(1, 2, 0).numpy()
    # bound: PyTorch computes the source coordinate (i + 1/2)·in/out − 1/2 in float64, an absolute error
    # ≤ 4u·(in + 1) in t; |W'| ≤ 1.35 on (−2, 2) moves each weight by ≤ 6u·(in + 1), the cubic's own
    # evaluation adds ≤ 16u, and the weighted sum of 16 products ≤ γ_18·Σ|W_s X W_t| (|W| ≤ 1.1):
    # per output ≤ 2·(6u·(max(h, w) + 1) + 16u + γ_18)·1.1·Σ_taps |X|, plus our own error of the same kind.
    taps = np.abs(x).sum(axis=(0, 1)).max()
    bound = 2 * 2 * (6 * U * (max(h, w) + 1) + 16 * U + R.gamma(18)) * 1.1 * taps
    assert np.abs(out - expected).max() <= bound


@pytest.mark.parametrize("p", [8, 11, 24])
def test_bit_identical_to_exact_rationals(p: int) -> None:
    x = R.random_array(np.random.default_rng(p), (3, 2, 2))
    out = evaluate(build("upsample", {"h": 3, "w": 2, "c": 2, "r": 2}), p, {"X": x})["out"]
    expected = R.exact_upsample(R.to_fractions(x, p), 6, 4, p)
    R.assert_bit_identical(out, expected, Format(p).to_fraction)


@pytest.mark.parametrize("h,w,c,r", [(1, 1, 1, 1), (2, 3, 4, 2), (4, 4, 3, 4), (3, 5, 2, 3)])
def test_size_and_depth(h: int, w: int, c: int, r: int) -> None:
    g = build("upsample", {"h": h, "w": w, "c": c, "r": r})
    outputs = r * h * r * w * c
    report = size(g)
    # two layers of products over 16 taps per output, one ⊕ of fan-in 16 per output
    assert dict(report.by_primitive) == {"mul": 2 * 16 * outputs, "sum": outputs}
    assert report.max_fan_in["sum"] == 16
    assert depth(g).critical == [vec(d_std=2, d_sum=1)]


def test_scope_names_the_lemma() -> None:
    g = build("upsample", {"h": 2, "w": 2, "c": 1, "r": 2})
    assert set(size(g).by_operator) == {"upsample"}
    assert all("Lemma 5.1" in n.scope[-1].ref for n in g.live() if n.prim.name in ("mul", "sum"))


def test_bad_input_shapes() -> None:
    b = Builder()
    with pytest.raises(GraphError, match=r"expected a feature map \[h, w, c\]"):
        upsample(b, b.input("X", (4, 4)), 8, 8)
    with pytest.raises(ConfigError, match="sizes must be positive"):
        upsample(b, b.input("Y", (4, 4, 1)), 0, 8)
    with pytest.raises(ConfigError, match="dim r"):
        build("upsample", {"h": 2, "w": 2, "c": 1, "r": 0})
