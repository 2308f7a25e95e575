"""downsample (seed 002 Definition B.2 / Lemma 4.3): area averaging Y = Φ_down X, entries 1/r², depth d_std + d_sum."""

from __future__ import annotations

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
from tc0sim.ops.downsample import downsample


@pytest.mark.parametrize("h,w,c,r,seed", [(1, 1, 1, 1, 0), (2, 4, 3, 2, 1), (6, 3, 2, 3, 2), (8, 8, 1, 4, 3)])
def test_float64_reference(h: int, w: int, c: int, r: int, seed: int) -> None:
    x = R.random_array(np.random.default_rng(seed), (h, w, c), scale=5.0)
    out = evaluate(build("downsample", {"h": h, "w": w, "c": c, "r": r}), 53, {"X": x})["out"]
    # bound: 1/r² rounded once, each product once, one ⊕ of r² terms: γ_(r²+2)·Σ|X|/r² per output
    ref = R.ref_downsample(x, r)
    assert ref.error.max() < 1e-13
    R.assert_within_bound(out, ref, Format(53).to_float64_array)


@pytest.mark.parametrize("h,w,c,out_h,out_w,seed", [(4, 6, 2, 2, 3, 4), (6, 6, 1, 2, 3, 5), (3, 4, 2, 1, 4, 6)])
def test_matches_torch_area(h: int, w: int, c: int, out_h: int, out_w: int, seed: int) -> None:
    torch = pytest.importorskip("torch")
    x = R.random_array(np.random.default_rng(seed), (h, w, c))
    b = Builder()
    b.output("out", downsample(b, b.input("X", (h, w, c)), out_h, out_w))
    out = Format(53).to_float64_array(evaluate(b.graph, 53, {"X": x})["out"])
    nchw = torch.from_numpy(x).permute(2, 0, 1)[None]
    expected = torch.nn.functional.interpolate(nchw, size=(out_h, out_w), mode="area")[0].permute(1, 2, 0).numpy()
    # bound: PyTorch sums the k = r_h·r_w block entries (≤ k − 1 roundings) and divides (one rounding);
    # the circuit rounds 1/k, each product and the sum once: both within γ_(k+2)·Σ_block|X|/k of the mean
    k = (h // out_h) * (w // out_w)
    block_abs = np.abs(x).reshape(out_h, h // out_h, out_w, w // out_w, c).sum(axis=(1, 3)) / k
    assert np.all(np.abs(out - expected) <= 2 * R.gamma(k + 2) * block_abs)


@pytest.mark.parametrize("p", [8, 11, 24])
def test_bit_identical_to_exact_rationals(p: int) -> None:
    x = R.random_array(np.random.default_rng(p), (6, 3, 2))
    out = evaluate(build("downsample", {"h": 6, "w": 3, "c": 2, "r": 3}), p, {"X": x})["out"]
    expected = R.exact_downsample(R.to_fractions(x, p), 3, p)
    R.assert_bit_identical(out, expected, Format(p).to_fraction)


@pytest.mark.parametrize("h,w,c,r", [(1, 1, 1, 1), (4, 4, 2, 2), (6, 9, 3, 3), (8, 16, 4, 4)])
def test_size_and_depth(h: int, w: int, c: int, r: int) -> None:
    g = build("downsample", {"h": h, "w": w, "c": c, "r": r})
    report = size(g)
    # one product per input element (the non-zero entries of Φ_down), one ⊕ of fan-in r² per output
    assert dict(report.by_primitive) == {"mul": h * w * c, "sum": (h // r) * (w // r) * c}
    assert report.max_fan_in["sum"] == r * r
    assert depth(g).critical == [vec(d_std=1, d_sum=1)]


def test_non_dividing_scale_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="scale r=3 does not divide the map h=4"):
        build("downsample", {"h": 4, "w": 6, "c": 1, "r": 3})
    with pytest.raises(ConfigError, match="scale r=2 does not divide the map w=5"):
        build("downsample", {"h": 4, "w": 5, "c": 1, "r": 2})
    b = Builder()
    with pytest.raises(ConfigError, match="output size 3 does not divide the map h=4"):
        downsample(b, b.input("X", (4, 4, 1)), 3, 2)


def test_bad_input_shape_is_a_graph_error() -> None:
    b = Builder()
    with pytest.raises(GraphError, match=r"expected a feature map \[h, w, c\]"):
        downsample(b, b.input("X", (4, 4)), 2, 2)
