"""Operators of the released models (resize, activations, norms, linear) against separately written
float64 PyTorch references (torch.nn.functional with float64 tensors) and exact-rational oracles.

Tolerance: each operator is a handful of roundings on well-conditioned data, so the p = 53 circuit and
PyTorch's float64 kernel each lie within a few dozen units of roundoff of the exact result; the tests
allow 1e-12 relative to max(1, |reference|), far below any lowering mistake (a wrong tap, window,
constant or eps shows at 1e-4 or above).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

import reference as R
from tc0sim.errors import ConfigError
from tc0sim.fp import Format
from tc0sim.interp.evaluate import evaluate
from tc0sim.kinds import build

torch = pytest.importorskip("torch")
F = torch.nn.functional
TOL = 1e-12


def _run(kind: str, dims: dict, inputs: dict, params: dict | None = None) -> np.ndarray:
    out = evaluate(build(kind, dims, params or {}), 53, inputs)["out"]
    return np.vectorize(float, otypes=[np.float64])(out)  # values below float64's range become 0


def _close(got: np.ndarray, ref: np.ndarray) -> None:
    assert got.shape == ref.shape
    err = np.abs(got - ref) / np.maximum(1.0, np.abs(ref))
    assert err.max() < TOL, err.max()


def _nchw(x: np.ndarray) -> "torch.Tensor":
    return torch.from_numpy(x).permute(2, 0, 1)[None]


def _hwc(t: "torch.Tensor") -> np.ndarray:
    return t[0].permute(1, 2, 0).numpy()


RESIZES = [(1, 1, 16, 16), (2, 3, 16, 16), (13, 13, 16, 16), (16, 16, 13, 13), (16, 16, 3, 5), (5, 7, 9, 4), (4, 4, 8, 8)]


@pytest.mark.parametrize("h, w, out_h, out_w", RESIZES)
@pytest.mark.parametrize("mode", ["bicubic", "area", "nearest"])
def test_resize_matches_torch(mode: str, h: int, w: int, out_h: int, out_w: int) -> None:
    rng = np.random.default_rng(h * 100 + w + out_h)
    x = R.random_array(rng, (h, w, 2))
    from tc0sim.ir.graph import Builder
    from tc0sim.ops import resize

    b = Builder()
    b.output("out", getattr(resize, mode)(b, b.input("X", (h, w, 2)), out_h, out_w))
    got = np.vectorize(float, otypes=[np.float64])(evaluate(b.graph, 53, {"X": x})["out"])
    kwargs = {"align_corners": False} if mode == "bicubic" else {}
    ref = _hwc(F.interpolate(_nchw(x), size=(out_h, out_w), mode=mode, **kwargs))
    _close(got, ref)


def test_area_is_window_sum_over_count_exactly() -> None:
    """Exact oracle: adaptive average pooling 5 → 3 with overlapping windows [0,2), [1,4), [3,5)."""
    x = np.array([[1.0], [2.0], [4.0], [8.0], [16.0]]).reshape(5, 1, 1)
    got = evaluate(build("area", {"h": 5, "w": 1, "c": 1, "out_h": 3, "out_w": 1}), 24, {"X": x})["out"]
    fmt = Format(24)
    want = [Fraction(3, 2), Fraction(14, 3), Fraction(12)]
    assert [fmt.to_fraction(v) for v in got.reshape(-1)] == [R.round_fraction(v, 24) for v in want]


def test_resize_rejects_bad_sizes() -> None:
    from tc0sim.errors import GraphError
    from tc0sim.ir.graph import Builder
    from tc0sim.ops.resize import area, bicubic

    b = Builder()
    x = b.input("X", (2, 2, 1))
    with pytest.raises(ConfigError, match="output size"):
        area(b, x, 0, 1)
    with pytest.raises(GraphError, match=r"\[h, w, c\]"):
        bicubic(b, b.input("Y", (2, 2)), 4, 4)


@pytest.mark.parametrize(
    "kind, fn",
    [
        ("sigmoid", torch.sigmoid),
        ("silu", F.silu),
        ("gelu_tanh", lambda t: F.gelu(t, approximate="tanh")),
        ("softmax", lambda t: torch.softmax(t, dim=-1)),
    ],
)
def test_activation_matches_torch(kind: str, fn) -> None:
    rng = np.random.default_rng(len(kind))
    x = R.random_array(rng, (4, 7), scale=3.0)
    x[0, :3] = [-30.0, 25.0, 0.0]
    _close(_run(kind, {"n": 4, "c": 7}, {"X": x}), fn(torch.from_numpy(x)).numpy())


def test_clamp_is_exact() -> None:
    x = np.array([[-3.0, -1.0, -0.25, 0.0, 0.75, 1.0, 9.5]])
    got = _run("clamp", {"n": 1, "c": 7}, {"X": x}, {"lo": -0.5, "hi": 0.5})
    assert got.tolist() == [[-0.5, -0.5, -0.25, 0.0, 0.5, 0.5, 0.5]]
    with pytest.raises(ConfigError):
        build("clamp", {"n": 1, "c": 1}, {"lo": 1, "hi": 0})


def test_layer_norm_matches_torch() -> None:
    rng = np.random.default_rng(3)
    x = R.random_array(rng, (5, 12))
    x[1] = 0.5  # constant row: σ² = 0, eps keeps it finite
    ref = F.layer_norm(torch.from_numpy(x), (12,), eps=1e-6).numpy()
    _close(_run("layer_norm", {"n": 5, "c": 12}, {"X": x}), ref)


@pytest.mark.parametrize("groups, c", [(1, 3), (2, 6), (4, 4), (3, 12)])
def test_group_norm_matches_torch(groups: int, c: int) -> None:
    rng = np.random.default_rng(groups + c)
    x, weight, bias = R.random_array(rng, (3, 5, c)), R.random_array(rng, (c,)), R.random_array(rng, (c,))
    got = _run("group_norm", {"h": 3, "w": 5, "c": c}, {"X": x, "weight": weight, "bias": bias}, {"groups": groups})
    ref = F.group_norm(_nchw(x), groups, torch.from_numpy(weight), torch.from_numpy(bias), eps=1e-6)
    _close(got, _hwc(ref))


def test_group_norm_rejects_indivisible_groups() -> None:
    with pytest.raises(ConfigError, match="groups do not divide"):
        build("group_norm", {"h": 1, "w": 1, "c": 6}, {"groups": 4})


def test_l2_normalize_matches_torch() -> None:
    rng = np.random.default_rng(5)
    x = R.random_array(rng, (4, 6))
    x[2] = 0.0  # the eps branch: 0 / max(0, 1e-12) = 0
    _close(_run("l2_normalize", {"n": 4, "c": 6}, {"X": x}), F.normalize(torch.from_numpy(x), dim=-1).numpy())


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias: bool) -> None:
    rng = np.random.default_rng(11)
    inputs = {"X": R.random_array(rng, (3, 5)), "weight": R.random_array(rng, (4, 5))}
    if bias:
        inputs["bias"] = R.random_array(rng, (4,))
    got = _run("linear", {"n": 3, "d_in": 5, "d_out": 4}, inputs, {"bias": bias})
    t = {k: torch.from_numpy(v) for k, v in inputs.items()}
    _close(got, F.linear(t["X"], t["weight"], t.get("bias")).numpy())
