"""Tests of the flow-matching layer (seed 002 Definition B.12, Lemma 4.8)."""

from __future__ import annotations

from fractions import Fraction

import networkx as nx
import numpy as np
import pytest

from reference_flow import flow_matching_ref
from tc0sim.errors import ConfigError, GraphError
from tc0sim.fp import Format
from tc0sim.interp.depth import depth
from tc0sim.interp.evaluate import evaluate
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder
from tc0sim.ir.vectors import vec
from tc0sim.kinds import build
from tc0sim.ops.aattc import aattc
from tc0sim.ops.flow_matching import flow_matching, flow_matching_weight_shapes

H, W, C = 2, 2, 3
DIMS = {"h": H, "w": W, "c": C}
PAPER_CLAIM = vec(d_std=26, d_sum=12, d_sqrt=2, d_exp=1)  # seed 002 Lemma 4.8


def _data(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    data = {"Yhat": rng.standard_normal((H, W, C)), "Ft": rng.standard_normal((H, W, C))}
    for name, shape in flow_matching_weight_shapes(C).items():
        data[name] = rng.standard_normal(shape) * 0.5
    return data


# --- evaluation ---------------------------------------------------------------------------------

@pytest.mark.parametrize("t, seed", [(Fraction(1, 3), 1), (Fraction(0), 2), (Fraction(1), 3), (Fraction(3, 4), 4)])
def test_p53_matches_float64_reference_within_derived_bound(t, seed):
    data = _data(seed)
    graph = build("flow_matching", DIMS, {"t": t})
    out = Format(53).to_float64_array(evaluate(graph, 53, inputs=data)["out"])
    weights = {k: v for k, v in data.items() if k not in ("Yhat", "Ft")}
    ref = flow_matching_ref(data["Yhat"], data["Ft"], t, weights)
    assert out.shape == (H, W, C)
    # The reference's running error bound covers both it and the circuit (which rounds once per
    # primitive at the same values); the bound is required to be small, so the test can fail.
    assert np.all(np.abs(out - ref.value) <= 2 * ref.err)
    assert np.max(ref.err) < 1e-10 * max(1.0, float(np.max(np.abs(ref.value))))


def test_inputs_and_weights_are_named_and_typed():
    graph = build("flow_matching", DIMS)
    roles = {name: graph.node(nid).attrs["role"] for name, nid in graph.inputs.items()}
    assert roles == {"Yhat": "input", "Ft": "input", **{k: "weight" for k in flow_matching_weight_shapes(C)}}
    assert {name: graph.node(nid).shape for name, nid in graph.inputs.items() if roles[name] == "weight"} == (
        flow_matching_weight_shapes(C)
    )


def test_weight_shapes():
    assert flow_matching_weight_shapes(4) == {
        "W_ada": (4, 24), "b_ada": (24,), "W_Q": (4, 4), "W_K": (4, 4), "W_V": (4, 4),
        "W_mlp": (4, 4), "b_mlp": (4,),
    }


# --- depth --------------------------------------------------------------------------------------

def _hand_critical() -> tuple[int, int, int, int, int]:
    """The DAG's longest path, derived by hand (d_std, d_sum, d_prod, d_exp, d_sqrt):

    LN(Ft) 5 d_std + 2 d_sum + d_sqrt; in parallel Yhat + t (1 d_std) then the modulation MLP
    (2 d_std + d_sum) give γ, β, α at 3 d_std + d_sum — dominated, so off the critical path.
    γ1·LN + β1: +2 d_std → 7, 2, sqrt. Attention from its input X: X M (d_std + d_sum),
    (XM) Xᵀ (d_std + d_sum), exp, A X, (AX) W_V (2(d_std + d_sum)), Dinv · O (d_std): +5 d_std +
    4 d_sum + d_exp (W_Q W_Kᵀ depends on weights only) → 12, 6. ·α1: 13, 6. LN: 18, 8, 2 sqrt.
    γ2·, +β2: 20, 8. MLP: 22, 9. ·α2: 23 d_std + 9 d_sum + 2 d_sqrt + d_exp."""
    return vec(d_std=23, d_sum=9, d_sqrt=2, d_exp=1)


def test_depth_is_the_hand_derived_critical_path():
    result = depth(build("flow_matching", DIMS))
    assert result.critical == [_hand_critical()]


def test_depth_does_not_grow_with_size():
    assert depth(build("flow_matching", {"h": 3, "w": 1, "c": 5})).critical == [_hand_critical()]


def test_paper_claim_holds_with_slack():
    """Lemma 4.8 adds its three steps in series (and counts W_Q W_Kᵀ and D⁻¹ in series inside
    the attention); the DAG runs the modulation MLP beside LN(Ft), so the claim is an upper bound
    with slack 3 d_std + 3 d_sum."""
    result = depth(build("flow_matching", DIMS))
    assert result.holds(PAPER_CLAIM)
    (critical,) = result.critical
    assert tuple(c - v for c, v in zip(PAPER_CLAIM, critical)) == vec(d_std=3, d_sum=3)


def test_critical_path_starts_at_ft_not_at_the_modulation_branch():
    result = depth(build("flow_matching", DIMS))
    path = result.witness(_hand_critical())
    assert path[0].prim.name == "input" and path[0].name == "Ft"


@pytest.mark.parametrize(
    "values",
    [
        {"d_std": 1, "d_sum": 1, "d_prod": 1, "d_exp": 1, "d_sqrt": 1},
        {"d_std": 1, "d_sum": 50, "d_prod": 0, "d_exp": 3, "d_sqrt": 7},
        {"d_std": 40, "d_sum": 1, "d_prod": 0, "d_exp": 100, "d_sqrt": 2},
    ],
)
def test_depth_agrees_with_independent_longest_path(values):
    graph = build("flow_matching", DIMS)
    weight = {
        "add": "d_std", "sub": "d_std", "mul": "d_std", "div": "d_std", "sum": "d_sum", "prod": "d_prod",
        "exp": "d_exp", "sqrt": "d_sqrt",
    }
    g = nx.DiGraph()
    for node in graph.live():
        for i in node.inputs:
            g.add_edge(i, node.id, w=values[weight[node.prim.name]] if node.prim.name in weight else 0)
    longest = nx.dag_longest_path_length(g, weight="w")
    expected = 23 * values["d_std"] + 9 * values["d_sum"] + 2 * values["d_sqrt"] + values["d_exp"]
    assert longest == expected == depth(graph).at(values)[0]


def test_fast_flow_matching_with_aattc_attention():
    """Definition 5.3: the same layer with AAttC (degree 2) as its attention. From its input,
    AAttC adds 4 d_std + 3 d_sum + d_prod instead of 5 d_std + 4 d_sum + d_exp, so the critical
    path becomes 22 d_std + 8 d_sum + d_prod + 2 d_sqrt (no exp gate left)."""
    b = Builder()
    weights = _weights(b, C)
    out = flow_matching(
        b, b.input("Yhat", (H, W, C)), b.input("Ft", (H, W, C)), Fraction(1, 2), weights,
        attend=lambda b, x, w_q, w_k, w_v: aattc(b, x, w_q, w_k, w_v, 2),
    )
    b.output("out", out)
    assert depth(b.graph).critical == [vec(d_std=22, d_sum=8, d_prod=1, d_sqrt=2)]
    assert "exp" not in size(b.graph).by_primitive


# --- size ---------------------------------------------------------------------------------------

def test_size_matches_hand_count():
    h, w, c = 2, 3, 4
    n = h * w
    report = size(build("flow_matching", {"h": h, "w": w, "c": c}))
    layernorm = {"sum": 2 * n, "div": 2 * n + n * c, "sub": n * c, "mul": n * c, "sqrt": n}
    expected = {
        # Yhat + t; γ1·, +β1; ·α1; γ2·, +β2; ·α2
        "add": n * c + n * c + n * c,
        "mul": n * c + n * c + n * c + n * c,
        "div": 0, "sub": 0, "sum": 0, "sqrt": 0, "exp": 0,
    }
    for key, count in layernorm.items():
        expected[key] += 2 * count
    # modulation MLP [n, c]·[c, 6c] + b; final MLP [n, c]·[c, c] + b
    expected["mul"] += n * c * 6 * c + n * c * c
    expected["sum"] += n * 6 * c + n * c
    expected["add"] += n * 6 * c + n * c
    # attention: W_Q W_Kᵀ; X M; (XM) Xᵀ; exp; row sums; 1/D; A X; (AX) W_V; Dinv · O
    expected["mul"] += c * c * c + n * c * c + n * c * n + n * n * c + n * c * c + n * c
    expected["sum"] += c * c + n * c + n * n + n + n * c + n * c
    expected["exp"] += n * n
    expected["div"] += n
    assert dict(report.by_primitive) == expected
    assert report.total == sum(expected.values())


# --- configuration errors -----------------------------------------------------------------------

@pytest.mark.parametrize("t", [-1, 1.01, "5/4"])
def test_time_outside_unit_interval_is_config_error(t):
    with pytest.raises(ConfigError, match=r"flow time t=.* outside \[0, 1\]"):
        build("flow_matching", DIMS, {"t": t})


def _weights(b: Builder, c: int) -> dict:
    return {name: b.input(name, shape, role="weight") for name, shape in flow_matching_weight_shapes(c).items()}


def test_mismatched_inputs_are_graph_errors():
    b = Builder()
    weights = _weights(b, C)
    with pytest.raises(GraphError, match="Ft"):
        flow_matching(b, b.input("Yhat", (H, W, C)), b.input("Ft", (H, W + 1, C)), Fraction(1, 2), weights)


def test_wrong_weight_shape_is_graph_error():
    b = Builder()
    weights = _weights(b, C)
    weights["W_ada"] = b.input("W_ada_bad", (C, 5 * C), role="weight")
    with pytest.raises(GraphError, match="W_ada"):
        flow_matching(b, b.input("Yhat", (H, W, C)), b.input("Ft", (H, W, C)), Fraction(1, 2), weights)


def test_missing_weight_is_graph_error():
    b = Builder()
    weights = _weights(b, C)
    del weights["b_mlp"]
    with pytest.raises(GraphError, match="missing b_mlp"):
        flow_matching(b, b.input("Yhat", (H, W, C)), b.input("Ft", (H, W, C)), Fraction(1, 2), weights)
