"""The MPFR engine on a Dask distributed cluster: a node's elements evaluated in parallel blocks.

Large elementwise nodes and reductions (and an elementwise node whose only consumer is a ⊕/⊗,
e.g. a matmul's products, fused with it) are cut into blocks along the kept axes. A node's
operands travel once per node as integer [m, e] arrays of their distinct elements (a broadcast
operand is sent unbroadcast); each worker rebuilds the mpfr values once, applies the same
``Format`` array operation as the serial engine to its blocks and returns [m, e] arrays. Every
element is rounded once from its exact value, so the bits do not depend on the blocks or the
number of workers. If a block raises, the node is re-run serially to raise the serial engine's
error (same element, same message). Small nodes run in the client.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections import OrderedDict
from typing import Any

import gmpy2
import numpy as np

from tc0sim.fastfp import compact
from tc0sim.fp import Format, FpArithmeticError
from tc0sim.interp.evaluate import ENGINE_CLASSES, EvalStats, MpfrEngine, NamedError, named
from tc0sim.interp.fast import Deferred, blocks, feeders_of_one_reduction
from tc0sim.ir.graph import Node
from tc0sim.ir.primitives import PRIMITIVES

DEFAULT_TASK_ELEMENTS = 1 << 16
"""Default largest number of elements (of the product tensor, if fused) per task."""

MIN_PARALLEL_ELEMENTS = 1 << 14
"""Nodes with fewer elements are evaluated in the client."""

SCATTER_TIMEOUT = 120
"""Seconds to wait for a node's operands to reach the workers; after that the node is evaluated
serially (same bits) instead of waiting on an unresponsive cluster."""


def to_pairs(F: Format, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Integer arrays (m, e) with value m·2^e per element (m int64 for p <= 62, else Python ints)."""
    flat = np.asarray(values, dtype=object).ravel().tolist()
    pairs = [v.as_mantissa_exp() if v != 0 else (0, 0) for v in flat]
    dtype = np.int64 if F.p <= 62 else object
    m = np.array([int(a) for a, _ in pairs], dtype=dtype).reshape(np.shape(values))
    e = np.array([int(b) for _, b in pairs], dtype=np.int64).reshape(np.shape(values))
    return m, e


def from_pairs(F: Format, m: np.ndarray, e: np.ndarray) -> np.ndarray:
    """Object array of mpfr values m·2^e (exact: every pair came from an F_p value)."""
    ctx = F._wide
    mpfr, mul_2exp = gmpy2.mpfr, ctx.mul_2exp
    p = F.p
    flat = [mul_2exp(mpfr(int(a), p), int(b)) for a, b in zip(m.ravel().tolist(), e.ravel().tolist())]
    return np.fromiter(flat, dtype=object, count=len(flat)).reshape(m.shape)


_FORMATS: dict[int, Format] = {}
_OPERANDS: OrderedDict[str, np.ndarray] = OrderedDict()


def _operand(p: int, token: str, pairs: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """The mpfr operand of a node on this worker, rebuilt once per node (a few kept)."""
    if token not in _OPERANDS:
        _OPERANDS[token] = from_pairs(_format(p), *pairs)
        while len(_OPERANDS) > 8:
            _OPERANDS.popitem(last=False)
    return _OPERANDS[token]


def _format(p: int) -> Format:
    if p not in _FORMATS:
        _FORMATS[p] = Format(p)
    return _FORMATS[p]


def run_block(
    p: int, map_prim: str | None, reduce_prim: str | None, axes: tuple[int, ...],
    operands: list[tuple[str, tuple[np.ndarray, np.ndarray], tuple[slice, ...]]], shape: tuple[int, ...],
) -> tuple[np.ndarray, np.ndarray]:
    """One block on a worker: rebuild operands, apply the map and/or the reduction, return pairs."""
    F = _format(p)
    args = [np.broadcast_to(_operand(p, token, pairs)[index], shape) for token, pairs, index in operands]
    values = F.map(map_prim, *args) if map_prim else args[0]
    if reduce_prim:
        values = F.reduce(reduce_prim, values, axes)
    return to_pairs(F, values)


def _compact_index(c: np.ndarray, index: tuple[slice, ...]) -> tuple[slice, ...]:
    return tuple(slice(0, 1) if n == 1 else s for n, s in zip(c.shape, index))


class ParallelMpfrEngine(MpfrEngine):
    """MPFR engine whose large nodes run on a Dask distributed cluster (same bits as serial)."""

    name = "mpfr-dask"

    def __init__(
        self, F: Format, stats: EvalStats, workers: int | None = None, scheduler: str | None = None,
        chunk_elements: int | None = None,
    ) -> None:
        super().__init__(F, stats)
        from distributed import Client, LocalCluster

        self.cluster = None
        if scheduler is not None:
            self.client = Client(scheduler)
        else:
            n = workers or os.cpu_count() or 1
            self.cluster = LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                silence_logs=logging.ERROR,
            )
            self.client = Client(self.cluster)
        self.task_elements = chunk_elements or DEFAULT_TASK_ELEMENTS
        self.fused: set[int] = set()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def prepare(self, live: list[Node], keep: set[int]) -> None:
        feeders = feeders_of_one_reduction(live, keep, _is_map, _is_reduction)
        self.fused.update(n.id for n in feeders if n.size >= MIN_PARALLEL_ELEMENTS)

    def apply(self, node: Node, args: list[Any]) -> Any:
        if node.id in self.fused:
            return Deferred(node, args)
        if _is_reduction(node) and isinstance(args[0], Deferred):
            return self._run(node, args[0].node, args[0].args)
        if _is_map(node) and node.size >= MIN_PARALLEL_ELEMENTS:
            return self._run(None, node, args)
        if _is_reduction(node) and args[0].size >= MIN_PARALLEL_ELEMENTS:
            return self._run(node, None, args)
        return super().apply(node, [self._local(a) for a in args])

    def _local(self, value: Any) -> np.ndarray:
        if isinstance(value, Deferred):
            try:
                return super().apply(value.node, [self._local(a) for a in value.args])
            except FpArithmeticError as e:
                raise NamedError(named(value.node, e)) from None
        return value

    def _run(self, reduce_node: Node | None, map_node: Node | None, args: list[np.ndarray]) -> np.ndarray:
        """Blocks of ``reduce(map(args))`` (either may be absent) on the cluster."""
        shape = map_node.shape if map_node is not None else args[0].shape
        axes = tuple(reduce_node.attrs["axes"]) if reduce_node is not None else ()
        kept = [i for i in range(len(shape)) if i not in axes]
        for n in (reduce_node, map_node):
            if n is not None:
                self.stats.add_gates("mpfr", n)
        compacts = [compact(a) for a in args]
        tokens = [uuid.uuid4().hex for _ in args]
        try:
            scattered = [
                self.client.scatter(to_pairs(self.F, c), broadcast=True, hash=False, timeout=SCATTER_TIMEOUT)
                for c in compacts
            ]
        except Exception:
            return self._serial(reduce_node, map_node, args)
        futures, out_indexes = [], []
        for index in blocks(shape, kept, self.task_elements):
            block_shape = tuple(len(range(*s.indices(n))) for s, n in zip(index, shape))
            operands = [(t, f, _compact_index(c, index)) for t, f, c in zip(tokens, scattered, compacts)]
            futures.append(self.client.submit(
                run_block, self.F.p, _kernel(map_node), _kernel(reduce_node),
                axes, operands, block_shape, pure=False,
            ))
            out_indexes.append(tuple(index[a] for a in kept) if reduce_node is not None else index)
        out_shape = reduce_node.shape if reduce_node is not None else shape
        try:
            results = self.client.gather(futures)
        except Exception:
            return self._serial(reduce_node, map_node, args)
        m = np.empty(out_shape, dtype=np.int64 if self.F.p <= 62 else object)
        e = np.empty(out_shape, dtype=np.int64)
        for index, (bm, be) in zip(out_indexes, results):
            m[index] = bm
            e[index] = be
        return from_pairs(self.F, m, e)

    def _serial(self, reduce_node: Node | None, map_node: Node | None, args: list[np.ndarray]) -> np.ndarray:
        """Re-run a node serially: raises exactly the serial engine's error (named by its node)."""
        values = args
        if map_node is not None:
            try:
                values = [MpfrEngine.apply(self, map_node, args)]
            except FpArithmeticError as e:
                if reduce_node is None:
                    raise
                raise NamedError(named(map_node, e)) from None
        return MpfrEngine.apply(self, reduce_node, values) if reduce_node is not None else values[0]


def _is_map(node: Node) -> bool:
    row = PRIMITIVES.get(node.prim)
    return row is not None and row.role == "elementwise" and row.kernel is not None


def _is_reduction(node: Node) -> bool:
    row = PRIMITIVES.get(node.prim)
    return row is not None and row.role == "reduction" and row.kernel is not None


def _kernel(node: Node | None) -> str | None:
    return PRIMITIVES[node.prim].kernel if node is not None else None



ENGINE_CLASSES["dask"] = ParallelMpfrEngine
