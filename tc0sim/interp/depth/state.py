"""The factored depth state and its algebra: interned Pareto sets, canonical form, alignment (docs/dag.md).

Every element of a node has its own Pareto set (VAR Definition 3.3 / Lemma 3.5: one symbolic depth
per gate), but a node has few distinct ones. A node's state is *factored*: one label vector per
axis (``labels[i][x_i]`` is the class of position ``x_i`` on axis i; ``None`` when the axis has one
class) and a small ``core`` array of interned set ids over the distinct labels, so element ``x``
has the set ``core[labels[0][x_0], …, labels[k-1][x_{k-1}]]``.

After every rule the state is made canonical (``canonical``): unused labels are dropped and labels
whose core slices are equal are merged. ``Context`` holds the interned sets, the gate cache and the
memory budget; an allocation above the budget is refused with ``DepthBudgetError`` naming the node.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from tc0sim.errors import DepthBudgetError
from tc0sim.ir.graph import Node
from tc0sim.ir.primitives import INPUT, SYMBOLS
from tc0sim.ir.vectors import PARETO_NUMPY, maximal, maximal_rows


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


def label_dtype(n: int) -> type:
    return np.int8 if n < 127 else np.int16 if n < 32767 else np.int32


class Context:
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
        self.node: Node = Node(-1, INPUT, (), (), {}, (), "")
        self.reasons: list[str] = []
        self.fallbacks: set[int] = set()
        self.allow_upper_bound = allow_upper_bound
        self.bodies: dict[tuple, Any] = {}
        """Shared bodies analysed so far (``result.Body``), by (function, argument signature)."""
        self.calls: dict[int, tuple[Any, tuple[int, ...]]] = {}
        """For each call node: its ``result.Body`` and the outer set of each argument class."""
        self.substituted: dict[tuple, int] = {}
        self.arrays: dict[int, np.ndarray] = {}

    def array(self, set_id: int) -> np.ndarray:
        """The vectors of a set as the rows of an int array (made once per set)."""
        found = self.arrays.get(set_id)
        if found is None:
            found = self.arrays[set_id] = np.array(sorted(self.sets[set_id]), dtype=np.int64).reshape(-1, self.width)
        return found

    def child(self, width: int) -> Context:
        """The context of a shared body's analysis: vectors ``width`` long, the same body memo."""
        ctx = Context(self.budget, self.allow_upper_bound, width)
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
                f"exact depth refused at node {node.id} ({node.prim.name} {node.name!r} in operator "
                f"{node.scope_path or '(top)'}, shape {node.shape}): {what} needs {_mb(wanted)} with {_mb(self.kept)} "
                f"kept, above the memory budget of {_mb(self.budget)} (raise the budget with --memory-budget, "
                "or accept an upper bound with --allow-upper-bound)"
            )


def _mb(n: int) -> str:
    return f"{n / 2**20:,.1f} MB" if n >= 2**20 else f"{n:,} bytes"



# --- canonical form -------------------------------------------------------------------------------


def _rows(core: np.ndarray, axis: int) -> np.ndarray:
    """The slices of ``core`` along ``axis``, one per row (in some fixed order of the other axes)."""
    return core.swapaxes(0, axis).reshape(core.shape[axis], -1)


SMALL = 512
"""Arrays up to this many entries are deduplicated in Python (faster than numpy's sort for them)."""


def unique_rows(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
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


def unique_values(a: np.ndarray) -> tuple[list[int], np.ndarray]:
    """(distinct values, inverse with a's shape) of an int array."""
    if a.size <= SMALL:
        seen: dict[int, int] = {}
        inverse = [seen.setdefault(x, len(seen)) for x in a.reshape(-1).tolist()]
        return list(seen), np.array(inverse, dtype=np.int64).reshape(a.shape)
    uniq, inverse = np.unique(a, return_inverse=True)
    return uniq.tolist(), inverse.reshape(a.shape)


def canonical(labels: Labels | list, core: np.ndarray) -> State:
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
        first, inverse = unique_rows(_rows(core, axis))
        if len(first) < core.shape[axis]:
            core = np.take(core, first, axis=axis)
            lab = inverse[lab]
        labels[axis] = None if len(first) == 1 else lab.astype(label_dtype(len(first)), copy=False)
    return State(tuple(labels), core)


def factor_dense(dense: np.ndarray) -> tuple[list[np.ndarray | None], np.ndarray]:
    """Per-axis labels and a small array ``small`` with ``dense == small[labels…]`` (for an int array)."""
    labels: list[np.ndarray | None] = []
    firsts = []
    for axis in range(dense.ndim):
        first, inverse = unique_rows(_rows(dense, axis))
        labels.append(None if len(first) == 1 else inverse.astype(label_dtype(len(first))))
        firsts.append(first)
    return labels, dense[np.ix_(*firsts)] if dense.ndim else dense


# --- alignment ---------------------------------------------------------------------------------------


def align(ctx: Context, ins: list[State], skip: int | None = None) -> tuple[list[np.ndarray | None], list[np.ndarray]]:
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
        labels.append(inverse.reshape(-1).astype(label_dtype(int(inverse.max()) + 1)))
    return labels, cores


def map_ids(core: np.ndarray, f: Callable[[int], int]) -> np.ndarray:
    """Apply ``f`` to every distinct set id of ``core``."""
    uniq, inverse = unique_values(core)
    return np.array([f(i) for i in uniq], dtype=np.int32)[inverse]
