"""The factored depth state's algebra (``tc0sim.interp.depth.state``) against dense numpy arrays:
canonical form, factoring, alignment, interned gate sets and the memory budget."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tc0sim.errors import DepthBudgetError
from tc0sim.interp.depth.state import Context, State, align, canonical, factor_dense
from tc0sim.ir.graph import Builder
from tc0sim.ir.primitives import SYMBOLS

from depth_cases import v


def dense(state: State, shape: tuple[int, ...]) -> np.ndarray:
    """Every element's set id: the core read through the labels (numpy fancy indexing; a core axis
    of length 1 is broadcast, as operands aligned with ``align`` have)."""
    index = [np.zeros(d, dtype=np.int64) if lab is None or m == 1 else lab for lab, d, m in zip(state.labels, shape, state.core.shape)]
    return state.core[np.ix_(*index)]


def assert_minimal(state: State, shape: tuple[int, ...]) -> None:
    """Each label of an axis is used, and no two labels of an axis have equal core slices."""
    for axis, lab in enumerate(state.labels):
        m = state.core.shape[axis]
        if lab is None:
            assert m == 1
            continue
        assert len(lab) == shape[axis] and sorted(set(lab.tolist())) == list(range(m)) and m > 1
        assert len({tuple(r) for r in np.moveaxis(state.core, axis, 0).reshape(m, -1).tolist()}) == m


shapes = st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple)


@st.composite
def factored(draw):
    """A random (labels, core, shape): labels need not use every core entry, slices may repeat."""
    shape = draw(shapes)
    counts = [draw(st.integers(1, 3)) for _ in shape]
    labels = [np.array(draw(st.lists(st.integers(0, m - 1), min_size=d, max_size=d)), dtype=np.int64) for d, m in zip(shape, counts)]
    core = np.array(draw(st.lists(st.integers(0, 3), min_size=int(np.prod(counts)), max_size=int(np.prod(counts)))), dtype=np.int32)
    return labels, core.reshape(counts), shape


@settings(max_examples=200, deadline=None)
@given(factored())
def test_canonical_keeps_every_element_and_is_minimal(case):
    labels, core, shape = case
    before = State(tuple(labels), core)
    after = canonical(labels, core)
    assert np.array_equal(dense(after, shape), dense(before, shape))
    assert_minimal(after, shape)


@settings(max_examples=200, deadline=None)
@given(shapes.flatmap(lambda s: st.lists(st.integers(0, 2), min_size=int(np.prod(s)), max_size=int(np.prod(s))).map(lambda xs: np.array(xs).reshape(s))))
def test_factor_dense_reads_back_the_array_with_one_label_per_distinct_slice(array):
    labels, small = factor_dense(array)
    state = State(tuple(labels), small)
    assert np.array_equal(dense(state, array.shape), array)
    for axis, lab in enumerate(labels):
        distinct = {tuple(r) for r in np.moveaxis(array, axis, 0).reshape(array.shape[axis], -1).tolist()}
        assert small.shape[axis] == len(distinct) and (lab is None) == (len(distinct) == 1)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_align_gives_operands_common_labels(data):
    """Two states of one shape: after alignment every axis has one label vector for both, and each
    aligned core read through it gives the operand's elements back."""
    first = data.draw(factored())
    shape = first[2]
    counts = [data.draw(st.integers(1, 3)) for _ in shape]
    labels = [np.array(data.draw(st.lists(st.integers(0, m - 1), min_size=d, max_size=d)), dtype=np.int64) for d, m in zip(shape, counts)]
    core = np.array(data.draw(st.lists(st.integers(0, 3), min_size=int(np.prod(counts)), max_size=int(np.prod(counts)))), dtype=np.int32)
    ins = [canonical(first[0], first[1]), canonical(labels, core.reshape(counts))]
    common, cores = align(Context(2**30), ins)
    for state, aligned in zip(ins, cores):
        assert np.array_equal(dense(State(tuple(common), aligned), shape), dense(state, shape))


def brute_maximal(vectors):
    return {a for a in vectors if not any(a != b and all(x <= y for x, y in zip(a, b)) for b in vectors)}


vectors = st.lists(st.tuples(*[st.integers(0, 3)] * len(SYMBOLS)), min_size=1, max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.lists(vectors, min_size=0, max_size=3), st.sampled_from(list(SYMBOLS)))
def test_a_gate_adds_one_to_its_symbol_over_the_pareto_union_of_its_operands(operands, symbol):
    """Small and large unions (the numpy filter above 24 vectors) against the definition."""
    ctx = Context(2**30)
    ids = frozenset(ctx.intern(frozenset(brute_maximal(set(vs)))) for vs in operands)
    got = ctx.sets[ctx.gate(symbol, ids)]
    union = brute_maximal({u for vs in operands for u in vs}) or {(0,) * len(SYMBOLS)}
    k = list(SYMBOLS).index(symbol)
    assert got == {u[:k] + (u[k] + 1,) + u[k + 1 :] for u in union}
    assert ctx.gate(symbol, ids) == ctx.gate(symbol, ids)  # interned: the same set has one id


def test_a_gate_without_operands_starts_at_zero():
    ctx = Context(2**30)
    assert ctx.sets[ctx.gate("d_exp", frozenset())] == {v(d_exp=1)}


def test_position_and_index_are_inverse():
    state = canonical([np.array([0, 1, 1, 0]), np.array([1, 0, 2])], np.arange(6, dtype=np.int32).reshape(2, 3))
    for index in np.ndindex(state.core.shape):
        assert state.index(state.position(index)) == index
    assert state.ids() == list(range(6))


def test_an_allocation_above_the_budget_is_refused_naming_the_node():
    b = Builder()
    with b.scope("attention"):
        x = b.exp(b.input("x", (3, 4)))
    ctx = Context(1000)
    ctx.node = b.graph.node(x.node)
    ctx.need(100, "a small array")  # 800 bytes: within the budget
    with pytest.raises(DepthBudgetError, match=r"node 1 \(exp '\w+' in operator attention, shape \(3, 4\)\): a core needs 1,008 bytes.* budget of 1,000 bytes"):
        ctx.need(126, "a core")
