"""The build budget (tc0sim.ir.budget): node and byte limits, pre-allocation checks, and the
models' lower bounds on their node count, checked against the node count of the built graph."""

from __future__ import annotations

import time

import pytest

from tc0sim.errors import BudgetError
from tc0sim.ir.budget import (
    CONSTANT_ELEMENT_BYTES,
    INDEX_BYTES,
    NODE_BYTES,
    BudgetedBuilder,
    BuildBudget,
    active_budget,
    budget_scope,
    repeat_count,
)
from tc0sim.kinds import build, get_kind


def test_node_budget_refuses_the_node_past_the_limit():
    b = BudgetedBuilder(BuildBudget(max_nodes=3), "toy")
    x = b.input("X", (2,))
    y = b.neg(x)
    b.neg(y)  # the third node fits
    with pytest.raises(BudgetError, match="more than 3 tensor nodes.*--max-nodes"):
        b.neg(y)
    assert len(b.graph.nodes) == 3


def test_byte_budget_counts_nodes_and_constant_elements():
    # two nodes fit exactly; a constant of 10 elements adds 10 * CONSTANT_ELEMENT_BYTES
    b = BudgetedBuilder(BuildBudget(max_bytes=2 * NODE_BYTES + 10 * CONSTANT_ELEMENT_BYTES), "toy")
    b.input("X", (10,))
    b.constant([1] * 10)
    assert b.bytes == 2 * NODE_BYTES + 10 * CONSTANT_ELEMENT_BYTES
    with pytest.raises(BudgetError, match="--max-memory"):
        b.input("Y", (1,))


def test_reserve_refuses_before_allocating():
    b = BudgetedBuilder(BuildBudget(max_bytes=10**6), "toy")
    b.reserve(10**6 // INDEX_BYTES, INDEX_BYTES, "fits")
    with pytest.raises(BudgetError, match=r"toy \(too big\)"):
        b.reserve(10**6 // INDEX_BYTES + 1, INDEX_BYTES, "too big")


@pytest.mark.parametrize(
    "kind,dims,params",
    [
        ("upsample", {"h": 10**9, "w": 2, "c": 1, "r": 2}, {}),
        ("conv2d", {"h": 10**9, "w": 2, "c": 1, "k": 1, "hk": 3, "wk": 3}, {}),
        ("downsample", {"h": 10**9, "w": 2, "c": 1, "r": 2}, {}),
        ("aattc", {"n": 2, "d": 200}, {"g": 10}),
        ("var", {"h": 4, "w": 4, "c": 2}, {"layers": 10**9}),
        ("flowar", {"h": 4, "w": 4, "c": 2}, {"layers": 10**12}),
        ("fast_flowar", {"h": 4, "w": 4, "c": 2}, {"layers": 10**12}),
    ],
)
def test_huge_builds_are_refused_at_once(kind, dims, params):
    start = time.monotonic()
    with pytest.raises(BudgetError):
        build(kind, dims, params, BuildBudget())
    assert time.monotonic() - start < 2


def test_the_active_budget_applies_to_builds_that_name_none():
    assert active_budget() is None
    with budget_scope(BuildBudget(max_nodes=5)):
        with pytest.raises(BudgetError):
            build("matmul", {"n1": 2, "d": 2, "n2": 2})
    assert active_budget() is None
    assert len(build("matmul", {"n1": 2, "d": 2, "n2": 2}).nodes) > 5


def test_a_graph_within_budget_is_the_same_graph():
    plain = build("attention", {"n": 3, "d": 2})
    bounded = build("attention", {"n": 3, "d": 2}, budget=BuildBudget())
    assert [(n.prim.name, n.shape, n.inputs) for n in plain.nodes] == [(n.prim.name, n.shape, n.inputs) for n in bounded.nodes]


@pytest.mark.parametrize(
    "kind,dims,params",
    [
        ("var", {"h": 4, "w": 4, "c": 2}, {}),
        ("var", {"h": 4, "w": 4, "c": 2}, {"layers": 3, "g": "mlp", "decoder": ["up", "up", "resnet"]}),
        ("var", {"h": 8, "w": 8, "c": 2}, {"scales": [[1, 1], [2, 2], [4, 4], [8, 8]], "decoder": []}),
        ("var", {"h": 4, "w": 4, "c": 2}, {"layers": 2, "g": "identity", "decoder": ["attn"] * 4}),
        ("flowar", {"h": 8, "w": 8, "c": 2}, {"K": 3, "layers": 2}),
        ("flowar", {"h": 4, "w": 4, "c": 2}, {}),
        ("fast_flowar", {"h": 8, "w": 8, "c": 2}, {"K": 2, "layers": 3}),
    ],
)
def test_min_nodes_is_a_lower_bound_and_not_a_vacuous_one(kind, dims, params):
    info = get_kind(kind)
    nodes = len(build(kind, dims, params).nodes)
    bound = info.estimate(dims, info.validate(params))[0]
    assert bound <= nodes
    assert 4 * bound >= nodes - 200, (bound, nodes)  # the fixed part of a model is at most ~200 nodes


def test_repeat_count_never_raises():
    assert [repeat_count(v) for v in (5, 0, -3, True, [1, 2, 3], (), "x", None, 2.5)] == [5, 1, 1, 1, 3, 1, 1, 1, 1]


def test_shared_bodies_count_against_the_budget_once():
    """A shared body's nodes are built once and counted once; a call adds its call and result nodes."""

    def body(b, a, w):
        return {"y": b.exp(b.exp(a["x"]))}

    b = BudgetedBuilder(BuildBudget(max_nodes=10), "toy", share=True)
    x = b.input("X", (2,))
    for _ in range(3):
        x = b.call("body", body, {"x": x}, lambda n, s: None)["y"]  # 3 body nodes once, then 2 per call
    assert b.nodes == 1 + 3 + 3 * 2
    with pytest.raises(BudgetError, match="more than 10 tensor nodes"):
        b.call("body", body, {"x": x}, lambda n, s: None)


def test_an_array_several_nodes_share_is_charged_once():
    """A gather index shared by two gathers (as the top-p sampler's cached triangle is) is held
    once, so it is counted once: 3 nodes and one 6-element int64 index, not two."""
    import numpy as np

    index = np.array([0, 1, 2, 2, 1, 0], dtype=np.int64)
    b = BudgetedBuilder(BuildBudget(), "toy")
    x = b.input("X", (3,))
    b.gather(x, index, axis=0)
    b.gather(x, index, axis=0)
    assert b.bytes == 3 * NODE_BYTES + index.nbytes
    b.gather(x, index.copy(), axis=0)  # an equal but distinct array is held (and counted) again
    assert b.bytes == 4 * NODE_BYTES + 2 * index.nbytes


@pytest.mark.parametrize("example", ["var_d16.yaml", "var_d30.yaml"])
def test_the_released_examples_build_under_the_default_budget(example):
    """VAR-d16/d30 with the official sampler (V² triangles shared by every scale's top-p) fit the
    default build budget: `tc0sim depth examples/var_d16.yaml` works without --max-memory."""
    from pathlib import Path

    from tc0sim.limits import DEFAULT_MAX_BYTES, DEFAULT_MAX_NODES
    from tc0sim.modelfile import load_model

    spec = load_model(str(Path(__file__).resolve().parents[1] / "examples" / example))
    graph = spec.build(budget=BuildBudget(DEFAULT_MAX_NODES, DEFAULT_MAX_BYTES))
    assert len(graph.nodes) > 1000
