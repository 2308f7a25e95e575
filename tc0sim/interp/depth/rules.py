"""The depth rules, one per primitive (``DEPTH_RULES``), on factored states (docs/dag.md).

A gate adds one to its symbol's count (VAR Definition 3.3 / Lemma 3.5); wiring moves states without
adding depth. The cost of a rule grows with the axis lengths and the core, never with the number of
elements:

* slice, gather and pad relabel one axis (pad adds a zero-depth label); transpose permutes axes;
  broadcast adds constant axes without allocating; concat joins the label vectors and the cores;
* an elementwise gate aligns its operands axis by axis (the product partition of their labels)
  and maps every core entry to the gate's set; a reduction takes, per kept core entry, the union
  over the reduced core axes (every label of an axis occurs, so that is the union over elements);
* a reshape keeps the axes it does not touch, merges the axes of each group it mixes into one
  label vector (as long as the group's elements) and factors that vector into the new axes.

A wiring primitive's rule follows from its move rule (``WIRING_BY_MOVE``); a move rule without a
factored one expands the classes, moves them and factors the result. ``upper_bound`` is the
node-level union used (only when the caller allows it) where a rule would exceed the budget.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from tc0sim.errors import MissingRuleError
from tc0sim.interp.depth.state import (
    EMPTY_ID,
    ZERO_ID,
    Context,
    State,
    align,
    canonical,
    factor_dense,
    label_dtype,
    map_ids,
    unique_rows,
    unique_values,
)
from tc0sim.interp.rules import RuleTable
from tc0sim.ir import moves
from tc0sim.ir.graph import Node
from tc0sim.ir.moves import MoveRule
from tc0sim.ir.primitives import Primitive
from tc0sim.ir.vectors import maximal
from tc0sim.ir.wiring import move

Rule = Callable[[Node, list[State], list[tuple[int, ...]], Context], State]
"""A depth rule: (node, operand states, operand shapes, context) -> the node's state."""


def _empty(node: Node, ctx: Context) -> State:
    return ctx.uniform(len(node.shape), EMPTY_ID)


def _source(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: Context) -> State:
    return ctx.uniform(len(node.shape), ZERO_ID if node.size else EMPTY_ID)


def _elementwise(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: Context) -> State:
    """Each output element reads the same position of every operand (shapes are equal)."""
    symbol = node.prim.symbol
    if node.size == 0:
        return _empty(node, ctx)
    if all(s.uniform for s in ins):
        return ctx.uniform(len(node.shape), ctx.gate(symbol, frozenset(int(s.core.flat[0]) for s in ins)))
    labels, cores = align(ctx, ins)
    if len(cores) == 1:
        return canonical(labels, map_ids(cores[0], lambda i: ctx.gate(symbol, frozenset((i,)))))
    shape = np.broadcast_shapes(*(c.shape for c in cores))
    ctx.need(math.prod(shape) * len(cores), "the combined core")
    width = len(ctx.sets)
    if width ** len(cores) < 2**62:
        key = np.zeros(shape, dtype=np.int64)
        for c in cores:
            key = key * width + c
        uniq, inverse = unique_values(key)
        combos = []
        for k in uniq:
            ids = []
            for _ in cores:
                k, i = divmod(k, width)
                ids.append(i)
            combos.append(frozenset(ids))
    else:
        stacked = np.stack([np.broadcast_to(c, shape).reshape(-1) for c in cores], axis=1)
        first, inverse = unique_rows(stacked)
        combos = [frozenset(row) for row in stacked[first].tolist()]
    table = np.array([ctx.gate(symbol, ids) for ids in combos], dtype=np.int32)
    return canonical(labels, table[inverse].reshape(shape))


def _reduction(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: Context) -> State:
    """Each output element reads every element along the reduced axes (one gate of fan-in k)."""
    symbol = node.prim.symbol
    (state,) = ins
    axes = node.attrs["axes"]
    if node.size == 0:
        return _empty(node, ctx)
    if any(shapes[0][a] == 0 for a in axes):
        return ctx.uniform(len(node.shape), ctx.gate(symbol, frozenset()))
    if state.uniform:
        return ctx.uniform(len(node.shape), ctx.gate(symbol, frozenset((int(state.core.flat[0]),))))
    kept = [a for a in range(len(shapes[0])) if a not in axes]
    moved = state.core.transpose(kept + list(axes))
    kept_shape = moved.shape[: len(kept)]
    rows = moved.reshape(math.prod(kept_shape), -1)
    if rows.shape[1] == 1:
        return canonical(
            [state.labels[a] for a in kept],
            map_ids(rows.reshape(kept_shape), lambda i: ctx.gate(symbol, frozenset((i,)))),
        )
    ctx.need(rows.size, "the reduced core")
    rows = np.sort(rows, axis=1)
    first, inverse = unique_rows(rows)
    table = np.array([ctx.gate(symbol, frozenset(row)) for row in rows[first].tolist()], dtype=np.int32)
    return canonical([state.labels[a] for a in kept], table[inverse].reshape(kept_shape))


def _unary_wiring(rule: Callable[[Node, State, tuple[int, ...], Context], State], creates: bool = False) -> Rule:
    """A one-operand wiring rule: empty and uniform nodes are handled here, the rest by ``rule``.

    A uniform node stays uniform, unless the move may ``create`` elements (pad's zeros, constants
    of depth 0): then only a node whose one set is {0} (or that has no elements) is all zeros."""

    def wrapped(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: Context) -> State:
        (state,) = ins
        if node.size == 0:
            return _empty(node, ctx)
        if state.uniform and (not creates or int(state.core.flat[0]) in (EMPTY_ID, ZERO_ID)):
            return ctx.uniform(len(node.shape), ZERO_ID if creates else int(state.core.flat[0]))
        return rule(node, state, shapes[0], ctx)

    wrapped.__doc__ = rule.__doc__
    return wrapped


def _neg(node: Node, state: State, shape: tuple[int, ...], ctx: Context) -> State:
    """A sign flip moves nothing."""
    return state


def _transpose(node: Node, state: State, shape: tuple[int, ...], ctx: Context) -> State:
    """Permute the label vectors and the core's axes."""
    perm = node.attrs["perm"]
    return State(tuple(state.labels[a] for a in perm), state.core.transpose(perm))


def _slice(node: Node, state: State, shape: tuple[int, ...], ctx: Context) -> State:
    """Slice one label vector."""
    axis, start, stop, step = (node.attrs[k] for k in ("axis", "start", "stop", "step"))
    labels = list(state.labels)
    if labels[axis] is None:
        return State(state.labels, state.core)
    labels[axis] = labels[axis][start:stop:step]
    return canonical(labels, state.core)


def _gather(node: Node, state: State, shape: tuple[int, ...], ctx: Context) -> State:
    """Index one label vector; a multi-dimensional index array gives several axes, factored."""
    axis, indices = node.attrs["axis"], node.attrs["indices"]
    lab = state.labels[axis]
    before, after = list(state.labels[:axis]), list(state.labels[axis + 1 :])
    if lab is None:
        core = state.core.reshape(state.core.shape[:axis] + (1,) * indices.ndim + state.core.shape[axis + 1 :])
        return State(tuple(before + [None] * indices.ndim + after), core)
    picked = lab[indices]
    if indices.ndim == 1:
        return canonical(before + [picked] + after, state.core)
    ctx.need(picked.size * 2, "factoring the gathered labels")
    new_labels, small = factor_dense(picked)
    ctx.need(state.core.size // state.core.shape[axis] * max(small.size, 1), "the gathered core", 4)
    return canonical(before + new_labels + after, np.take(state.core, small, axis=axis))


def _broadcast(node: Node, state: State, shape: tuple[int, ...], ctx: Context) -> State:
    """Leading new axes and stretched size-1 axes get one label each: nothing is allocated."""
    extra = len(node.shape) - len(shape)
    return State((None,) * extra + state.labels, state.core.reshape((1,) * extra + state.core.shape))


def _merge_labels(labels: list, dims: list[int], counts: list[int], ctx: Context) -> np.ndarray | None:
    """One label vector for consecutive axes merged row-major (the core's axes merge by reshape)."""
    if all(lab is None for lab in labels):
        return None
    ctx.need(math.prod(dims), "a merged label vector")
    merged = np.zeros(1, dtype=np.int64)
    for lab, d, m in zip(labels, dims, counts):
        if lab is None:
            merged = np.repeat(merged * m, d)
        else:
            merged = (merged[:, None] * m + lab[None, :]).reshape(-1)
    return merged.astype(label_dtype(math.prod(counts)))


def _reshape_groups(dims: list[int], targets: list[int]) -> Iterator[tuple[int, int]]:
    """Split non-unit input and output dims into consecutive groups of equal product: (#in, #out)."""
    i = j = 0
    while i < len(dims):
        a, b, ni, nj = dims[i], targets[j], 1, 1
        while a != b:
            if a < b:
                a, ni = a * dims[i + ni], ni + 1
            else:
                b, nj = b * targets[j + nj], nj + 1
        yield ni, nj
        i, j = i + ni, j + nj


def _reshape(node: Node, state: State, shape: tuple[int, ...], ctx: Context) -> State:
    """Axes a reshape does not touch keep their labels; each group of axes it mixes is merged into
    one label vector (as long as the group's elements) and factored into the new axes."""
    keep = [a for a, d in enumerate(shape) if d != 1]
    dims = [shape[a] for a in keep]
    labels = [state.labels[a] for a in keep]
    core = state.core.reshape([state.core.shape[a] for a in keep])
    targets = [d for d in node.shape if d != 1]
    out_labels: list[np.ndarray | None] = []
    axis = 0
    for ni, nj in _reshape_groups(dims, targets):
        group, counts = labels[:ni], list(core.shape[axis : axis + ni])
        dims_in, dims_out = dims[:ni], targets[:nj]
        labels, dims, targets = labels[ni:], dims[ni:], targets[nj:]
        if ni == nj == 1:
            out_labels.extend(group)
            axis += 1
            continue
        merged = _merge_labels(group, dims_in, counts, ctx)
        core = core.reshape(core.shape[:axis] + (math.prod(counts),) + core.shape[axis + ni :])
        if merged is None:
            out_labels.extend([None] * nj)
            core = core.reshape(core.shape[:axis] + (1,) * nj + core.shape[axis + 1 :])
        elif nj == 1:
            out_labels.append(merged)
        else:
            ctx.need(merged.size * 2, "factoring a mixed group of axes")
            new_labels, small = factor_dense(merged.reshape(dims_out))
            ctx.need(core.size // core.shape[axis] * small.size, "the reshaped core", 4)
            out_labels.extend(new_labels)
            core = np.take(core, small, axis=axis)
        axis += nj
    remaining = iter(zip(out_labels, core.shape))
    full = [(None, 1) if d == 1 else next(remaining) for d in node.shape]
    return canonical([lab for lab, _ in full], core.reshape([m for _, m in full]))


def _pad(node: Node, state: State, shape: tuple[int, ...], ctx: Context) -> State:
    """Zero padding: each padded axis gets one more label, whose core slab is {0} (constants)."""
    widths = node.attrs["widths"]
    labels = list(state.labels)
    core_pad = []
    for axis, (before, after) in enumerate(widths):
        if before == after == 0:
            core_pad.append((0, 0))
            continue
        m = state.core.shape[axis]
        lab = np.zeros(shape[axis], dtype=np.int64) if labels[axis] is None else labels[axis]
        ctx.need(node.shape[axis], "a padded label vector")
        labels[axis] = np.concatenate([np.full(before, m), lab, np.full(after, m)]).astype(label_dtype(m + 1))
        core_pad.append((0, 1))
    ctx.need(math.prod(c + b for c, (_, b) in zip(state.core.shape, core_pad)), "the padded core", 4)
    return canonical(labels, np.pad(state.core, core_pad, constant_values=ZERO_ID))


def _concat(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: Context) -> State:
    """Concatenation: the label vectors of the joined axis follow each other; other axes are aligned."""
    if node.size == 0:
        return _empty(node, ctx)
    axis = node.attrs["axis"]
    parts = [(s, shape) for s, shape in zip(ins, shapes) if math.prod(shape) > 0]
    if all(s.uniform for s, _ in parts) and len({int(s.core.flat[0]) for s, _ in parts}) == 1:
        return ctx.uniform(len(node.shape), int(parts[0][0].core.flat[0]))
    states = [s for s, _ in parts]
    labels, cores = align(ctx, states, skip=axis)
    shape = [max(c.shape[a] for c in cores) for a in range(len(node.shape))]
    joined, offset, pieces = [], 0, []
    for (s, part_shape), c in zip(parts, cores):
        m = c.shape[axis]
        lab = s.labels[axis]
        joined.append(np.full(part_shape[axis], offset) if lab is None else lab.astype(np.int64) + offset)
        offset += m
        shape[axis] = m
        pieces.append(np.broadcast_to(c, shape))
    ctx.need(node.shape[axis] + sum(p.size for p in pieces), "the concatenated core")
    labels[axis] = np.concatenate(joined).astype(label_dtype(offset))
    return canonical(labels, np.concatenate(pieces, axis=axis))


CREATING_MOVES: frozenset[MoveRule] = moves.CREATING
"""Move rules that create elements (pad's zeros): a created element is a constant, of depth 0."""

_FACTORED: dict[MoveRule, Callable[[Node, State, tuple[int, ...], Context], State]] = {
    moves.same_place: _neg,
    moves.transpose: _transpose,
    moves.slice_axis: _slice,
    moves.gather: _gather,
    moves.broadcast: _broadcast,
    moves.reshape: _reshape,
    moves.pad: _pad,
}

WIRING_BY_MOVE: dict[MoveRule, Rule] = {
    **{m: _unary_wiring(rule, creates=m in CREATING_MOVES) for m, rule in _FACTORED.items()},
    moves.concat: _concat,
}
"""The factored rule of each move rule: a wiring primitive's depth rule follows from its ``move``."""


def _moved_densely(node: Node, state: State, shape: tuple[int, ...], ctx: Context) -> State:
    """A move rule without a factored rule: expand the classes, move them (a new element is a
    constant: {0}), factor the result (exact; costs the node's element count, within the budget)."""
    ctx.need(math.prod(shape) + node.size * 3, f"the expanded classes of {node.prim.name} (no factored rule)")
    index = [np.zeros(d, dtype=np.int64) if lab is None else lab for lab, d in zip(state.labels, shape)]
    dense = state.core[np.ix_(*index)] if index else state.core
    labels, core = factor_dense(np.ascontiguousarray(move(node, [dense], lambda: ZERO_ID)))
    return canonical(labels, core)


_MOVED_DENSELY = _unary_wiring(_moved_densely, creates=True)


def _dense_wiring(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: Context) -> State:
    if len(ins) != 1:
        raise MissingRuleError("depth", node.prim.name)  # wiring of several operands needs its own rule
    return _MOVED_DENSELY(node, ins, shapes, ctx)


_BY_ROLE: dict[str, Rule] = {"source": _source, "reduction": _reduction, "elementwise": _elementwise}
"""The rule of every primitive of a role other than wiring (``Primitive.role``)."""


def _derive(row: Primitive) -> Rule | None:
    """A row's depth rule: by its role; for wiring, by its move rule (none without one)."""
    if row.role == "wiring":
        return WIRING_BY_MOVE.get(row.move, _dense_wiring if row.move is not None else None)
    return _BY_ROLE.get(row.role)


DEPTH_RULES: RuleTable[Rule] = RuleTable("depth", _derive)


def upper_bound(node: Node, ins: list[State], ctx: Context) -> State:
    """The node-level union of the operands' sets (one set for every element): an upper bound."""
    ids = frozenset(i for s in ins for i in s.ids())
    row = node.prim
    if row.symbol is None:
        ids = ids | {ZERO_ID} if row.move in CREATING_MOVES else ids
        set_id = ctx.intern(frozenset(maximal({v for i in ids for v in ctx.sets[i]})))
    else:
        set_id = ctx.gate(row.symbol, ids)
    return ctx.uniform(len(node.shape), set_id if node.size else EMPTY_ID)
