"""What runs on a Dask worker: operands rebuilt from their Wires (cached), a block or a whole
node computed with the serial engine's operations, CPU seconds per operator."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

import numpy as np

from tc0sim.engines.blocking import map_reduce
from tc0sim.engines.dask.wire import Pairs, Wire, from_pairs, moved_pairs, to_pairs
from tc0sim.engines.mpfr import EVAL_RULES
from tc0sim.fastfp import compact
from tc0sim.fp import Format
from tc0sim.ir.graph import Node

_FORMATS: dict[int, Format] = {}
_OPERANDS: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()

_SECONDS: dict[tuple[str, str], float] = {}
"""Seconds this worker spent per (evaluation, operator), until the client collects them."""

_WIRES: OrderedDict[Any, Wire] = OrderedDict()

Place = tuple[tuple[slice, ...], tuple[slice, ...], tuple[int, ...]]
"""Where a block's Wire goes in an operand's region: (destination in the region, source part of
the block, the block's shape in the value's coordinates)."""

Operand = tuple[Any, tuple[int, ...], tuple[int, ...] | None, tuple[int, ...] | None, list[Place] | None, list[Any]]
"""(key, full shape, origin, region shape, places, parts) of a task's operand. parts are Wires
(futures in the client). With places None the one part is the Wire of all the value's distinct
elements; else the parts are blocks, and only the region starting at origin (in the distinct
elements' coordinates) that a task reads is assembled from them."""


def _format(p: int) -> Format:
    if p not in _FORMATS:
        _FORMATS[p] = Format(p)
    return _FORMATS[p]


def _cached(cache: OrderedDict[Any, Any], key: Any, make: Any, size: int) -> Any:
    """A least-recently-used cache of this worker (operands read by several blocks)."""
    if key in cache:
        cache.move_to_end(key)
    else:
        cache[key] = make()
        while len(cache) > size:
            cache.popitem(last=False)
    return cache[key]


def region_wire(shape: tuple[int, ...], places: list[Place], parts: list[Wire]) -> Wire:
    """The Wire of a region assembled from the parts of blocks that cover it."""
    terms = max(len(ms) for ms, _ in parts)
    big = any(m.dtype == object for ms, _ in parts for m in ms)
    m = tuple(np.zeros(shape, dtype=object if big else np.int64) for _ in range(terms))
    e = tuple(np.zeros(shape, dtype=np.int64) for _ in range(terms))
    for (dst, src, block), (bms, bes) in zip(places, parts):
        for i, (bm, be) in enumerate(zip(bms, bes)):
            m[i][dst] = bm.reshape(block)[src]
            e[i][dst] = be.reshape(block)[src]
    return m, e


def _wire(operand: Operand) -> Wire:
    key, _, _, region, places, parts = operand
    if places is None:
        return parts[0]
    return _cached(_WIRES, key, lambda: region_wire(region, places, parts), 4)


def _objects(p: int, operand: Operand, index: tuple[slice, ...]) -> np.ndarray:
    """The mpfr values of the part ``index`` (of the full shape) of an operand: each worker
    rebuilds only the distinct elements of the parts its blocks read, a part read by every block
    (a broadcast operand, such as the right factor of a matmul) once (a few parts kept)."""
    key, shape, origin, _, _, _ = operand
    ms, es = _wire(operand)
    start = origin or (0,) * len(shape)
    part = tuple(
        slice(0, 1) if n == 1 else slice(s.indices(full)[0] - o, s.indices(full)[1] - o)
        for n, s, full, o in zip(ms[0].shape, index, shape, start)
    )
    objects = _cached(
        _OPERANDS, (key, *((s.start, s.stop) for s in part)),
        lambda: from_pairs(_format(p), tuple(m[part] for m in ms), tuple(e[part] for e in es)), 8,
    )
    block = tuple(len(range(*s.indices(n))) for s, n in zip(index, shape))
    return np.broadcast_to(objects, block)


def _timed(clock: tuple[str, str], start: float) -> None:
    _SECONDS[clock] = _SECONDS.get(clock, 0.0) + time.process_time() - start


def collect_seconds(evaluation: str) -> dict[str, float]:
    """This worker's seconds per operator for one evaluation (and forgets them)."""
    mine = [key for key in _SECONDS if key[0] == evaluation]
    return {operator: _SECONDS.pop((evaluation, operator)) for _, operator in mine}


def run_block(
    p: int, clock: tuple[str, str], map_prim: str | None, reduce_prim: str | None, axes: tuple[int, ...],
    operands: list[Operand], index: tuple[slice, ...],
) -> Wire:
    """One block on a worker: rebuild operands, apply the map and/or the reduction (in pieces,
    as the serial engine does), return pairs."""
    start = time.process_time()
    F = _format(p)
    args = [_objects(p, operand, index) for operand in operands]
    try:
        return to_pairs(F, map_reduce(F, map_prim, reduce_prim, args, axes))
    finally:
        _timed(clock, start)


def run_node(p: int, clock: tuple[str, str], node: Node, operands: list[Operand]) -> Wire:
    """A whole node on a worker: wiring moves the integer arrays; any other primitive (a small
    node reading values on the cluster) applies the serial engine's rule."""
    start = time.process_time()
    F = _format(p)
    row = node.prim
    if row.kernel is None and row.move is not None:
        moved = moved_pairs(node, [Pairs(*_wire(o)).each(lambda a, s=o[1]: np.broadcast_to(a, s)) for o in operands])
        moved = moved.each(compact)
        _timed(clock, start)
        return moved.m, moved.e
    args = [_objects(p, operand, tuple(slice(None) for _ in operand[1])) for operand in operands]
    try:
        return to_pairs(F, EVAL_RULES[node.prim](F, node, args))
    finally:
        _timed(clock, start)
