"""The builder, the primitive table and rule dispatch: shape errors, unknown primitives, missing rules."""

from fractions import Fraction

import pytest

from tc0sim.errors import GraphError, MissingRuleError
from tc0sim.interp.depth import depth
from tc0sim.interp.expand import expand
from tc0sim.interp.size import SIZE_RULES, size
from tc0sim.ir.graph import Builder, Node
from tc0sim.ir.primitives import ADD, CALL, PRIMITIVES, RESULT, SYMBOLS, Primitive, primitive
from tc0sim.kinds import build
from reference import depth_vector as V


def test_primitive_table_is_consistent():
    for name, p in PRIMITIVES.items():
        assert p.name == name
        assert p.symbol is None or p.symbol in SYMBOLS
        assert p.is_wiring == (p.symbol is None)
    assert {p.symbol for p in PRIMITIVES.values() if p.symbol} == set(SYMBOLS)
    with pytest.raises(GraphError, match="frobnicate"):
        primitive("frobnicate")


def test_binary_shape_error_names_operator_and_shapes():
    b = Builder()
    x, y = b.input("x", (2, 3)), b.input("y", (4,))
    with b.scope("ffn"):
        with pytest.raises(GraphError) as info:
            b.add(x, y)
    assert "(2, 3)" in str(info.value) and "(4,)" in str(info.value)


def test_shape_errors_name_the_primitive_and_scope():
    b = Builder()
    x = b.input("x", (2, 3))
    with b.scope("layernorm"):
        with pytest.raises(GraphError, match=r"reshape in operator layernorm.*\(2, 3\).*\(7,\)"):
            b.reshape(x, (7,))
        with pytest.raises(GraphError, match=r"concat in operator layernorm"):
            b.concat([x, b.input("y", (3, 3))], axis=1)
        with pytest.raises(GraphError, match="gather"):
            b.gather(x, [3], axis=0)
        with pytest.raises(GraphError, match="slice"):
            b.slice(x, 1, 0, 5)
        with pytest.raises(GraphError, match="pad"):
            b.pad(x, [(1, 1)])


def test_unknown_primitive_and_wrong_arity():
    b = Builder()
    x = b.input("x", (2,))
    with pytest.raises(GraphError, match="unknown primitive 'nope'"):
        b.node(primitive("nope"), [x])
    with pytest.raises(GraphError, match="add takes 2"):
        b.node(ADD, [x])


def test_builder_broadcasts_with_explicit_wiring_nodes():
    b = Builder()
    x, bias = b.input("x", (4, 3)), b.input("b", (3,))
    out = b.add(x, bias)
    assert out.shape == (4, 3)
    prims = [n.prim.name for n in b.graph.nodes]
    assert prims == ["input", "input", "reshape", "broadcast", "add"]


def test_constants_are_exact():
    b = Builder()
    c = b.constant([["1/3", 0.5], [2, Fraction(-7, 4)]])
    value = b.graph.node(c.node).attrs["value"]
    assert value.tolist() == [[Fraction(1, 3), Fraction(1, 2)], [Fraction(2), Fraction(-7, 4)]]
    with pytest.raises(GraphError):
        b.constant([float("nan")])


def test_live_ignores_dead_branches():
    b = Builder()
    x = b.input("x", (2,))
    dead = b.exp(x)
    b.output("out", b.relu(x))
    assert dead.node not in {n.id for n in b.graph.live()}


FAKE = Primitive("fake", "d_std", 1, frozenset({"elementwise"}), "test")
"""A row that is not in the primitive table (as one a graph could carry after its scratch block)."""


def _with_fake_primitive():
    b = Builder()
    x = b.input("x", (2,))
    b.output("out", x)
    g = b.graph
    g.nodes.append(Node(len(g.nodes), FAKE, (2,), (x.node,), {}, (), "fake"))
    g.outputs["out"] = len(g.nodes) - 1
    return g


@pytest.mark.parametrize("interpreter, run", [("depth", depth), ("size", size), ("expand", expand)])
def test_a_primitive_without_rule_is_a_missing_rule_error(monkeypatch, interpreter, run):
    if interpreter == "expand":  # expansion counts gates first: let the size interpreter know the primitive
        monkeypatch.setitem(SIZE_RULES, FAKE, lambda node, graph: node.size)
    with pytest.raises(MissingRuleError) as info:
        run(_with_fake_primitive())
    assert info.value.interpreter == interpreter and info.value.primitive == "fake"
    assert interpreter in str(info.value) and "fake" in str(info.value)


def test_shapes_too_big_to_allocate_still_build_and_count():
    """Broadcasting is checked on shapes alone: a 10^21-gate attention builds, and is counted exactly."""
    n, d = 10**8, 10**5
    g = build("attention", {"n": n, "d": d})
    # hand count: W_Q W_K^T (d^3 mul + d^2 sum), X M (n d^2 + n d), (XM) X^T (n^2 d + n^2), exp n^2,
    # row sums n, 1/D n, A X (n^2 d + n d), (AX) W_V (n d^2 + n d), Dinv · O (n d)
    expected = (d**3 + d**2) + (n * d * d + n * d) + (n * n * d + n * n) + n * n + n + n
    expected += (n * n * d + n * d) + (n * d * d + n * d) + n * d
    assert size(g).total == expected
    assert depth(g).critical == [V(6, 5, 0, 1, 0)]


def test_broadcast_mismatch_names_the_operator():
    b = Builder()
    x = b.input("X", (2, 3))
    with b.scope("mlp"):
        with pytest.raises(GraphError, match=r"add in operator mlp: shapes \(2, 3\), \(4,\) do not broadcast"):
            b.add(x, b.input("b", (4,)))


def test_an_unnamed_node_is_named_by_its_primitive_and_id():
    from tc0sim.ir.graph import Builder as _Builder

    b = _Builder()
    x = b.input("x", (2,))
    with b.scope("outer"), b.scope("inner"):
        y = b.exp(x)
        z = b.exp(y)
    node = b.graph.node(z.node)
    assert node.name == f"exp{z.node}" and b.graph.node(x.node).name == "x"
    assert node.scope_path == "outer/inner" and node.operator == "inner"
    assert b.graph.node(y.node).scope is node.scope  # one scope tuple shared inside a scope
    node.name = "renamed"
    assert node.name == "renamed"


def test_broadcast_shapes_of_two_agrees_with_numpy():
    from tc0sim.errors import GraphError as _GraphError
    import numpy as np

    from tc0sim.ir.shapes import broadcast_shapes

    dims = (0, 1, 2, 3)
    shapes = [(), *((a,) for a in dims), *((a, b) for a in dims for b in dims), *((a, 1, b) for a in dims for b in (1, 2))]
    for s in shapes:
        for t in shapes:
            try:
                expected = np.broadcast_shapes(s, t)
            except ValueError:
                with pytest.raises(_GraphError, match="do not broadcast"):
                    broadcast_shapes(s, t)
                continue
            assert broadcast_shapes(s, t) == expected, (s, t)


def _body(b, a, w):
    with b.scope("inner"):
        return {"y": b.add(b.exp(a["x"]), w("bias", a["x"].shape)), "z": b.max(a["x"], a["x"])}


def _caller(share: bool):
    b = Builder(share=share)
    x = b.input("x", (2, 3))
    for j in range(3):
        with b.scope(f"block{j}"):
            out = b.call("body", _body, {"x": x}, lambda n, s, j=j: b.input(f"b{j}.{n}", s, role="weight"))
        x = out["y"]
    b.output("out", x)
    return b


def test_a_plain_builder_builds_a_call_in_place():
    """Without sharing, call runs the body on the builder itself: the graph is the inline code's."""
    plain = _caller(False).graph
    b = Builder()
    x = b.input("x", (2, 3))
    for j in range(3):
        with b.scope(f"block{j}"):
            with b.scope("inner"):
                y = b.add(b.exp(x), b.input(f"b{j}.bias", (2, 3), role="weight"))
                b.max(x, x)
        x = y
    b.output("out", x)
    assert [(n.prim.name, n.shape, n.inputs, n.scope_path, n.name) for n in plain.nodes] == [
        (n.prim.name, n.shape, n.inputs, n.scope_path, n.name) for n in b.graph.nodes
    ]
    assert not plain.has_calls and plain.flat() is plain


def test_a_sharing_builder_builds_each_body_once_per_argument_shapes():
    b = _caller(True)
    graph = b.graph
    calls = [n for n in graph.nodes if n.prim.name == "call"]
    assert len(calls) == 3 and len({id(n.attrs["fn"]) for n in calls}) == 1
    fn = calls[0].attrs["fn"]
    assert list(fn.graph.inputs) == ["x", "bias"] and [fn.graph.node(i).attrs["role"] for i in fn.graph.inputs.values()] == ["param", "weight"]
    b.call("body", _body, {"x": b.input("wide", (4, 3))}, lambda n, s: b.input("wide.bias", s, role="weight"))
    assert len({id(n.attrs["fn"]) for n in b.graph.nodes if n.prim.name == "call"}) == 2  # another shape, another body
    flat = graph.flat()
    plain = _caller(False).graph
    def key(n):  # a weight input is made where the call is, not inside the body: its scope differs
        return (n.prim.name, "" if n.prim.name == "input" else n.scope_path, str(n._name))

    assert sorted(map(key, flat.live())) == sorted(map(key, plain.live()))
    assert set(flat.inputs) == {"x", "b0.bias", "b1.bias", "b2.bias", "wide", "wide.bias"}
    assert {n.prim.name for n, _, _ in graph.occurrences()} == {"input", "exp", "add"}  # max feeds no used result
    assert sum(times for n, _, times in graph.occurrences() if n.prim.name == "exp") == 3


def test_a_body_weight_asked_with_two_shapes_is_refused():
    def body(b, a, w):
        return {"y": b.add(w("v", (2,)), b.reshape(w("v", (1, 2)), (2,)))}

    b = Builder(share=True)
    with pytest.raises(GraphError, match="weight 'v' of body asked with shapes"):
        b.call("body", body, {"x": b.input("x", (2,))}, lambda n, s: None)


def test_call_and_result_are_structure_rows():
    """call and result are rows of role 'structure': an interpreter of flat graphs refuses them by name."""
    from tc0sim.interp.evaluate import EVAL_RULES

    graph = _caller(True).graph
    with pytest.raises(MissingRuleError, match="call"):
        EVAL_RULES.rule(CALL)
    assert {n.prim for n in graph.nodes} >= {CALL, RESULT} and CALL.role == RESULT.role == "structure"
    assert PRIMITIVES["call"] is CALL and "call" not in {n.prim.name for n in graph.flat().nodes}
