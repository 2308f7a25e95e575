"""The depth interpreter: the critical path as Pareto-maximal vectors over the symbols, exact (docs/dag.md).

A path's length is a vector of counts over (d_std, d_sum, d_prod, d_exp, d_sqrt) (the VAR paper,
Definition 3.3 / Lemma 3.5, gives one symbolic depth per primitive). The result equals the
critical depth of the graph expanded to one node per gate
(``tc0sim.interp.expand``), not a tensor-level over-approximation.

Every element of a node has its own Pareto set, but a node has few distinct ones. A node's state
is *factored*: one label vector per axis (``labels[i][x_i]`` is the class of position ``x_i`` on
axis i; ``None`` when the axis has one class) and a small ``core`` array of interned set ids over
the distinct labels, so element ``x`` has the set ``core[labels[0][x_0], …, labels[k-1][x_{k-1}]]``.
The cost of a rule grows with the axis lengths and the core, never with the number of elements:

* slice, gather and pad relabel one axis (pad adds a zero-depth label); transpose permutes axes;
  broadcast adds constant axes without allocating; concat joins the label vectors and the cores;
* an elementwise gate aligns its operands axis by axis (the product partition of their labels)
  and maps every core entry to the gate's set; a reduction takes, per kept core entry, the union
  over the reduced core axes (every label of an axis occurs, so that is the union over elements);
* a reshape keeps the axes it does not touch, merges the axes of each group it mixes into one
  label vector (as long as the group's elements) and factors that vector into the new axes.

After every rule the state is made canonical: unused labels are dropped and labels whose core
slices are equal are merged. Anything that would not fit the memory budget is refused with
``DepthBudgetError`` naming the node, never answered with a bound — unless the caller opted in
with ``allow_upper_bound``: then that node becomes the node-level union of its operands (an upper
bound), ``exact`` is False and ``inexact_reasons`` says where.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import product
from typing import Any

import numpy as np

from tc0sim.errors import DepthBudgetError, MissingRuleError
from tc0sim.interp.paths import PathGroup, group_path
from tc0sim.interp.rules import RuleTable
from tc0sim.ir import moves
from tc0sim.ir.graph import CALL, RESULT, Function, Graph, Node, paused_gc
from tc0sim.ir.primitives import PRIMITIVES, SYMBOLS, Primitive
from tc0sim.ir.vectors import PARETO_NUMPY, Number, Vec, as_vec, dot, fmt, leq, maximal, maximal_rows, to_dict
from tc0sim.ir.wiring import move, origin

DEFAULT_MEMORY_BUDGET = 2 * 1024**3
"""Bytes the factored state of one step (and all states kept) may take before the analysis refuses."""

PSet = frozenset  # frozenset[Vec], always Pareto-reduced
EMPTY_ID, ZERO_ID = 0, 1
"""Interned ids of the empty set (a node without elements) and of {0} (sources, pad's zeros)."""

Labels = tuple  # tuple[np.ndarray | None, ...]


@dataclass(frozen=True)
class State:
    """A node's factored depth state: per-axis ``labels`` and the ``core`` of set ids.

    ``core.shape[i]`` is the number of labels of axis i (1 where ``labels[i]`` is None)."""

    labels: Labels
    core: np.ndarray

    @property
    def uniform(self) -> bool:
        return self.core.size == 1

    def ids(self) -> list[int]:
        """The distinct set ids some element has."""
        return sorted(set(self.core.reshape(-1).tolist())) if self.core.size <= SMALL else np.unique(self.core).tolist()

    def index(self, position: tuple[int, ...]) -> tuple[int, ...]:
        """The core index of an element."""
        return tuple(0 if lab is None else int(lab[x]) for lab, x in zip(self.labels, position))

    def position(self, index: tuple[int, ...]) -> tuple[int, ...]:
        """One element (the first along each axis) with the given core index."""
        return tuple(0 if lab is None else int(np.flatnonzero(lab == k)[0]) for lab, k in zip(self.labels, index))

    @property
    def nbytes(self) -> int:
        return self.core.nbytes + sum(lab.nbytes for lab in self.labels if lab is not None)


def _label_dtype(n: int) -> type:
    return np.int8 if n < 127 else np.int16 if n < 32767 else np.int32


class _Context:
    """The interned Pareto sets, the gate cache, the memory budget and the record of fallbacks."""

    def __init__(self, memory_budget: int, allow_upper_bound: bool = False, width: int | None = None):
        self.width = len(SYMBOLS) if width is None else width
        """Vector length: one entry per symbol, then one per argument class of a shared body."""
        self.sets: list[PSet] = [frozenset(), frozenset({(0,) * self.width})]
        self.ids: dict[PSet, int] = {s: i for i, s in enumerate(self.sets)}
        self.gates: dict[tuple[str, frozenset], int] = {}
        self.cores: dict[tuple[int, int], np.ndarray] = {}
        self.budget = memory_budget
        self.kept = 0
        self.node: Node = Node(-1, "input", (), (), {}, (), "")
        self.reasons: list[str] = []
        self.fallbacks: set[int] = set()
        self.allow_upper_bound = allow_upper_bound
        self.bodies: dict[tuple, _Body] = {}
        self.calls: dict[int, tuple[_Body, tuple[int, ...]]] = {}
        self.substituted: dict[tuple, int] = {}
        self.arrays: dict[int, np.ndarray] = {}

    def array(self, set_id: int) -> np.ndarray:
        """The vectors of a set as the rows of an int array (made once per set)."""
        found = self.arrays.get(set_id)
        if found is None:
            found = self.arrays[set_id] = np.array(sorted(self.sets[set_id]), dtype=np.int64).reshape(-1, self.width)
        return found

    def child(self, width: int) -> _Context:
        """The context of a shared body's analysis: vectors ``width`` long, the same body memo."""
        ctx = _Context(self.budget, self.allow_upper_bound, width)
        ctx.bodies, ctx.kept = self.bodies, self.kept  # a body's states count against the same budget
        return ctx

    def intern(self, s: PSet) -> int:
        found = self.ids.get(s)
        if found is None:
            found = self.ids[s] = len(self.sets)
            self.sets.append(s)
        return found

    def gate(self, symbol: str, ids: frozenset) -> int:
        """The set id of a gate of ``symbol`` reading elements with the sets ``ids`` (none: it starts at 0)."""
        key = (symbol, ids)
        found = self.gates.get(key)
        if found is None:
            if len(ids) == 1:
                (only,) = ids
                base = self.sets[only] or self.sets[ZERO_ID]
            elif sum(len(self.sets[i]) for i in ids) <= PARETO_NUMPY:
                base = maximal({v for i in ids for v in self.sets[i]}) or self.sets[ZERO_ID]
            else:
                base = [tuple(v) for v in maximal_rows(np.concatenate([self.array(i) for i in ids])).tolist()]
            axis = SYMBOLS.index(symbol)
            found = self.gates[key] = self.intern(frozenset(v[:axis] + (v[axis] + 1,) + v[axis + 1 :] for v in base))
        return found

    def uniform(self, ndim: int, set_id: int) -> State:
        core = self.cores.get((ndim, set_id))
        if core is None:
            core = self.cores[(ndim, set_id)] = np.full((1,) * ndim, set_id, dtype=np.int32)
            core.flags.writeable = False
        return State((None,) * ndim, core)

    def need(self, elements: int, what: str, itemsize: int = 8) -> None:
        """Refuse (DepthBudgetError) an allocation that would take the analysis over the budget."""
        wanted = elements * itemsize
        if self.kept + wanted > self.budget:
            node = self.node
            raise DepthBudgetError(
                f"exact depth refused at node {node.id} ({node.prim} {node.name!r} in operator "
                f"{node.scope_path or '(top)'}, shape {node.shape}): {what} needs {_mb(wanted)} with {_mb(self.kept)} "
                f"kept, above the memory budget of {_mb(self.budget)} (raise the budget with --memory-budget, "
                "or accept an upper bound with --allow-upper-bound)"
            )


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n:,} bytes"


Rule = Callable[[Node, list[State], list[tuple[int, ...]], _Context], State]


# --- canonical form -------------------------------------------------------------------------------


def _rows(core: np.ndarray, axis: int) -> np.ndarray:
    """The slices of ``core`` along ``axis``, one per row (in some fixed order of the other axes)."""
    return core.swapaxes(0, axis).reshape(core.shape[axis], -1)


SMALL = 512
"""Arrays up to this many entries are deduplicated in Python (faster than numpy's sort for them)."""


def _unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index of the first occurrence of each distinct row, inverse) of a 2-D array."""
    if rows.size <= SMALL:
        seen: dict[tuple, int] = {}
        first: list[int] = []
        inverse = [seen.setdefault(row, len(seen)) for row in map(tuple, rows.tolist())]
        if len(seen) == 1:
            return np.zeros(1, dtype=np.int64), np.zeros(len(inverse), dtype=np.int64)
        first = [0] * len(seen)
        for k in range(len(inverse) - 1, -1, -1):
            first[inverse[k]] = k
        return np.array(first, dtype=np.int64), np.array(inverse, dtype=np.int64)
    if rows.shape[1] == 1:
        _, first, inverse = np.unique(rows[:, 0], return_index=True, return_inverse=True)
    else:
        _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
    return first, inverse.reshape(-1)


def _unique_values(a: np.ndarray) -> tuple[list[int], np.ndarray]:
    """(distinct values, inverse with a's shape) of an int array."""
    if a.size <= SMALL:
        seen: dict[int, int] = {}
        inverse = [seen.setdefault(x, len(seen)) for x in a.reshape(-1).tolist()]
        return list(seen), np.array(inverse, dtype=np.int64).reshape(a.shape)
    uniq, inverse = np.unique(a, return_inverse=True)
    return uniq.tolist(), inverse.reshape(a.shape)


def _canonical(labels: Labels | list, core: np.ndarray) -> State:
    """The canonical form: first every axis drops the labels no position uses, then, axis by axis,
    labels with equal core slices are merged. One merging pass suffices: merging equal slices on
    one axis never makes two different slices of another axis equal."""
    if core.size == 1:  # one class: every axis has the one label
        return State((None,) * len(labels), core)
    labels = list(labels)
    for axis, lab in enumerate(labels):
        if lab is None:
            continue
        m = core.shape[axis]
        present = np.flatnonzero(np.bincount(lab, minlength=m)) if m > 1 else None
        if present is not None and len(present) < m:
            old_to_new = np.zeros(m, dtype=np.int64)
            old_to_new[present] = np.arange(len(present))
            core = np.take(core, present, axis=axis)
            lab = old_to_new[lab]
        labels[axis] = None if core.shape[axis] == 1 else lab
    for axis, lab in enumerate(labels):
        if lab is None:
            continue
        first, inverse = _unique_rows(_rows(core, axis))
        if len(first) < core.shape[axis]:
            core = np.take(core, first, axis=axis)
            lab = inverse[lab]
        labels[axis] = None if len(first) == 1 else lab.astype(_label_dtype(len(first)), copy=False)
    return State(tuple(labels), core)


def _factor_dense(dense: np.ndarray) -> tuple[list[np.ndarray | None], np.ndarray]:
    """Per-axis labels and a small array ``small`` with ``dense == small[labels…]`` (for an int array)."""
    labels: list[np.ndarray | None] = []
    firsts = []
    for axis in range(dense.ndim):
        first, inverse = _unique_rows(_rows(dense, axis))
        labels.append(None if len(first) == 1 else inverse.astype(_label_dtype(len(first))))
        firsts.append(first)
    return labels, dense[np.ix_(*firsts)] if dense.ndim else dense


# --- rules ------------------------------------------------------------------------------------------


def _empty(node: Node, ctx: _Context) -> State:
    return ctx.uniform(len(node.shape), EMPTY_ID)


def _source(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: _Context) -> State:
    return ctx.uniform(len(node.shape), ZERO_ID if node.size else EMPTY_ID)


def _align(ctx: _Context, ins: list[State], skip: int | None = None) -> tuple[list[np.ndarray | None], list[np.ndarray]]:
    """Common labels for every axis (but ``skip``) of equally shaped operands: the product partition
    of their labels on that axis, each operand's core re-indexed to it (size-1 axes broadcast)."""
    ndim = len(ins[0].labels)
    cores = [s.core for s in ins]
    labels: list[np.ndarray | None] = []
    for axis in range(ndim):
        if axis == skip:
            labels.append(None)
            continue
        owners = [k for k, s in enumerate(ins) if s.labels[axis] is not None]
        if not owners:
            labels.append(None)
            continue
        first = ins[owners[0]].labels[axis]
        if all(ins[k].labels[axis] is first or np.array_equal(ins[k].labels[axis], first) for k in owners[1:]):
            labels.append(first)
            continue
        ctx.need(len(first) * (len(owners) + 1), f"aligning the labels of axis {axis}")
        key = np.zeros(len(first), dtype=np.int64)
        for k in owners:
            key = key * cores[k].shape[axis] + ins[k].labels[axis]
        uniq, inverse = np.unique(key, return_inverse=True)
        for k in reversed(owners):
            uniq, digit = np.divmod(uniq, cores[k].shape[axis])
            ctx.need(cores[k].size // cores[k].shape[axis] * len(digit), "an aligned core", 4)
            cores[k] = np.take(cores[k], digit, axis=axis)
        labels.append(inverse.reshape(-1).astype(_label_dtype(int(inverse.max()) + 1)))
    return labels, cores


def _map_ids(core: np.ndarray, f: Callable[[int], int]) -> np.ndarray:
    """Apply ``f`` to every distinct set id of ``core``."""
    uniq, inverse = _unique_values(core)
    return np.array([f(i) for i in uniq], dtype=np.int32)[inverse]


def _elementwise(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: _Context) -> State:
    """Each output element reads the same position of every operand (shapes are equal)."""
    symbol = PRIMITIVES[node.prim].symbol
    if node.size == 0:
        return _empty(node, ctx)
    if all(s.uniform for s in ins):
        return ctx.uniform(len(node.shape), ctx.gate(symbol, frozenset(int(s.core.flat[0]) for s in ins)))
    labels, cores = _align(ctx, ins)
    if len(cores) == 1:
        return _canonical(labels, _map_ids(cores[0], lambda i: ctx.gate(symbol, frozenset((i,)))))
    shape = np.broadcast_shapes(*(c.shape for c in cores))
    ctx.need(math.prod(shape) * len(cores), "the combined core")
    width = len(ctx.sets)
    if width ** len(cores) < 2**62:
        key = np.zeros(shape, dtype=np.int64)
        for c in cores:
            key = key * width + c
        uniq, inverse = _unique_values(key)
        combos = []
        for k in uniq:
            ids = []
            for _ in cores:
                k, i = divmod(k, width)
                ids.append(i)
            combos.append(frozenset(ids))
    else:
        stacked = np.stack([np.broadcast_to(c, shape).reshape(-1) for c in cores], axis=1)
        first, inverse = _unique_rows(stacked)
        combos = [frozenset(row) for row in stacked[first].tolist()]
    table = np.array([ctx.gate(symbol, ids) for ids in combos], dtype=np.int32)
    return _canonical(labels, table[inverse].reshape(shape))


def _reduction(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: _Context) -> State:
    """Each output element reads every element along the reduced axes (one gate of fan-in k)."""
    symbol = PRIMITIVES[node.prim].symbol
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
        return _canonical(
            [state.labels[a] for a in kept],
            _map_ids(rows.reshape(kept_shape), lambda i: ctx.gate(symbol, frozenset((i,)))),
        )
    ctx.need(rows.size, "the reduced core")
    rows = np.sort(rows, axis=1)
    first, inverse = _unique_rows(rows)
    table = np.array([ctx.gate(symbol, frozenset(row)) for row in rows[first].tolist()], dtype=np.int32)
    return _canonical([state.labels[a] for a in kept], table[inverse].reshape(kept_shape))


def _unary_wiring(rule: Callable[[Node, State, tuple[int, ...], _Context], State], creates: bool = False) -> Rule:
    """A one-operand wiring rule: empty and uniform nodes are handled here, the rest by ``rule``.

    A uniform node stays uniform, unless the move may ``create`` elements (pad's zeros, constants
    of depth 0): then only a node whose one set is {0} (or that has no elements) is all zeros."""

    def wrapped(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: _Context) -> State:
        (state,) = ins
        if node.size == 0:
            return _empty(node, ctx)
        if state.uniform and (not creates or int(state.core.flat[0]) in (EMPTY_ID, ZERO_ID)):
            return ctx.uniform(len(node.shape), ZERO_ID if creates else int(state.core.flat[0]))
        return rule(node, state, shapes[0], ctx)

    wrapped.__doc__ = rule.__doc__
    return wrapped


def _neg(node: Node, state: State, shape: tuple[int, ...], ctx: _Context) -> State:
    """A sign flip moves nothing."""
    return state


def _transpose(node: Node, state: State, shape: tuple[int, ...], ctx: _Context) -> State:
    """Permute the label vectors and the core's axes."""
    perm = node.attrs["perm"]
    return State(tuple(state.labels[a] for a in perm), state.core.transpose(perm))


def _slice(node: Node, state: State, shape: tuple[int, ...], ctx: _Context) -> State:
    """Slice one label vector."""
    axis, start, stop, step = (node.attrs[k] for k in ("axis", "start", "stop", "step"))
    labels = list(state.labels)
    if labels[axis] is None:
        return State(state.labels, state.core)
    labels[axis] = labels[axis][start:stop:step]
    return _canonical(labels, state.core)


def _gather(node: Node, state: State, shape: tuple[int, ...], ctx: _Context) -> State:
    """Index one label vector; a multi-dimensional index array gives several axes, factored."""
    axis, indices = node.attrs["axis"], node.attrs["indices"]
    lab = state.labels[axis]
    before, after = list(state.labels[:axis]), list(state.labels[axis + 1 :])
    if lab is None:
        core = state.core.reshape(state.core.shape[:axis] + (1,) * indices.ndim + state.core.shape[axis + 1 :])
        return State(tuple(before + [None] * indices.ndim + after), core)
    picked = lab[indices]
    if indices.ndim == 1:
        return _canonical(before + [picked] + after, state.core)
    ctx.need(picked.size * 2, "factoring the gathered labels")
    new_labels, small = _factor_dense(picked)
    ctx.need(state.core.size // state.core.shape[axis] * max(small.size, 1), "the gathered core", 4)
    return _canonical(before + new_labels + after, np.take(state.core, small, axis=axis))


def _broadcast(node: Node, state: State, shape: tuple[int, ...], ctx: _Context) -> State:
    """Leading new axes and stretched size-1 axes get one label each: nothing is allocated."""
    extra = len(node.shape) - len(shape)
    return State((None,) * extra + state.labels, state.core.reshape((1,) * extra + state.core.shape))


def _merge_labels(labels: list, dims: list[int], counts: list[int], ctx: _Context) -> np.ndarray | None:
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
    return merged.astype(_label_dtype(math.prod(counts)))


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


def _reshape(node: Node, state: State, shape: tuple[int, ...], ctx: _Context) -> State:
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
            new_labels, small = _factor_dense(merged.reshape(dims_out))
            ctx.need(core.size // core.shape[axis] * small.size, "the reshaped core", 4)
            out_labels.extend(new_labels)
            core = np.take(core, small, axis=axis)
        axis += nj
    remaining = iter(zip(out_labels, core.shape))
    full = [(None, 1) if d == 1 else next(remaining) for d in node.shape]
    return _canonical([lab for lab, _ in full], core.reshape([m for _, m in full]))


def _pad(node: Node, state: State, shape: tuple[int, ...], ctx: _Context) -> State:
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
        labels[axis] = np.concatenate([np.full(before, m), lab, np.full(after, m)]).astype(_label_dtype(m + 1))
        core_pad.append((0, 1))
    ctx.need(math.prod(c + b for c, (_, b) in zip(state.core.shape, core_pad)), "the padded core", 4)
    return _canonical(labels, np.pad(state.core, core_pad, constant_values=ZERO_ID))


def _concat(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: _Context) -> State:
    """Concatenation: the label vectors of the joined axis follow each other; other axes are aligned."""
    if node.size == 0:
        return _empty(node, ctx)
    axis = node.attrs["axis"]
    parts = [(s, shape) for s, shape in zip(ins, shapes) if math.prod(shape) > 0]
    if all(s.uniform for s, _ in parts) and len({int(s.core.flat[0]) for s, _ in parts}) == 1:
        return ctx.uniform(len(node.shape), int(parts[0][0].core.flat[0]))
    states = [s for s, _ in parts]
    labels, cores = _align(ctx, states, skip=axis)
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
    labels[axis] = np.concatenate(joined).astype(_label_dtype(offset))
    return _canonical(labels, np.concatenate(pieces, axis=axis))


_WIRING_BY_MOVE: dict[Callable, Rule] = {
    moves.same_place: _unary_wiring(_neg),
    moves.transpose: _unary_wiring(_transpose),
    moves.slice_axis: _unary_wiring(_slice),
    moves.gather: _unary_wiring(_gather),
    moves.broadcast: _unary_wiring(_broadcast),
    moves.reshape: _unary_wiring(_reshape),
    moves.pad: _unary_wiring(_pad, creates=True),
    moves.concat: _concat,
}
"""The factored rule of each move rule: a wiring primitive's depth rule follows from its ``move``."""


def _moved_densely(node: Node, state: State, shape: tuple[int, ...], ctx: _Context) -> State:
    """A move rule without a factored rule: expand the classes, move them (a new element is a
    constant: {0}), factor the result (exact; costs the node's element count, within the budget)."""
    ctx.need(math.prod(shape) + node.size * 3, f"the expanded classes of {node.prim} (no factored rule)")
    index = [np.zeros(d, dtype=np.int64) if lab is None else lab for lab, d in zip(state.labels, shape)]
    dense = state.core[np.ix_(*index)] if index else state.core
    labels, core = _factor_dense(np.ascontiguousarray(move(node, [dense], lambda: ZERO_ID)))
    return _canonical(labels, core)


_MOVED_DENSELY = _unary_wiring(_moved_densely, creates=True)


def _dense_wiring(node: Node, ins: list[State], shapes: list[tuple[int, ...]], ctx: _Context) -> State:
    if len(ins) != 1:
        raise MissingRuleError("depth", node.prim)  # wiring of several operands needs its own rule
    return _MOVED_DENSELY(node, ins, shapes, ctx)


def _derive(row: Primitive) -> Rule | None:
    if row.role == "wiring":
        return _WIRING_BY_MOVE.get(row.move, _dense_wiring if row.move is not None else None)
    return {"source": _source, "reduction": _reduction, "elementwise": _elementwise}[row.role]


DEPTH_RULES: RuleTable[Rule] = RuleTable("depth", _derive)


def _upper_bound(node: Node, ins: list[State], ctx: _Context) -> State:
    """The node-level union of the operands' sets (one set for every element): an upper bound."""
    ids = frozenset(i for s in ins for i in s.ids())
    symbol = PRIMITIVES[node.prim].symbol
    if symbol is None:
        ids = ids | {ZERO_ID} if node.prim == "pad" else ids
        set_id = ctx.intern(frozenset(maximal({v for i in ids for v in ctx.sets[i]})))
    else:
        set_id = ctx.gate(symbol, ids)
    return ctx.uniform(len(node.shape), set_id if node.size else EMPTY_ID)


# --- shared bodies ----------------------------------------------------------------------------------
#
# A call's body is analysed once per partition of its arguments into classes, with symbolic
# arguments: class c of the arguments starts with the set {e_c}, the unit vector of an extra
# coordinate n + c (n = len(SYMBOLS)); constants, weights and other depth-0 classes start at 0.
# A body vector (v; e_c) is then a path of length v from an element of class c, and (v; 0) a path
# from a depth-0 source. Substituting the class's set D_c gives the paths {v + d : d ∈ D_c}. Every
# D_c is ≥ 0, so a body vector that is ≤ another in the extended order stays ≤ it after any
# substitution: the body's Pareto sets lose nothing, and the call's result is exact.


@dataclass
class _Body:
    """One analysis of a shared body: its depth result and memo tables."""

    result: DepthResult
    parts: dict[int, list[tuple[int, Vec]]] = field(default_factory=dict)
    paths: dict[tuple, tuple[list, tuple | None]] = field(default_factory=dict)

    def split(self, set_id: int) -> list[tuple[int, Vec]]:
        """The vectors of a body set as (argument class or -1, symbol part)."""
        found = self.parts.get(set_id)
        if found is None:
            n = len(SYMBOLS)
            found = self.parts[set_id] = [(_tag(u, n), u[:n]) for u in sorted(self.result.sets[set_id])]
        return found


def _tag(u: Vec, n: int) -> int:
    """The argument class of a body vector (the index of its extra coordinate that is 1), or -1."""
    for k in range(n, len(u)):
        if u[k]:
            return k - n
    return -1


def _classes(ins: list[State]) -> tuple[tuple, tuple[int, ...]]:
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


def _analyse_body(fn: Function, ins: list[State], sets: tuple[int, ...], ctx: _Context) -> _Body:
    n = len(SYMBOLS)
    inner = ctx.child(n + len(sets))
    units = {EMPTY_ID: EMPTY_ID, ZERO_ID: ZERO_ID}
    for c, i in enumerate(sets):
        unit = [0] * (n + len(sets))
        unit[n + c] = 1
        units[i] = inner.intern(frozenset({tuple(unit)}))
    params = {
        nid: State(state.labels, np.array([units[i] for i in state.core.reshape(-1).tolist()], dtype=np.int32).reshape(state.core.shape))
        for nid, state in zip(fn.graph.inputs.values(), ins)
    }
    states = _run(fn.graph, inner, params)
    ctx.kept = inner.kept
    ctx.reasons.extend(f"in shared {fn.name}: {r}" for r in inner.reasons)
    return _Body(DepthResult(fn.graph, states, [], inner.sets, not inner.reasons, inner.reasons, inner.fallbacks, inner.calls))


def _call(node: Node, ins: list[State], ctx: _Context) -> list[State]:
    """The states of a call's results: its body's (analysed once per signature) with the
    arguments' sets substituted for the argument classes."""
    fn: Function = node.attrs["fn"]
    signature, sets = _classes(ins)
    key = (fn, signature)
    body = ctx.bodies.get(key)
    if body is None:
        body = ctx.bodies[key] = _analyse_body(fn, ins, sets, ctx)
    ctx.calls[node.id] = (body, sets)
    out = []
    for nid in fn.graph.outputs.values():
        state = body.result.states[nid]
        uniq, inverse = _unique_values(state.core)
        table = np.array([_substitute(body, i, sets, ctx) for i in uniq], dtype=np.int32)
        out.append(_canonical(state.labels, table[inverse]))
    return out


def _substitute(body: _Body, set_id: int, sets: tuple[int, ...], ctx: _Context) -> int:
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


# --- result -----------------------------------------------------------------------------------------


@dataclass
class DepthResult:
    """The critical depth of a graph: Pareto-maximal path vectors, witnesses and claim checks."""

    graph: Graph
    states: dict[int, State]
    critical: list[Vec]
    sets: list[PSet] = field(default_factory=list, repr=False)
    exact: bool = True
    inexact_reasons: list[str] = field(default_factory=list)
    fallbacks: set[int] = field(default_factory=set, repr=False)
    calls: dict[int, tuple[_Body, tuple[int, ...]]] = field(default_factory=dict, repr=False)
    """For each call node: the body analysis it used and the outer set of each argument class."""
    _paths: dict[Vec, list] = field(default_factory=dict, repr=False)
    """Witness paths found so far, by vector (a report asks for the same one several times)."""

    @property
    def analysed_nodes(self) -> int:
        """Tensor nodes analysed: this graph's live nodes and, once each, those of every shared body."""
        bodies = {id(body): body for body, _ in self.calls.values()}
        return len(self.states) + sum(body.result.analysed_nodes for body in bodies.values())

    @property
    def per_symbol(self) -> dict[str, int]:
        """{symbol: the most gates of that symbol on any path} (e.g. the exp-depth)."""
        return {s: max((v[i] for v in self.critical), default=0) for i, s in enumerate(SYMBOLS)}

    def holds(self, claim: Vec | Mapping[str, int] | str) -> bool:
        """True iff every critical vector is ≤ the claim, i.e. the claim bounds the depth for all symbol values."""
        return not self.violations(claim)

    def violations(self, claim: Vec | Mapping[str, int] | str) -> list[Vec]:
        """The critical vectors that are not ≤ the claim."""
        c = as_vec(claim)
        return [v for v in self.critical if not leq(v, c)]

    def candidates(self, node_id: int) -> set[Vec]:
        """Every vector some element of the node reaches."""
        return {v for i in self.states[node_id].ids() for v in self.sets[i]}

    def _find(self, node_id: int, v: Vec) -> tuple[int, ...] | None:
        """An element of the node whose Pareto set contains ``v``, or None."""
        state = self.states[node_id]
        for i in state.ids():
            if v in self.sets[i]:
                index = tuple(int(k) for k in np.argwhere(state.core == i)[0])
                return state.position(index)
        return None

    def _set_at(self, node_id: int, position: tuple[int, ...]) -> PSet:
        state = self.states[node_id]
        return self.sets[int(state.core[state.index(position)])]

    def witness(self, v: Vec | Mapping[str, int] | str) -> list[Node]:
        """One path of Nodes (source first, output last) whose vector is ``v`` (a critical vector)."""
        return [node for node, _ in self.witness_elements(v)]

    def witness_elements(self, v: Vec | Mapping[str, int] | str) -> list[tuple[Node, tuple[int, ...] | None]]:
        """The witness as (node, element position) pairs: a path of scalar gates through the graph.

        The last pair of a path that ends in pad's zeros has position None on the pad node."""
        return _flatten(self._witness_path(v), ())[::-1]

    def witness_groups(self, v: Vec | Mapping[str, int] | str) -> list[PathGroup]:
        """``group_path(witness(v))`` without listing the path node by node: a shared body's part of
        the path is grouped once and reused, under each call's scopes, wherever the path repeats it."""
        return _groups(self._witness_path(v), {})

    def _witness_path(self, v: Vec | Mapping[str, int] | str) -> list:
        target = as_vec(v)
        found = self._paths.get(target)
        if found is None:
            for out_id in sorted(set(self.graph.outputs.values())):
                position = self._find(out_id, target)
                if position is not None:
                    found = self._paths[target] = self._backtrack(out_id, position, target)[0]
                    break
            else:
                raise ValueError(f"no path of depth {fmt(target)} ends at an output")
        return found

    def _backtrack(self, node_id: int, position: tuple[int, ...], v: Vec) -> tuple[list[tuple[Node, tuple[int, ...] | None]], tuple | None]:
        """The path (output end first) from an element with vector ``v`` back to its source, and,
        in a shared body, where it leaves: (parameter node, position, the class's unit vector)."""
        path: list[tuple[Node, tuple[int, ...] | None]] = []
        while True:
            node = self.graph.node(node_id)
            if node.prim == RESULT:
                call = self.graph.node(node.inputs[0])
                inner, leaves = self._through_call(call, node.attrs["index"], position, v)
                path.extend(inner)
                if leaves is None:
                    return path, None
                slot, position, v = leaves
                node_id = call.inputs[slot]
                continue
            prim = PRIMITIVES[node.prim]
            if prim.symbol is None:
                rest = v
            else:
                k = SYMBOLS.index(prim.symbol)
                rest = v[:k] + (v[k] - 1,) + v[k + 1 :]
            shapes = [self.graph.node(i).shape for i in node.inputs]
            if node_id in self.fallbacks:
                step = self._fallback_step(node, rest)
            elif prim.is_wiring:
                moved = None if "source" in prim.properties else origin(node, shapes, position)
                step = None if moved is None else (*moved, rest)
                if moved is None and node.prim == "pad":
                    position = None
            else:
                step = self._gate_step(node, shapes, position, rest)
            if node.prim == "input" and node.attrs.get("role") == "param":
                if any(rest[: len(SYMBOLS)]):
                    raise AssertionError(f"depth states inconsistent at parameter {node.name!r}")
                return path, (node.id, position, rest)
            path.append((node, position))
            if step is None:
                if any(rest):
                    raise AssertionError(f"depth states inconsistent at node {node.id}")
                return path, None
            slot, position, v = step
            node_id = node.inputs[slot]

    def _through_call(self, call: Node, index: int, position: tuple[int, ...], v: Vec):
        """The part of a path inside a call's body (its nodes scoped under the call), ending at the
        result element ``position`` with outer vector ``v``; and (argument slot, position, the
        vector left for the argument) when it starts at an argument rather than a constant."""
        body, sets = self.calls[call.id]
        inner = body.result
        out_id = list(inner.graph.outputs.values())[index]
        pad = (0,) * (len(v) - len(SYMBOLS))
        state = inner.states[out_id]
        set_id = int(state.core[state.index(position)])
        for (c, part), u in zip(body.split(set_id), sorted(inner.sets[set_id])):
            rest = tuple(map(operator.sub, v, part + pad))
            if (c < 0 and not any(rest)) or (c >= 0 and rest in self.sets[sets[c]]):
                break
        else:
            raise AssertionError(f"depth states inconsistent at call {call.id} of {call.attrs['fn'].name}")
        key = (out_id, position, u)
        if key not in body.paths:
            body.paths[key] = inner._backtrack(out_id, position, u)
        path, leaves = body.paths[key]
        inside = [_Inside(call, path)]
        if leaves is None:
            return inside, None
        param, at, _ = leaves
        return inside, (list(inner.graph.inputs.values()).index(param), at, rest)

    def _gate_step(self, node: Node, shapes: list[tuple[int, ...]], position: tuple[int, ...], rest: Vec):
        """The operand element a gate's element reads whose set contains ``rest``."""
        if "reduction" not in PRIMITIVES[node.prim].properties:
            for slot, i in enumerate(node.inputs):
                if rest in self._set_at(i, position):
                    return slot, position, rest
            return None
        axes = node.attrs["axes"]
        (i,) = node.inputs
        state = self.states[i]
        if any(shapes[0][a] == 0 for a in axes):
            return None
        kept = iter(position)
        full = [None if a in axes else next(kept) for a in range(len(shapes[0]))]
        index = [None if x is None else (0 if state.labels[a] is None else int(state.labels[a][x])) for a, x in enumerate(full)]
        for choice in product(*(range(state.core.shape[a]) for a in axes)):
            for a, k in zip(axes, choice):
                index[a] = k
            if rest in self.sets[int(state.core[tuple(index)])]:
                reduced = state.position(tuple(index))
                return 0, tuple(reduced[a] if a in axes else full[a] for a in range(len(full))), rest
        return None

    def _fallback_step(self, node: Node, rest: Vec):
        """Backtracking through an upper-bound node: any operand element with the remaining vector."""
        for slot, i in enumerate(node.inputs):
            found = self._find(i, rest)
            if found is not None:
                return slot, found, rest
        return None

    def element_depths(self, node_id: int) -> list[list[Vec]]:
        """The Pareto set of every element of a live node, in row-major order (expands the node)."""
        state = self.states[node_id]
        shape = self.graph.node(node_id).shape
        if math.prod(shape) == 0:
            return []
        index = [np.zeros(d, dtype=np.int64) if lab is None else lab for lab, d in zip(state.labels, shape)]
        dense = state.core[np.ix_(*index)] if index else state.core
        return [sorted(self.sets[i]) for i in dense.reshape(-1).tolist()]

    def at(self, values: Mapping[str, Number]) -> tuple[Number, list[Node]]:
        """The depth for concrete symbol values: the largest weighted length and one path realising it."""
        if not self.critical:
            return 0, []
        best = self.best(values)
        return dot(best, values), self.witness(best)

    def best(self, values: Mapping[str, Number]) -> Vec:
        """The critical vector of the largest weighted length for the given symbol values (the first if tied)."""
        return max(self.critical, key=lambda v: dot(v, values))

    @staticmethod
    def by_operator(path: list[Node]) -> list[tuple[str, Vec]]:
        """Consecutive nodes of a path grouped by scope path, with the vector each group contributes."""
        return [(group.operator, group.depth) for group in group_path(path)]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: critical vectors (full dicts and linear forms), per-symbol maxima, exactness."""
        return {
            "critical": [to_dict(v, full=True) for v in self.critical],
            "linear": [fmt(v) for v in self.critical],
            "per_symbol": self.per_symbol,
            "exact": self.exact,
            "inexact_reasons": list(self.inexact_reasons),
        }


@dataclass(frozen=True)
class _Inside:
    """The part of a witness path inside one call: the body's path (output end first), shared by
    every call whose path takes the same way through the body."""

    call: Node
    path: list


def _flatten(path: list, prefix: tuple) -> list[tuple[Node, Any]]:
    """A witness path (output end first) as (node, position) pairs of the flattened graph: a body's
    nodes with the call's scopes before their own."""
    out: list[tuple[Node, Any]] = []
    joined: dict[int, tuple[tuple, str]] = {}
    for entry in path:
        if isinstance(entry, _Inside):
            out.extend(_flatten(entry.path, prefix + entry.call.scope))
            continue
        node, at = entry
        if prefix:
            found = joined.get(id(node.scope))
            if found is None:
                scope = prefix + node.scope
                found = joined[id(node.scope)] = (scope, "/".join(s.name for s in scope))
            node = Node(node.id, node.prim, node.shape, node.inputs, node.attrs, found[0], node._name)
            node._scope_path = found[1]
        out.append((node, at))
    return out


def _groups(path: list, memo: dict[int, list[PathGroup]]) -> list[PathGroup]:
    """``group_path`` of a witness path (output end first), each shared body part grouped once."""
    out: list[PathGroup] = []
    pending: list[Node] = []
    for entry in reversed(path):
        if not isinstance(entry, _Inside):
            pending.append(entry[0])
            continue
        _join(out, group_path(pending))
        pending = []
        inner = memo.get(id(entry.path))
        if inner is None:
            inner = memo[id(entry.path)] = _groups(entry.path, memo)
        where = entry.call.scope_path
        ref = entry.call.scope[-1].ref if entry.call.scope else ""
        _join(out, [PathGroup(f"{where}/{g.operator}" if where and g.operator != "(top)" else where or g.operator,
                              g.ref if g.operator != "(top)" else ref, g.depth, g.gates) for g in inner])
    _join(out, group_path(pending))
    return out


def _join(groups: list[PathGroup], more: list[PathGroup]) -> None:
    """Append ``more`` to ``groups``, merging the first with the last of ``groups`` when they are one operator."""
    if more and groups and groups[-1].operator == more[0].operator:
        last, first = groups[-1], more[0]
        groups[-1] = PathGroup(last.operator, last.ref, tuple(map(operator.add, last.depth, first.depth)), last.gates + first.gates)
        more = more[1:]
    groups.extend(more)


def depth(graph: Graph, memory_budget: int = DEFAULT_MEMORY_BUDGET, allow_upper_bound: bool = False) -> DepthResult:
    """Exact critical depth of ``graph`` over its live nodes.

    A step that would take the factored states over ``memory_budget`` bytes raises DepthBudgetError
    naming the node — unless ``allow_upper_bound``: then that node takes the node-level union of its
    operands, and the result says it is an upper bound (``exact`` False, ``inexact_reasons``).
    A call of a shared body costs one analysis of the body per argument signature, however often
    it is called (see "shared bodies" above)."""
    with paused_gc():
        ctx = _Context(memory_budget, allow_upper_bound)
        states = _run(graph, ctx, {})
        ids = {i for out in set(graph.outputs.values()) for i in states[out].ids()}
        critical = maximal({v for i in ids for v in ctx.sets[i]})
        return DepthResult(graph, states, critical, ctx.sets, not ctx.reasons, ctx.reasons, ctx.fallbacks, ctx.calls)


def _run(graph: Graph, ctx: _Context, params: Mapping[int, State]) -> dict[int, State]:
    """The state of every live node (``params``: the given states of a body's parameters)."""
    states: dict[int, State] = {}
    results: dict[int, list[State]] = {}
    for node in graph.live():
        if node.id in params:
            states[node.id] = params[node.id]
            continue
        ctx.node = node
        if node.prim == CALL:  # an argument no used result reads is not live: it counts as depth 0
            ins = [states[i] if i in states else ctx.uniform(len(graph.nodes[i].shape), ZERO_ID) for i in node.inputs]
            results[node.id] = _call(node, ins, ctx)
            continue
        if node.prim == RESULT:
            state = results[node.inputs[0]][node.attrs["index"]]
        else:
            ins = [states[i] for i in node.inputs]
            rule = DEPTH_RULES.get(node.prim) or DEPTH_RULES.rule(node.prim)
            try:
                state = rule(node, ins, [graph.nodes[i].shape for i in node.inputs], ctx)
            except DepthBudgetError as error:
                if not ctx.allow_upper_bound:
                    raise
                state = _upper_bound(node, ins, ctx)
                ctx.fallbacks.add(node.id)
                ctx.reasons.append(f"{error}; node-level union used")
        ctx.kept += state.nbytes
        states[node.id] = state
    return states


def depth_numeric(graph: Graph, values: Mapping[str, Number]) -> tuple[Number, list[Node]]:
    """``depth(graph).at(values)``: the depth as one number for concrete symbol values, and its path."""
    return depth(graph).at(values)
