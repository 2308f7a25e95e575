"""Shared bodies (Builder.call): one symbolic analysis per argument signature gives the depth,
size and witnesses of the graph with every call inlined."""

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tc0sim.errors import DepthBudgetError
from tc0sim.interp.depth import depth
from tc0sim.interp.expand import expand
from tc0sim.interp.paths import group_path
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder
from tc0sim.ir.vectors import leq

from reference_depth_dense import dense_depth
from depth_cases import assert_scalar_path, many_classes_graph, path_vector, random_graphs, v


def replay(b: Builder, graph, args: dict, weight) -> dict:
    """Build ``graph`` again on ``b``: its inputs named ``cat…`` become weights, the others arguments."""
    mapped = {}
    for node in graph.nodes:
        if node.prim.name == "input":
            mapped[node.id] = weight(node.name, node.shape) if node.name.startswith("cat") else args[node.name]
            continue
        mapped[node.id] = b.node(node.prim, [mapped[i] for i in node.inputs], node._name, **node.attrs)
    return {name: mapped[i] for name, i in graph.outputs.items()}


@st.composite
def callers(draw):
    """A graph calling a random body 1–4 times; each argument a fresh input, a previous result of its
    shape, or a tensor whose elements have different depths (part exp'd, or padded)."""
    body = draw(random_graphs())
    params = {n.name: n.shape for n in body.nodes if n.prim.name == "input" and not n.name.startswith("cat")}
    b = Builder(share=True)
    made: list = []
    for k in range(draw(st.integers(1, 4))):
        args = {}
        for name, shape in params.items():
            same = [t for t in made if t.shape == shape]
            how = draw(st.sampled_from(["fresh", "deep", "mixed", "padded"] + (["result"] * 3 if same else [])))
            fresh = b.input(f"a{k}_{name}", shape)
            if how == "result":
                args[name] = draw(st.sampled_from(same))
            elif how == "deep":
                args[name] = b.exp(fresh)
            elif how == "mixed" and shape and shape[0] > 1:
                args[name] = b.concat([b.sqrt(b.slice(fresh, 0, 0, 1)), b.slice(fresh, 0, 1, shape[0])], axis=0)
            elif how == "padded" and shape and shape[-1] > 1:
                args[name] = b.pad(b.exp(b.slice(fresh, len(shape) - 1, 1, shape[-1])), [(0, 0)] * (len(shape) - 1) + [(1, 0)])
            else:
                args[name] = fresh
        with b.scope(f"call{k}"):
            out = b.call("body", lambda sb, a, w: replay(sb, body, a, w), args, lambda n, s, k=k: b.input(f"w{k}.{n}", s, role="weight"))
        made.extend(out.values())
        last = out
    for i, (name, t) in enumerate(last.items()):
        b.output(f"out{i}", t)
    if draw(st.booleans()) and len(made) > len(last):
        b.output("early", made[0])
    return b.graph


def flat_elements(result, ids: dict, path: list, chain: tuple = ()) -> list:
    """A shared graph's witness (``_witness_path``, output end first) as (flat node, position) pairs."""
    from tc0sim.interp.depth.result import _Inside

    out = []
    for entry in path:
        if isinstance(entry, _Inside):
            out.extend(flat_elements(result, ids, entry.path, chain + (entry.call.id,)))
        else:
            node, position = entry
            out.append((ids[chain + (node.id,)], position))
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(callers())
def test_shared_bodies_give_the_depth_size_and_witnesses_of_the_flat_graph(graph):
    """A call's depth comes from one symbolic analysis of its body; it must equal the depth of the
    graph with every call inlined (and the dense oracle's), element by element, and every witness
    must be a path of scalar gates of the inlined graph's expansion."""
    assert graph.has_calls
    result = depth(graph)
    flat, ids = graph.flat_with_ids()
    assert not flat.has_calls
    dense_critical, dense_elements = dense_depth(flat)
    assert result.critical == depth(flat).critical == dense_critical
    for name, node_id in graph.outputs.items():
        assert result.element_depths(node_id) == dense_elements[flat.outputs[name]]
    assert size(graph).as_dict() == size(flat).as_dict()
    g = expand(flat)
    for crit in result.critical:
        witness = result.witness(crit)
        assert path_vector(witness) == crit
        assert [grp.operator for grp in result.witness_groups(crit)] == [grp.operator for grp in group_path(witness)]
        pairs = flat_elements(result, ids, result._witness_path(crit))[::-1]
        assert_scalar_path(flat, g, [(flat.node(i), position) for i, position in pairs])


def test_nested_bodies_and_the_scopes_of_a_witness():
    """A body that calls a body: depth, size and the witness's scope paths are those of the inlined graph."""

    def inner(b, a, w):
        with b.scope("inner"):
            return {"y": b.exp(b.add(a["x"], w("bias", a["x"].shape)))}

    def outer(b, a, w):
        h = b.sum(b.mul(a["x"], w("scale", a["x"].shape)), axis=1)
        for j in range(2):
            h = b.call("inner", inner, {"x": h}, lambda n, s, j=j: w(f"inner{j}.{n}", s))["y"]
        return {"y": b.sqrt(h)}

    b = Builder(share=True)
    x = b.input("x", (3, 4))
    weights = {}

    def weight(name, shape):
        if name not in weights:
            weights[name] = b.input(name, shape, role="weight")
        return weights[name]

    h = x
    for k in range(3):
        with b.scope(f"layer{k}"):
            h = b.call("outer", outer, {"x": b.broadcast(b.reshape(h, (3, 1)), (3, 4)) if k else h},
                       lambda n, s, k=k: weight(f"layer{k}.{n}", s))["y"]
    b.output("out", h)
    graph = b.graph
    flat = graph.flat()
    assert len(graph.nodes) < len(flat.nodes)
    result = depth(graph)
    assert result.critical == [v(d_std=9, d_sum=3, d_exp=6, d_sqrt=3)] == depth(flat).critical
    assert size(graph).as_dict() == size(flat).as_dict()
    assert size(graph).by_operator["layer1/inner"] == 12  # 2 inner calls, each 3 adds and 3 exps
    (crit,) = result.critical
    scopes = [n.scope_path for n in result.witness(crit)]
    assert scopes == [n.scope_path for n in depth(flat).witness(crit)]
    assert "layer2/inner" in scopes and "layer0" in scopes


def test_a_call_argument_no_used_result_reads_is_not_live():
    def body(b, a, w):
        return {"used": b.exp(a["x"]), "unused": b.sqrt(a["y"])}

    b = Builder(share=True)
    x, y = b.input("x", (2,)), b.input("y", (2,))
    out = b.call("body", body, {"x": x, "y": b.exp(y)}, lambda n, s: None)
    b.output("out", out["used"])
    live = {n.prim.name for n in b.graph.live()}
    assert "sqrt" not in {n.prim.name for n, _, _ in b.graph.occurrences()}
    assert size(b.graph).as_dict() == size(b.graph.flat()).as_dict()
    assert size(b.graph).total == 2 and depth(b.graph).critical == [v(d_exp=1)]
    assert live == {"input", "call", "result"}  # the exp feeding y is dead


def test_a_shared_body_counts_against_the_memory_budget():
    """A body's analysis has the caller's budget: refused with the body's node named, or (when
    asked) an upper bound that says it comes from inside the body."""
    inner = many_classes_graph(40)

    b = Builder(share=True)
    x = b.input("x", (1, 1))
    args = {name: b.exp(x) for name in inner.inputs}
    out = b.call("classes", lambda sb, a, w: replay(sb, inner, a, w), args, lambda n, s: None)
    b.output("out", out["out"])
    exact = depth(b.graph)
    assert exact.exact and exact.critical == [v(d_std=1, d_exp=40, d_sqrt=1)]
    with pytest.raises(DepthBudgetError, match=r"node \d+ \(add .*memory budget"):
        depth(b.graph, memory_budget=20_000)
    bound = depth(b.graph, memory_budget=20_000, allow_upper_bound=True)
    assert not bound.exact and any("in shared classes" in r for r in bound.inexact_reasons)
    assert all(any(leq(c, u) for u in bound.critical) for c in exact.critical)
