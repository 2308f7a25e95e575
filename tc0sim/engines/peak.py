"""The memory estimate: ``peak_bytes`` replays the node runner's order and releases on the shapes
alone, with an engine's ``Memory`` model (docs/memory.md, docs/semantics.md §2.5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from tc0sim.engines.streams import Streams, block_node, released_after
from tc0sim.ir.graph import Node
from tc0sim.ir.moves import VIEWS, reshape, same_place


class Memory(Protocol):
    """An engine's memory model, read by ``peak_bytes`` (no evaluation is started). It may also
    plan streams (``streams(live, keep)``, tc0sim.engines.streams; the node runner reads the
    same plan), give the least bytes of a pooled array (``pool_min_bytes``) and the bytes a first
    evaluation allocates besides values (``start_bytes``)."""

    pool_bytes: int
    """Bytes of freed arrays the engine may keep for reuse."""

    def fused(self, live: list[Node], keep: set[int]) -> set[int]:
        """Map nodes the engine computes with their only reader (a reduction), piece by piece."""

    def bytes_per_value(self) -> tuple[int, int]:
        """(bytes per array slot, bytes per computed value beyond its slot)."""

    def work_bytes(self, node: Node, shape: tuple[int, ...], fused: bool, operand_bytes: int,
                   nodes: Mapping[int, Node] | None = None) -> int:
        """Bytes of temporaries while ``node`` is computed on operands of ``shape`` (``nodes``: the
        live nodes by id, to see what feeds a fused reduction)."""


def planned_streams(memory: Any, live: list[Node], keep: set[int]) -> Streams | None:
    """The streams a memory model plans (None: it plans none)."""
    plan = getattr(memory, "streams", None)
    return plan(live, keep) if plan is not None else None


def peak_bytes(memory: Memory, live: list[Node], keep: set[int]) -> int:
    """An upper bound on the bytes of values ``run_nodes`` holds at once on an engine with this
    ``memory`` model, from the shapes alone: it replays run_nodes' order and releases. A computed
    node's array costs a slot and a value per element; a copying move (concat, gather, pad, a
    reshape that numpy copies) only slots, as its values are its operand's objects; a view
    (ir.moves.VIEWS, a reshape of a C-contiguous array) nothing, but keeps its operand's array
    alive; a map fused into its reduction keeps its operands alive, and its reduction holds one
    piece of products (``work_bytes``); a streamed node nothing, and its exit its own value, its
    blocks (as many bytes again) and the peak of one block of its cone, replayed the same way on
    its rows. Plus the engine's reuse pool as it fills and empties (``Pool``), and what the
    engine's first evaluation allocates besides values (``start_bytes``, if the model says)."""
    streams = planned_streams(memory, live, keep)
    if streams is None or not streams.streamed:
        streams = Streams(fused=frozenset(memory.fused(live, keep)),
                          last_use={i: node.id for node in live for i in node.inputs})
    start = memory.start_bytes(live) if hasattr(memory, "start_bytes") else 0
    return start + _replay(memory, live, keep, streams, frozenset(), Pool(memory))


class Pool:
    """The model of an engine's pool of freed arrays (tc0sim.engines.fast.memory): a freed array
    of at least ``pool_min_bytes`` joins it while it holds at most ``pool_bytes``; a new node
    output of the same size takes one from it."""

    def __init__(self, memory: Memory) -> None:
        self.limit, self.least = memory.pool_bytes, getattr(memory, "pool_min_bytes", 0)
        self.sizes: dict[int, int] = {}
        self.bytes = 0

    def give(self, size: int) -> None:
        if size >= self.least and self.bytes + size <= self.limit:
            self.sizes[size] = self.sizes.get(size, 0) + 1
            self.bytes += size

    def take(self, size: int) -> None:
        if self.sizes.get(size):
            self.sizes[size] -= 1
            self.bytes -= size


def _replay(
    memory: Memory, live: list[Node], keep: set[int], streams: Streams, given: frozenset[int], pool: Pool,
    outer: int = 0,
) -> int:
    """The peak bytes of ``live`` run in order (``peak_bytes``); ``given``: operands outside
    ``live``, rows of held values (views, free); ``outer``: bytes held around this run."""
    fused = streams.fused
    slot, value = memory.bytes_per_value()
    releases = released_after(streams.last_use)
    shapes = {node.id: node.shape for node in live}
    by_id = {node.id: node for node in live}
    arrays: dict[int, set[int]] = {i: set() for i in given}  # node -> the arrays its value keeps alive (by owner id)
    dense: dict[int, bool] = {i: False for i in given}  # node -> its value is a C-contiguous array
    cost: dict[int, int] = {}  # array owner -> bytes
    holders: dict[int, int] = {}  # array owner -> live values keeping it
    held = peak = 0
    for node in live:
        row = node.prim
        moves = row.kernel is None and row.move is not None
        view = moves and (row.move in VIEWS or (row.move is reshape and dense[node.inputs[0]]))
        work = 0
        if node.id in streams.streamed:
            arrays[node.id], dense[node.id] = set(), False
        elif node.id in streams.cones:
            arrays[node.id], dense[node.id] = {node.id}, True
            cost[node.id] = node.size * (slot + value)
            cone, rows = streams.cones[node.id], streams.rows[node.id]
            inner = Streams(last_use={i: n.id for n in cone for i in n.inputs})
            outside = frozenset(i for n in cone for i in n.inputs) - {n.id for n in cone}
            blocks = [block_node(n, min(rows, n.shape[0])) for n in cone]
            work = _replay(memory, blocks, {node.id}, inner, outside, pool, outer + held + cost[node.id]) - outer - held
            held += cost[node.id]
        elif node.id in fused or view:
            arrays[node.id] = set().union(*(arrays[i] for i in node.inputs))
            dense[node.id] = view and row.move in (reshape, same_place) and dense[node.inputs[0]]
        else:
            arrays[node.id] = {node.id}
            dense[node.id] = True
            cost[node.id] = node.size * (slot if moves else slot + value)
            held += cost[node.id]
            if not moves:
                pool.take(cost[node.id])
            if not moves and node.inputs:
                is_fused = node.inputs[0] in fused
                operand_bytes = sum(cost[owner] for owner in arrays[node.inputs[0]]) if is_fused else 0
                shape = shapes.get(node.inputs[0], node.shape) if row.role == "reduction" else node.shape
                work = memory.work_bytes(node, shape, is_fused, operand_bytes, by_id)
        for owner in arrays[node.id]:
            holders[owner] = holders.get(owner, 0) + 1
        peak = max(peak, outer + held + work + pool.bytes)
        for i in releases.get(node.id, ()):
            if i not in keep and i in arrays:
                for owner in arrays.pop(i):
                    holders[owner] -= 1
                    if holders[owner] == 0:
                        held -= cost[owner]
                        pool.give(cost[owner])
    return peak
