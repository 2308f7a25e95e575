"""Streams: large values that are never held whole, cut into blocks of leading rows (docs/semantics.md §2.5).

A node is *streamed* when it is large (more than ``threshold`` elements), every one of its readers
is streamed or small, works row by row along axis 0 (an elementwise map, a reduction that keeps axis 0, a move that
commutes with cutting axis 0: ``ROW_LOCAL``), and it is no output. A streamed node holds no value:
each reader that is not streamed itself (an *exit*, e.g. the ⊕ that counts a row of the official
sampler's V × V comparison map: VAR Lemma 5.2's sampler, docs/samplers.md) is computed in blocks
of rows, and each block evaluates the exit's *cone* (its streamed ancestors reached through
streamed nodes only) on those rows of its held operands. A streamed node read by several exits is
computed again by each (the comparisons of top-k, top-p and the race are cheap maps of an [n, V]
row); every element is still one rounding of the same operands, so the bits do not change.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from tc0sim.ir.graph import Node
from tc0sim.ir.moves import broadcast, concat, gather, pad, reshape, same_place, slice_axis, transpose

STREAMED_FROM = 64
"""A node is streamed from this many blocks of its engine (``Memory.block``-sized pieces) up:
the fast engine's 2^24 elements (128 MB of float64), so that smaller values, whose recomputation
would cost time for little memory, stay held."""

ROW_LIMIT = 256
"""A node is streamed only if one of its rows has at most this many engine blocks of elements (the
fast engine's 2^26: a row of the sampler's concatenated V × 2V terms at V = 4096 is 2^25): a
value of two huge rows (a classifier-free-guidance batch of a product tensor) gains nothing."""

MIN_ROWS = 4
"""A node is streamed only if it has at least this many rows: a block of one of two rows (a
classifier-free-guidance batch) would save too little for the exit's copies and recomputation."""

ROWS_BUDGET = 16
"""An exit's block of rows holds at most this many engine blocks of any cone node (at least one row)."""

RowRule = Callable[[Node, list[tuple[int, ...]]], bool]
"""Whether a move rule, on a node and its operands' shapes, commutes with cutting axis 0."""


def _same_leading(node: Node, shapes: list[tuple[int, ...]]) -> bool:
    return len(shapes[0]) >= 1 and shapes[0][0] == node.shape[0]


def _leading_kept(node: Node, shapes: list[tuple[int, ...]]) -> bool:
    return len(shapes[0]) == len(node.shape) and _same_leading(node, shapes)


ROW_LOCAL: dict[Callable[..., object], RowRule] = {
    same_place: lambda node, shapes: True,
    reshape: _same_leading,
    transpose: lambda node, shapes: node.attrs["perm"][0] == 0,
    slice_axis: lambda node, shapes: node.attrs["axis"] != 0,
    concat: lambda node, shapes: node.attrs["axis"] != 0,
    gather: lambda node, shapes: node.attrs["axis"] != 0,
    broadcast: _leading_kept,
    pad: lambda node, shapes: tuple(node.attrs["widths"][0]) == (0, 0),
}
"""The moves whose rows are the rows of their operand (one table: a move without an entry is never streamed)."""

SHAPED: frozenset[Callable[..., object]] = frozenset({reshape, broadcast})
"""Moves whose attributes name the output shape (a block's node gets its rows' shape)."""


def row_local(node: Node, shapes: list[tuple[int, ...]]) -> bool:
    """Whether row i of ``node`` depends only on row i of each operand whose leading axis is the
    node's (operands of lower rank, or of leading extent 1, are read whole)."""
    if not node.shape or node.shape[0] < 2 or not node.inputs:
        return False
    row = node.prim
    if row.role == "reduction":
        return row.kernel is not None and 0 not in tuple(node.attrs.get("axes", ()))
    if row.role == "elementwise" and row.kernel is not None:
        return all(len(s) < len(node.shape) or s[0] in (1, node.shape[0]) for s in shapes)
    rule = ROW_LOCAL.get(row.move) if row.move is not None else None
    return rule is not None and rule(node, shapes)


@dataclass(frozen=True)
class Streams:
    """The streamed nodes of one evaluation, the cone of each exit (streamed nodes in graph
    order, then the exit), the rows per block of each exit, the engine's fused maps that stay
    fused (none next to a streamed node), and when each value is released (``last_use``: the node
    after which it is no longer read, a streamed node's reads counted at its last exit)."""

    streamed: frozenset[int] = frozenset()
    cones: dict[int, list[Node]] = field(default_factory=dict)
    rows: dict[int, int] = field(default_factory=dict)
    fused: frozenset[int] = frozenset()
    last_use: dict[int, int] = field(default_factory=dict)


def plan_streams(
    live: list[Node], keep: set[int], fused: set[int], threshold: int, budget: int, row_limit: int
) -> Streams:
    """Which nodes of ``live`` are streamed (module docstring): larger than ``threshold`` elements,
    at least MIN_ROWS rows of at most ``row_limit`` elements each; an exit's blocks hold at most ``budget`` elements of any cone
    node (at least one row)."""
    by_id = {node.id: node for node in live}
    readers: dict[int, list[Node]] = {}
    for node in live:
        for i in dict.fromkeys(node.inputs):
            readers.setdefault(i, []).append(node)

    def local(node: Node) -> bool:
        return row_local(node, [by_id[i].shape for i in node.inputs])

    # A map fused with the one ⊕/⊗ it feeds (not a bias chain's) may be streamed when it reads a
    # streamed computed value (a matmul's products, which read broadcasts of held values, stay
    # fused), or read or feed a stream while small; it is then computed as an ordinary node. A bias
    # chain stays fused.
    single = {f for f in fused if len(readers.get(f, [])) == 1 and readers[f][0].id not in fused}
    chained = set(fused) - single
    chosen = {node.id for node in live if node.size > threshold and node.id not in keep and local(node)
              and node.shape[0] >= MIN_ROWS and node.size // node.shape[0] <= row_limit}
    changed = True
    while changed:  # every reader works row by row on the same rows, exits are small, bias chains stay out
        changed = False
        for nid in list(chosen):
            node, its = by_id[nid], readers.get(nid, [])
            near_chain = nid in chained or any(i in chained for i in node.inputs) or any(r.id in chained for r in its)
            exits_small = all(r.id in chosen or r.size <= threshold for r in its)
            fused_small = all(i in chosen or by_id[i].size <= threshold for i in node.inputs if i in single)
            downstream = nid not in single or any(i in chosen and by_id[i].prim.kernel is not None for i in node.inputs)
            if (near_chain or not exits_small or not fused_small or not downstream
                    or not all(local(r) and r.shape[0] == node.shape[0] for r in its)):
                chosen.discard(nid)
                changed = True
    near = chosen | {i for nid in chosen for i in by_id[nid].inputs} | {r.id for nid in chosen for r in readers.get(nid, [])}
    fused = set(fused) - (single & near)
    exits = [node for node in live if node.id not in chosen and any(i in chosen for i in node.inputs)]
    cones, rows = {}, {}
    for ex in exits:
        members, stack = set(), [i for i in ex.inputs if i in chosen]
        while stack:
            nid = stack.pop()
            if nid not in members:
                members.add(nid)
                stack.extend(i for i in by_id[nid].inputs if i in chosen)
        cones[ex.id] = [node for node in live if node.id in members] + [ex]
        widest = max(math.prod(n.shape[1:]) for n in cones[ex.id])
        rows[ex.id] = max(1, budget // max(1, widest))
    return Streams(frozenset(chosen), cones, rows, frozenset(fused), _release_points(live, chosen))


def _release_points(live: list[Node], streamed: set[int]) -> dict[int, int]:
    """For every read value, the node after which it is last read: a streamed node reads its
    operands when its exits are computed, so its reads count at its last exit."""
    order = {node.id: k for k, node in enumerate(live)}
    when: dict[int, int] = {}
    readers: dict[int, list[int]] = {}
    for node in live:
        for i in node.inputs:
            readers.setdefault(i, []).append(node.id)
    for node in reversed(live):
        if node.id in streamed:
            when[node.id] = max(when[r] for r in readers[node.id])
        else:
            when[node.id] = order[node.id]
    last: dict[int, int] = {}
    for node in live:
        for i in node.inputs:
            if i not in last or when[node.id] > order[last[i]]:
                last[i] = live[when[node.id]].id
    return last


def plan_for(live: list[Node], keep: set[int], fused: set[int], block: int) -> Streams:
    """``plan_streams`` at an engine's block size (STREAMED_FROM, ROWS_BUDGET, ROW_LIMIT)."""
    return plan_streams(live, keep, fused, STREAMED_FROM * block, ROWS_BUDGET * block, ROW_LIMIT * block)


def released_after(last_use: dict[int, int]) -> dict[int, list[int]]:
    """The values released after each node: those it is the last to read."""
    after: dict[int, list[int]] = {}
    for i, node in last_use.items():
        after.setdefault(node, []).append(i)
    return after


def block_node(node: Node, rows: int) -> Node:
    """``node`` restricted to ``rows`` leading rows (same id, inputs and scope; a shaped move's
    target shape cut likewise)."""
    shape = (rows, *node.shape[1:])
    attrs = node.attrs
    if node.prim.kernel is None and node.prim.move in SHAPED:
        attrs = {**attrs, "shape": shape}
    return Node(node.id, node.prim, shape, node.inputs, attrs, node.scope, node._name)


def row_ranges(n: int, rows: int) -> list[tuple[int, int]]:
    """The blocks [start, stop) of ``rows`` rows (the last one shorter) covering n rows, in order."""
    return [(start, min(start + rows, n)) for start in range(0, n, rows)]


def cut(value: object, shape: tuple[int, ...], reader: Node, start: int, stop: int) -> object:
    """The rows [start, stop) of a held operand of ``shape`` of ``reader``; an elementwise
    reader's operand of lower rank, or of leading extent 1, is read whole (it broadcasts)."""
    if reader.prim.role == "elementwise" and (len(shape) < len(reader.shape) or shape[0] == 1):
        return value
    return value[start:stop]  # type: ignore[index]
