"""Shared bodies (``call`` nodes): one symbolic analysis per argument partition, then substitution (docs/dag.md).

A call's body is analysed once per partition of its arguments into classes, with symbolic
arguments: class c of the arguments starts with the set {e_c}, the unit vector of an extra
coordinate n + c (n = len(SYMBOLS)); constants, weights and other depth-0 classes start at 0.
A body vector (v; e_c) is then a path of length v from an element of class c, and (v; 0) a path
from a depth-0 source. Substituting the class's set D_c gives the paths {v + d : d ∈ D_c}. Every
D_c is ≥ 0, so a body vector that is ≤ another in the extended order stays ≤ it after any
substitution: the body's Pareto sets lose nothing, and the call's result is exact.
"""

from __future__ import annotations

import operator

import numpy as np

from tc0sim.interp.depth.result import Body
from tc0sim.interp.depth.state import EMPTY_ID, ZERO_ID, Context, State, canonical, unique_values
from tc0sim.ir.dag import Function
from tc0sim.ir.primitives import SYMBOLS
from tc0sim.ir.vectors import PARETO_NUMPY, Vec, maximal, maximal_rows


class Results(tuple):
    """A call node's state: the states of its results, in result order (it holds no array of its own)."""

    nbytes = 0


def classes(ins: list[State]) -> tuple[tuple, tuple[int, ...]]:
    """The call's signature and the outer set of each argument class, in the body's numbering.

    Elements of the arguments with the same set form one class (numbered in order of first
    appearance, argument by argument); depth-0 elements are no class. The signature is the
    arguments' labels with each core entry's class, so two calls with equal signatures have the
    same partition, and the body's analysis serves both."""
    signature, order = [], {EMPTY_ID: -1, ZERO_ID: -2}
    for state in ins:
        if state.core.size == 1:
            i = int(state.core.flat[0])
            signature.append(order.setdefault(i, len(order) - 2))
            continue
        marks = tuple(order.setdefault(i, len(order) - 2) for i in state.core.reshape(-1).tolist())
        labels = tuple(None if lab is None else (lab.dtype.str, lab.tobytes()) for lab in state.labels)
        signature.append((labels, state.core.shape, marks))
    return tuple(signature), tuple(i for i in order if i not in (EMPTY_ID, ZERO_ID))


def parameter_states(fn: Function, ins: list[State], sets: tuple[int, ...], inner: Context) -> dict[int, State]:
    """The states of a body's parameters in its own analysis (context ``inner``): the arguments'
    states with argument class c's set replaced by {e_c}, the unit vector of coordinate n + c."""
    n = len(SYMBOLS)
    units = {EMPTY_ID: EMPTY_ID, ZERO_ID: ZERO_ID}
    for c, i in enumerate(sets):
        unit = [0] * (n + len(sets))
        unit[n + c] = 1
        units[i] = inner.intern(frozenset({tuple(unit)}))
    return {
        nid: State(state.labels, np.array([units[i] for i in state.core.reshape(-1).tolist()], dtype=np.int32).reshape(state.core.shape))
        for nid, state in zip(fn.graph.inputs.values(), ins)
    }


def result_states(fn: Function, body: Body, sets: tuple[int, ...], ctx: Context) -> list[State]:
    """The states of a call's results: the body's result states with the arguments' sets
    substituted for the argument classes."""
    out = []
    for nid in fn.graph.outputs.values():
        state = body.result.states[nid]
        uniq, inverse = unique_values(state.core)
        table = np.array([substitute(body, i, sets, ctx) for i in uniq], dtype=np.int32)
        out.append(canonical(state.labels, table[inverse]))
    return out


def substitute(body: Body, set_id: int, sets: tuple[int, ...], ctx: Context) -> int:
    """The outer set of a body set: (v; e_c) becomes v + d for every d of class c's set."""
    if set_id == EMPTY_ID:
        return EMPTY_ID
    parts = body.split(set_id)
    key = (id(body), set_id, tuple(sets[c] for c, _ in parts if c >= 0))
    found = ctx.substituted.get(key)
    if found is None:
        pad = (0,) * (ctx.width - len(SYMBOLS))
        count = sum(len(ctx.sets[sets[c]]) if c >= 0 else 1 for c, _ in parts)
        if count <= PARETO_NUMPY or len(parts) == 1:  # (one translate of an antichain is an antichain)
            vectors: set[Vec] = set()
            for c, v in parts:
                base = v + pad
                if c < 0:
                    vectors.add(base)
                else:
                    vectors.update(tuple(map(operator.add, base, d)) for d in ctx.sets[sets[c]])
            found = ctx.intern(frozenset(vectors if len(parts) == 1 else maximal(vectors)))
        else:
            rows = [ctx.array(sets[c]) + np.array(v + pad) if c >= 0 else np.array([v + pad]) for c, v in parts]
            found = ctx.intern(frozenset(map(tuple, maximal_rows(np.concatenate(rows)).tolist())))
        ctx.substituted[key] = found
    return found
