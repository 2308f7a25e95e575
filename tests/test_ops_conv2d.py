"""conv2d (seed 004 Definition 4.10 / Lemma 5.6 / Proposition 5.7), stride 1, zero padding "same":
Y_ijo = ⊕(all products X·K, and b_o) — one iterated sum including the bias, depth d_std + d_sum."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import reference as R
from tc0sim.errors import GraphError
from tc0sim.fp import Format
from tc0sim.interp.depth import depth
from tc0sim.interp.evaluate import evaluate
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder
from tc0sim.ir.vectors import vec
from tc0sim.kinds import build
from tc0sim.ops.conv2d import conv2d

DIMS = ("h", "w", "c", "k", "hk", "wk")


def _inputs(h: int, w: int, c: int, k: int, hk: int, wk: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "X": R.random_array(rng, (h, w, c)),
        "K": R.random_array(rng, (k, hk, wk, c)),
        "b": R.random_array(rng, (k,)),
    }


CASES = [(1, 1, 1, 1, 1, 1), (4, 5, 2, 3, 3, 3), (5, 4, 3, 2, 2, 3), (3, 3, 1, 2, 4, 2)]


@pytest.mark.parametrize("shape", CASES)
def test_float64_reference(shape: tuple[int, ...]) -> None:
    inputs = _inputs(*shape, seed=sum(shape))
    out = evaluate(build("conv2d", dict(zip(DIMS, shape))), 53, inputs)["out"]
    # bound: γ_(hk·wk·c + 2)·(Σ|X·K| + |b|) per output (products rounded once, ⊕ once / numpy's sums)
    ref = R.ref_conv2d(inputs["X"], inputs["K"], inputs["b"])
    assert ref.error.max() < 1e-13
    R.assert_within_bound(out, ref, Format(53).to_float64_array)


@pytest.mark.filterwarnings("ignore:Using padding=.same. with even kernel")
@pytest.mark.parametrize("shape", CASES[1:])
def test_matches_torch_conv2d_same(shape: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    h, w, c, k, hk, wk = shape
    inputs = _inputs(*shape, seed=7 + sum(shape))
    out = Format(53).to_float64_array(evaluate(build("conv2d", dict(zip(DIMS, shape))), 53, inputs)["out"])
    x = torch.from_numpy(inputs["X"]).permute(2, 0, 1)[None]
    weight = torch.from_numpy(inputs["K"]).permute(0, 3, 1, 2)
    expected = torch.nn.functional.conv2d(x, weight, torch.from_numpy(inputs["b"]), padding="same")
    expected = expected[0].permute(1, 2, 0).numpy()
    # bound: both within γ_(hk·wk·c + 2)·(Σ|X·K| + |b|) ≤ γ_(…)·(Σ|X|·max|K| + |b|) of the exact result
    terms = hk * wk * c + 2
    magnitude = np.abs(inputs["X"]).sum() * np.abs(inputs["K"]).max() + np.abs(inputs["b"]).max()
    assert np.abs(out - expected).max() <= 2 * R.gamma(terms) * magnitude


@pytest.mark.parametrize("p", [8, 11, 24])
def test_bit_identical_to_exact_rationals(p: int) -> None:
    shape = (3, 4, 2, 2, 3, 2)
    inputs = _inputs(*shape, seed=p)
    out = evaluate(build("conv2d", dict(zip(DIMS, shape))), p, inputs)["out"]
    ex = R.exact_inputs(inputs, p)
    R.assert_bit_identical(out, R.exact_conv2d(ex["X"], ex["K"], ex["b"], p), Format(p).to_fraction)


def test_bias_is_a_term_of_the_one_sum() -> None:
    # p = 8, 1×1 kernel: X·K = 1 and b = 2^-8, 2^-8 from two channels: one ⊕ of 1 + 2^-8 + 2^-8 is
    # 1 + 2^-7 exactly; adding the bias after a rounded sum would round the tie 1 + 2^-8 to 1 first
    inputs = {"X": np.array([[[1.0, 2.0**-8]]]), "K": np.ones((1, 1, 1, 2)), "b": np.array([2.0**-8])}
    out = evaluate(build("conv2d", dict(zip(DIMS, (1, 1, 2, 1, 1, 1)))), 8, inputs)["out"]
    assert Format(8).to_fraction(out[0, 0, 0]) == 1 + Fraction(1, 128)


@pytest.mark.parametrize("shape", CASES + [(8, 8, 4, 6, 3, 3)])
def test_size_and_depth(shape: tuple[int, ...]) -> None:
    h, w, c, k, hk, wk = shape
    g = build("conv2d", dict(zip(DIMS, shape)))
    report = size(g)
    # one product per (output, kernel tap, channel), one ⊕ of fan-in hk·wk·c + 1 per output
    assert dict(report.by_primitive) == {"mul": h * w * k * hk * wk * c, "sum": h * w * k}
    assert report.max_fan_in["sum"] == hk * wk * c + 1
    assert depth(g).critical == [vec(d_std=1, d_sum=1)]


def test_shape_mismatch_is_a_graph_error() -> None:
    b = Builder()
    x = b.input("X", (4, 4, 3))
    with pytest.raises(GraphError, match=r"K \(2, 3, 3, 2\)"):
        conv2d(b, x, b.input("K", (2, 3, 3, 2)), b.input("b", (2,)))
    with pytest.raises(GraphError, match=r"b \(3,\)"):
        conv2d(b, x, b.input("K2", (2, 3, 3, 3)), b.input("b2", (3,)))
