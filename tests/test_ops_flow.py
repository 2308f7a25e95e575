"""Tests of the flow (seed 002 Definition B.10) and flow_bezier (Definition B.11) operators."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from reference_flow import flow_bezier_exact, flow_bezier_ref, flow_exact, flow_ref
from tc0sim.errors import ConfigError, GraphError
from tc0sim.fp import Format
from tc0sim.interp.depth import depth
from tc0sim.interp.evaluate import evaluate
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder
from tc0sim.ir.vectors import vec
from tc0sim.kinds import build
from tc0sim.ops.flow import flow, flow_bezier, flow_time

SHAPE = (2, 3, 4)
DIMS = {"h": 2, "w": 3, "c": 4}


def _data(seed: int, scale: float = 1.0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"Yhat": rng.standard_normal(SHAPE) * scale, "F0": rng.standard_normal(SHAPE) * scale}


def _as_fractions(p: int, values: np.ndarray) -> np.ndarray:
    F = Format(p)
    return np.frompyfunc(F.to_fraction, 1, 1)(values)


def _run(kind: str, t: object, p: int, data: dict[str, np.ndarray]) -> np.ndarray:
    graph = build(kind, DIMS, {"t": t})
    return evaluate(graph, p, inputs=data)["out"]


# --- evaluation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, reference", [("flow", flow_ref), ("flow_bezier", flow_bezier_ref)])
@pytest.mark.parametrize("t", [Fraction(1, 3), Fraction(1, 2), Fraction(0), Fraction(1), Fraction(7, 10)])
def test_p53_matches_float64_reference_within_derived_bound(kind, reference, t):
    data = _data(1)
    out = Format(53).to_float64_array(_run(kind, t, 53, data))
    ref = reference(data["Yhat"], data["F0"], t)
    # Both the circuit at p = 53 and the float64 reference are within ref.err of the exact
    # value (the circuit rounds no more often than the reference, at the same values).
    assert np.all(np.abs(out - ref.value) <= 2 * ref.err)
    assert np.max(ref.err) < 1e-14 * max(1.0, np.max(np.abs(ref.value)))


@pytest.mark.parametrize("p", [8, 11, 24])
@pytest.mark.parametrize("t", [Fraction(1, 3), Fraction(1, 2), Fraction(0), Fraction(1), Fraction(2, 7), 0.3])
def test_flow_bit_identical_to_exact_rational_evaluation(p, t):
    data = _data(2)
    got = _as_fractions(p, _run("flow", t, p, data))
    want = flow_exact(data["Yhat"], data["F0"], Fraction(t), p)
    assert got.shape == SHAPE
    assert all(a == b for a, b in zip(got.ravel(), want.ravel()))


@pytest.mark.parametrize("p", [8, 11, 24])
@pytest.mark.parametrize("t", [Fraction(1, 3), Fraction(1, 2), Fraction(0), Fraction(1), Fraction(2, 7), 0.3])
def test_flow_bezier_bit_identical_to_exact_rational_evaluation(p, t):
    data = _data(3)
    got = _as_fractions(p, _run("flow_bezier", t, p, data))
    want = flow_bezier_exact(data["Yhat"], data["F0"], Fraction(t), p)
    assert all(a == b for a, b in zip(got.ravel(), want.ravel()))


def test_flow_bezier_uses_one_sum_not_pairwise_additions():
    """On this instance the single ⊕ and two rounded additions differ, so the test above would
    catch a lowering that adds the three terms pairwise."""
    p, t = 8, Fraction(1, 3)
    data = _data(3)
    got = _as_fractions(p, _run("flow_bezier", t, p, data))
    pairwise = flow_bezier_exact(data["Yhat"], data["F0"], t, p, one_sum=False)
    assert any(a != b for a, b in zip(got.ravel(), pairwise.ravel()))


def test_default_time_is_one_half():
    data = _data(4)
    graph = build("flow", DIMS)
    got = _as_fractions(11, evaluate(graph, 11, inputs=data)["out"])
    want = flow_exact(data["Yhat"], data["F0"], Fraction(1, 2), 11)
    assert all(a == b for a, b in zip(got.ravel(), want.ravel()))


def test_endpoints_reproduce_noise_and_target():
    """F^0 = F0 and F^1 = Yhat exactly (Definition B.10 and B.11 at the ends of the path)."""
    data = _data(5)
    F = Format(24)
    for kind in ("flow", "flow_bezier"):
        at0 = F.to_float64_array(_run(kind, 0, 24, data))
        at1 = F.to_float64_array(_run(kind, 1, 24, data))
        assert np.array_equal(at0, F.to_float64_array(F.asarray(data["F0"])))
        assert np.array_equal(at1, F.to_float64_array(F.asarray(data["Yhat"])))


def test_bezier_with_midpoint_control_is_the_linear_path():
    """With C = (F0 + Yhat)/2, (1−t)²F0 + 2t(1−t)C + t²Yhat = (1−t)F0 + tYhat in exact
    arithmetic, so the two operators differ only by rounding."""
    data = _data(6)
    t = Fraction(2, 7)
    F = Format(53)
    bezier = F.to_float64_array(_run("flow_bezier", t, 53, data))
    linear = F.to_float64_array(_run("flow", t, 53, data))
    bound = 2 * (flow_ref(data["Yhat"], data["F0"], t).err + flow_bezier_ref(data["Yhat"], data["F0"], t).err)
    assert np.all(np.abs(bezier - linear) <= bound)


# --- depth and size -----------------------------------------------------------------------------

def test_flow_depth_and_size():
    graph = build("flow", DIMS, {"t": "1/3"})
    # t·Yhat and (1−t)·F0 in parallel (d_std), then one add (d_std).
    assert depth(graph).critical == [vec(d_std=2)]
    report = size(graph)
    hwc = 2 * 3 * 4
    assert report.total == 3 * hwc
    assert dict(report.by_primitive) == {"mul": 2 * hwc, "add": hwc}
    assert set(report.by_operator) == {"flow"}


def test_flow_bezier_depth_and_size():
    graph = build("flow_bezier", DIMS, {"t": "1/3"})
    # C: add, div; the C term: mul; then one ⊕ of fan-in 3.
    assert depth(graph).critical == [vec(d_std=3, d_sum=1)]
    report = size(graph)
    hwc = 2 * 3 * 4
    assert dict(report.by_primitive) == {"add": hwc, "div": hwc, "mul": 3 * hwc, "sum": hwc}
    assert report.total == 6 * hwc
    assert report.max_fan_in["sum"] == 3


def test_nodes_carry_the_paper_reference():
    for kind, ref in (("flow", "Definition B.10"), ("flow_bezier", "Definition B.11")):
        graph = build(kind, DIMS)
        compute = [n for n in graph.live() if n.prim.name not in ("input", "constant", "reshape", "broadcast", "concat")]
        assert compute and all(n.scope[0].name == kind and ref in n.scope[0].ref for n in compute)


# --- configuration errors -----------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["flow", "flow_bezier"])
@pytest.mark.parametrize("t", [-0.1, 1.5, "3/2", Fraction(-1, 3), 2])
def test_time_outside_unit_interval_is_config_error(kind, t):
    with pytest.raises(ConfigError, match=r"flow time t=.* outside \[0, 1\]"):
        build(kind, DIMS, {"t": t})


@pytest.mark.parametrize("t", ["abc", True, None, float("nan"), [0.5]])
def test_time_that_is_not_a_number_is_config_error(t):
    with pytest.raises(ConfigError, match="flow time"):
        flow_time(t)


def test_time_is_converted_exactly():
    assert flow_time("1/3") == Fraction(1, 3)
    assert flow_time(" 0.25 ") == Fraction(1, 4)
    assert flow_time(0.1) == Fraction(0.1)
    assert flow_time(1) == Fraction(1)


@pytest.mark.parametrize("fn", [flow, flow_bezier])
def test_mismatched_shapes_are_graph_errors(fn):
    b = Builder()
    yhat = b.input("Yhat", (2, 2, 3))
    with pytest.raises(GraphError, match="Yhat"):
        fn(b, yhat, b.input("F0", (2, 2, 4)), Fraction(1, 2))
    with pytest.raises(GraphError, match="Yhat"):
        fn(b, b.input("Y2", (4, 3)), b.input("F2", (4, 3)), Fraction(1, 2))


def test_missing_dim_is_config_error():
    with pytest.raises(ConfigError):
        build("flow", {"h": 2, "w": 2})
