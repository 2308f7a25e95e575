"""The depth rules on non-uniform wiring: concat, slice, gather, pad, reductions, mixing reshapes,
and move rules without a factored rule (defined here), against hand-worked and scalar depths."""

import numpy as np
import pytest

from tc0sim.interp.depth import depth
from tc0sim.interp.expand import expand, scalar_depth, scalar_depth_by_node
from tc0sim.ir.graph import Builder

from reference_depth_dense import dense_depth
from depth_cases import assert_scalar_path, v


def test_concat_then_slice_reads_only_the_shallow_part():
    """concat(exp(x), y) then take the y rows then add: depth d_std, not d_exp + d_std."""
    b = Builder()
    x, y = b.input("x", (2, 3)), b.input("y", (2, 3))
    c = b.concat([b.exp(x), y], axis=0)
    tail = b.slice(c, 0, 2, 4)
    b.output("out", b.add(tail, tail))
    result = depth(b.graph)
    assert result.critical == [v(d_std=1)]
    assert result.exact
    assert [n.name for n in result.witness(v(d_std=1))][0] == "y"


def test_strided_slice_and_gather_pick_classes():
    b = Builder()
    x = b.input("x", (4,))
    c = b.concat([b.exp(x), b.sqrt(x)], axis=0)  # 0..3 d_exp, 4..7 d_sqrt
    b.output("evens_of_exp", b.relu(b.slice(c, 0, 0, 4, 2)))
    b.output("gathered_sqrt", b.gather(c, [[5, 7], [4, 4]], axis=0))
    result = depth(b.graph)
    assert sorted(result.critical) == sorted([v(d_std=1, d_exp=1), v(d_sqrt=1)])
    b2 = Builder()
    x2 = b2.input("x", (4,))
    c2 = b2.concat([b2.exp(x2), b2.sqrt(x2)], axis=0)
    b2.output("only_sqrt", b2.sum(b2.gather(c2, [6, 5], axis=0)))
    assert depth(b2.graph).critical == [v(d_sum=1, d_sqrt=1)]


def test_pad_zeros_have_depth_zero():
    b = Builder()
    x = b.input("x", (2,))
    padded = b.pad(b.exp(x), [(0, 3)])
    b.output("zeros", b.slice(padded, 0, 2, 5))
    b.output("mixed", b.relu(padded))
    result = depth(b.graph)
    assert sorted(result.critical) == [v(d_std=1, d_exp=1)]
    b2 = Builder()
    x2 = b2.input("x", (2,))
    b2.output("zeros", b2.relu(b2.slice(b2.pad(b2.exp(x2), [(1, 3)]), 0, 3, 6)))
    result2 = depth(b2.graph)
    assert result2.critical == [v(d_std=1)]
    path = result2.witness(v(d_std=1))
    assert [n.prim.name for n in path] == ["pad", "slice", "relu"]


def test_reduction_groups_elements_by_the_classes_they_read():
    """Row sums of [[exp, y], [y, y]]: row 0 reads d_exp, row 1 only inputs."""
    b = Builder()
    x, y = b.input("x", (1, 1)), b.input("y", (1, 1))
    top = b.concat([b.exp(x), y], axis=1)
    bottom = b.concat([y, y], axis=1)
    rows = b.sum(b.concat([top, bottom], axis=0), axis=1)
    b.output("row1", b.sqrt(b.slice(rows, 0, 1, 2)))
    b.output("row0", b.slice(rows, 0, 0, 1))
    assert sorted(depth(b.graph).critical) == sorted([v(d_sum=1, d_sqrt=1), v(d_sum=1, d_exp=1)])


@pytest.mark.parametrize("shape", [(16,), (2, 8), (8, 2), (2, 2, 4), (4, 4), (1, 16, 1)])
def test_reshape_mixing_two_labelled_axes(shape):
    """pad(exp(x[2, 3])) is [4, 4] with classes on both axes; reshapes that merge and split them."""
    b = Builder()
    padded = b.pad(b.exp(b.input("x", (2, 3))), [(1, 1), (0, 1)])
    out = b.relu(b.reshape(padded, shape))
    b.output("out", b.sum(out, axis=len(shape) - 1))
    b.output("elements", out)
    result = depth(b.graph)
    g = expand(b.graph)
    per_gate = scalar_depth_by_node(g)
    deep, shallow = [v(d_std=1, d_exp=1)], [v(d_std=1)]
    by_hand = [deep if 1 <= i // 4 <= 2 and i % 4 < 3 else shallow for i in range(16)]
    assert result.element_depths(out.node) == by_hand == [sorted(per_gate[e]) for e in g.graph["outputs"]["elements"]]
    assert result.critical == scalar_depth(g) == dense_depth(b.graph)[0]


def test_a_move_rule_without_a_factored_rule_is_exact_and_its_witness_a_scalar_path():
    """``reverse`` (flip axis 0, defined here) has no factored rule nor origin: depth expands and
    factors its classes, the witness moves element ids through it."""
    from tc0sim.ir import primitives

    reverse = primitives.wiring("reverse", 1, primitives.shapes.same_shape, lambda node, arrays, fill: arrays[0][::-1], "flip axis 0")
    with primitives.scratch_primitive(reverse) as row:
        b = Builder()
        x = b.input("X", (4, 2))
        mixed = b.concat([b.sqrt(b.slice(x, 0, 0, 3)), b.exp(b.slice(x, 0, 3, 4))], axis=0)  # rows: sqrt ×3, exp
        flipped = b.node(row, [mixed])  # rows: exp, sqrt ×3
        b.output("out", b.relu(b.slice(flipped, 0, 0, 2)))
        result = depth(b.graph)
        g = expand(b.graph)
        assert result.critical == scalar_depth(g) == sorted([v(d_std=1, d_exp=1), v(d_std=1, d_sqrt=1)])
        for crit in result.critical:
            elements = result.witness_elements(crit)
            assert_scalar_path(b.graph, g, elements)
        exp_path = result.witness_elements(v(d_std=1, d_exp=1))
        assert [(n.prim.name, p) for n, p in exp_path][1:4] == [("slice", (0, 0)), ("exp", (0, 0)), ("concat", (3, 0))]


def test_a_move_rule_that_creates_elements_gives_them_depth_zero():
    """``front_zero`` (one zero before axis 0, defined here): exp(x) is uniform, its moved form is not."""
    from tc0sim.ir import primitives

    def front_zero_shape(shapes, attrs):
        (s,) = shapes
        return (s[0] + 1,) + s[1:]

    def front_zero(node, arrays, fill):
        return np.pad(arrays[0], [(1, 0)] + [(0, 0)] * (arrays[0].ndim - 1), constant_values=fill())

    with primitives.scratch_primitive(primitives.wiring("front_zero", 1, front_zero_shape, front_zero, "a zero row first")) as row:
        b = Builder()
        out = b.relu(b.node(row, [b.exp(b.input("x", (2,)))]))
        b.output("out", out)
        result = depth(b.graph)
        g = expand(b.graph)
        assert result.element_depths(out.node) == [[v(d_std=1)], [v(d_std=1, d_exp=1)], [v(d_std=1, d_exp=1)]]
        assert result.critical == scalar_depth(g) == [v(d_std=1, d_exp=1)]
        assert_scalar_path(b.graph, g, result.witness_elements(v(d_std=1, d_exp=1)))


def test_every_built_in_wiring_primitive_has_a_factored_rule():
    """Only a move rule defined later (as ``reverse`` above) expands its classes."""
    from tc0sim.interp.depth.rules import WIRING_BY_MOVE
    from tc0sim.ir.primitives import PRIMITIVES

    wiring = [row for row in PRIMITIVES.values() if row.role == "wiring"]
    assert wiring and all(row.move in WIRING_BY_MOVE for row in wiring)


def test_the_upper_bound_of_pad_includes_its_zeros():
    """The node-level union of pad's operand and its created zeros: {0} even over an empty operand."""
    from tc0sim.interp.depth.rules import upper_bound
    from tc0sim.interp.depth.state import EMPTY_ID, Context

    b = Builder()
    x = b.input("x", (0,))
    padded = b.pad(x, [(1, 1)])
    deep = b.pad(b.exp(b.input("y", (2,))), [(1, 0)])
    ctx = Context(2**30)
    assert ctx.sets[int(upper_bound(b.graph.node(padded.node), [ctx.uniform(1, EMPTY_ID)], ctx).core.flat[0])] == {v()}
    exp_state = ctx.uniform(1, ctx.gate("d_exp", frozenset()))
    assert ctx.sets[int(upper_bound(b.graph.node(deep.node), [exp_state], ctx).core.flat[0])] == {v(d_exp=1)}
