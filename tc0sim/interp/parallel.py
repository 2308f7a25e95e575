"""The MPFR engine on a Dask distributed cluster: a node's elements evaluated in parallel blocks.

Large elementwise nodes and reductions (and an elementwise node whose only consumer is a ⊕/⊗,
e.g. a matmul's products, fused with it) are cut into blocks along the kept axes. A node's
operands travel once per node as integer [m, e] arrays of their distinct elements (a broadcast
operand is sent unbroadcast); each worker rebuilds the mpfr values of the parts its blocks read,
applies the same ``Format`` array operation as the serial engine to its blocks and returns
[m, e] arrays, which the client keeps (``Pairs``) until it needs mpfr objects. Every element is
rounded once from its exact value, so the bits do not depend on the blocks or the number of
workers. If a block raises, the node is re-run serially to raise the serial engine's error (same
element, same message). Small nodes run in the client.
"""

from __future__ import annotations

import logging
import math
import os
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import gmpy2
import numpy as np

from tc0sim.fastfp import compact
from tc0sim.fp import Format, FpArithmeticError
from tc0sim.interp.evaluate import ENGINE_CLASSES, EvalStats, MpfrEngine, NamedError, named
from tc0sim.interp.fast import Deferred, blocks, feeders_of_one_reduction
from tc0sim.ir.graph import Node
from tc0sim.ir.primitives import PRIMITIVES
from tc0sim.ir.wiring import move

MAX_TASK_ELEMENTS = 1 << 20
"""Default largest number of elements (of the product tensor, if fused) per task (its mpfr
objects take about 100 MB on the worker)."""

TASKS_PER_WORKER = 4
"""Default number of tasks a node is cut into per worker (when that keeps them within
MIN_PARALLEL_ELEMENTS..MAX_TASK_ELEMENTS): the client spends a few ms of CPU per task, on the
same cores as the workers of a local cluster, so fewer, larger tasks scale better."""

MIN_PARALLEL_ELEMENTS = 1 << 14
"""Nodes with fewer elements are evaluated in the client."""

SCATTER_TIMEOUT = 120
"""Seconds to wait for a node's operands to reach the workers; after that the node is evaluated
serially (same bits) instead of waiting on an unresponsive cluster."""


@dataclass
class Pairs:
    """A node's F_p values kept as integer arrays, value m·2^e per element, until the client
    itself needs mpfr objects (then converted once, ``objects``): the operands and results of
    the nodes run on the cluster need no conversion in the client."""

    m: np.ndarray
    e: np.ndarray
    objects: np.ndarray | None = None


def float_pairs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, e) int64 arrays with m·2^e = x exactly, for finite float64 x (numpy.frexp)."""
    mant, ex = np.frexp(x)
    return np.ldexp(mant, 53).astype(np.int64), ex.astype(np.int64) - 53


def to_pairs(F: Format, values: np.ndarray | Pairs) -> tuple[np.ndarray, np.ndarray]:
    """Integer arrays (m, e) with value m·2^e per element (m int64 for p <= 62, else Python ints)."""
    if isinstance(values, Pairs):
        return values.m, values.e
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
_OPERANDS: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()


def _operand(p: int, token: str, pairs: tuple[np.ndarray, np.ndarray], index: tuple[slice, ...]) -> np.ndarray:
    """The mpfr values of the part ``index`` of a node's operand on this worker: each worker
    rebuilds only the parts its blocks read, a part read by every block (a broadcast operand,
    such as the right factor of a matmul) once per node (a few parts kept)."""
    key = (token, *((s.start, s.stop, s.step) for s in index))
    if key not in _OPERANDS:
        m, e = pairs
        _OPERANDS[key] = from_pairs(_format(p), m[index], e[index])
        while len(_OPERANDS) > 8:
            _OPERANDS.popitem(last=False)
    return _OPERANDS[key]


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
    args = [np.broadcast_to(_operand(p, token, pairs, index), shape) for token, pairs, index in operands]
    values = F.map(map_prim, *args) if map_prim else args[0]
    if reduce_prim:
        values = F.reduce(reduce_prim, values, axes)
    return to_pairs(F, values)


def _compact_index(shape: tuple[int, ...], index: tuple[slice, ...]) -> tuple[slice, ...]:
    return tuple(slice(0, 1) if n == 1 else s for n, s in zip(shape, index))


def _compact(value: np.ndarray | Pairs) -> np.ndarray | Pairs:
    """The distinct elements of a broadcast operand (fastfp.compact of both arrays of pairs)."""
    if isinstance(value, Pairs):
        return Pairs(compact(value.m), compact(value.e))
    return compact(value)


def _shape(value: np.ndarray | Pairs) -> tuple[int, ...]:
    return value.m.shape if isinstance(value, Pairs) else value.shape


def _size(value: np.ndarray | Pairs) -> int:
    return value.m.size if isinstance(value, Pairs) else value.size


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
        self.task_elements = chunk_elements
        self.workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        self.fused: set[int] = set()

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def prepare(self, live: list[Node], keep: set[int]) -> None:
        feeders = feeders_of_one_reduction(live, keep, _is_map, _is_reduction)
        self.fused.update(n.id for n in feeders if n.size >= MIN_PARALLEL_ELEMENTS)

    def entry(self, node: Node, value: Any) -> Any:
        """A float64 input at p >= 53 is exactly F_p (F_p's range contains binary64's): kept as pairs."""
        if (self.F.p >= 53 and isinstance(value, np.ndarray) and value.dtype == np.float64
                and value.shape == node.shape and np.isfinite(value).all()):
            return Pairs(*float_pairs(value))
        return super().entry(node, value)

    def apply(self, node: Node, args: list[Any]) -> Any:
        if node.id in self.fused:
            return Deferred(node, args)
        if _is_reduction(node) and isinstance(args[0], Deferred):
            return self._run(node, args[0].node, args[0].args)
        if _is_map(node) and node.size >= MIN_PARALLEL_ELEMENTS:
            return self._run(None, node, args)
        if _is_reduction(node) and _size(args[0]) >= MIN_PARALLEL_ELEMENTS:
            return self._run(node, None, args)
        row = PRIMITIVES.get(node.prim)
        if row is not None and row.kernel is None and row.move is not None and all(isinstance(a, Pairs) for a in args):
            self.stats.add_gates("mpfr", node)
            return Pairs(move(node, [a.m for a in args], lambda: 0), move(node, [a.e for a in args], lambda: 0))
        return super().apply(node, [self._local(a) for a in args])

    def result(self, value: Any, values: str) -> np.ndarray:
        return super().result(self._local(value), values)

    def _local(self, value: Any) -> np.ndarray:
        """mpfr objects of any value of this engine (a deferred map is evaluated here)."""
        if isinstance(value, Deferred):
            try:
                return super().apply(value.node, [self._local(a) for a in value.args])
            except FpArithmeticError as e:
                raise NamedError(named(value.node, e)) from None
        if isinstance(value, Pairs):
            if value.objects is None:
                value.objects = from_pairs(self.F, value.m, value.e)
            return value.objects
        return value

    def _run(self, reduce_node: Node | None, map_node: Node | None, args: list[Any]) -> Pairs | np.ndarray:
        """Blocks of ``reduce(map(args))`` (either may be absent) on the cluster; the result as pairs."""
        shape = map_node.shape if map_node is not None else _shape(args[0])
        axes = tuple(reduce_node.attrs["axes"]) if reduce_node is not None else ()
        kept = [i for i in range(len(shape)) if i not in axes]
        for n in (reduce_node, map_node):
            if n is not None:
                self.stats.add_gates("mpfr", n)
        compacts = [_compact(a) for a in args]
        tokens = [uuid.uuid4().hex for _ in args]
        try:
            scattered = [
                self.client.scatter(to_pairs(self.F, c), broadcast=True, hash=False, timeout=SCATTER_TIMEOUT)
                for c in compacts
            ]
        except Exception:
            return self._serial(reduce_node, map_node, args)
        futures, out_indexes = [], []
        per_task = self.task_elements or min(
            MAX_TASK_ELEMENTS, max(MIN_PARALLEL_ELEMENTS, math.prod(shape) // (TASKS_PER_WORKER * self.workers) + 1)
        )
        for index in blocks(shape, kept, per_task):
            block_shape = tuple(len(range(*s.indices(n))) for s, n in zip(index, shape))
            operands = [(t, f, _compact_index(_shape(c), index)) for t, f, c in zip(tokens, scattered, compacts)]
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
        return Pairs(m, e)

    def _serial(self, reduce_node: Node | None, map_node: Node | None, args: list[Any]) -> np.ndarray:
        """Re-run a node serially: raises exactly the serial engine's error (named by its node)."""
        args = [self._local(a) for a in args]
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
