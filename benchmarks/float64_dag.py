"""Plain numpy float64 of a tc0sim DAG, unrounded: the reference baseline of the real-image
benchmarks (issue 31 item 7; docs/float64_baseline.md), not an engine.

The same DAG as the engines evaluate, node by node, each primitive by its numpy ufunc in binary64
and never rounded to p bits (inputs taken as float64 as given). It is a ``Run``
(tc0sim.engines.base) driven by the engines' own ``run_nodes``: values are released after their
last reader, and large row-local values (the official sampler's V × V maps) are streamed in
blocks of rows (tc0sim.engines.streams), planned by the memory model ``Float64Memory`` at the fast
engine's block (2^18 elements), so a full VAR-d16 or FlowAR-S image fits as the fast engine does.
A map read only by a ⊕/⊗ (a matmul's products, or products joined to a bias by a concat) is not
held: it is computed with its reduction in blocks of at most ``block`` map elements (numpy's
multiply, then ``np.sum`` over the block). One thread, no BLAS: no einsum or matmul, so it is the
same DAG's arithmetic; only the summation order differs from the engines' exact sums. (The
``blas`` option, a separate variant, contracts each ⊕ of products with numpy's einsum instead.)
"""

from __future__ import annotations

import math
import sys
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from tc0sim.engines.base import EvalStats, run_nodes
from tc0sim.engines.blocking import (Deferred, blocks, defer, fused_maps, is_map, is_reduction, join_terms,
                                     largest_block, reduced_axes)
from tc0sim.engines.fast.memory import JIT_BYTES, keep_freed_pages
from tc0sim.engines.peak import peak_bytes
from tc0sim.engines.streams import Streams, plan_for
from tc0sim.ir import primitives as P
from tc0sim.ir.exact import constant_value
from tc0sim.ir.graph import Graph, Node
from tc0sim.ir.wiring import move

BLOCK = 1 << 18
"""Map elements computed at once with their ⊕/⊗ (the fast engine's default chunk: 2 MB of float64),
and the block the streams are planned at (so they are the fast engine's)."""


def _erf(x: np.ndarray) -> np.ndarray:
    """The C library's binary64 erf as a numpy ufunc (numba's ``math.erf``: tc0sim/engines/fast/jit_erf.py)."""
    from tc0sim.engines.fast.jit_erf import erf

    return erf(x)


KERNELS: dict[P.Primitive, Callable[..., np.ndarray]] = {
    P.ADD: np.add, P.SUB: np.subtract, P.MUL: np.multiply, P.DIV: np.divide, P.MAX: np.maximum, P.MIN: np.minimum,
    P.COMPARE: lambda a, b: np.less(a, b).astype(np.float64), P.RELU: lambda a: np.maximum(a, 0.0),
    P.NEG: np.negative, P.EXP: np.exp, P.SQRT: np.sqrt, P.ERF: _erf, P.LOG: np.log, P.SIN: np.sin, P.COS: np.cos,
}
"""Each elementwise primitive (and neg) in binary64, unrounded: one numpy call per node or block."""

REDUCERS: dict[P.Primitive, Callable[..., np.ndarray]] = {P.SUM: np.sum, P.PROD: np.prod}
"""Each reduction: numpy's pairwise sum, and its product, in binary64."""

TEMPORARY_BYTES: dict[P.Primitive, int] = {P.COMPARE: 1}
"""Bytes per element a map's kernel allocates besides its output (compare: numpy's boolean array)."""

FUSED_BYTES = 32
"""Bytes per map element of a fused block: its values, their copy joined to the bias terms, and
numpy's buffers (tracemalloc measured 16 per element on a matmul and up to 28 on conv2d with its
bias, 2^18-element blocks; tests/test_bench_float64.py checks the estimate against it)."""


@dataclass(frozen=True)
class Float64Memory:
    """The baseline's memory model (tc0sim.engines.peak.Memory): 8 bytes per value, no pool, maps
    larger than a block fused with their reduction, and the streams planned at ``block``."""

    block: int = BLOCK
    pool_bytes = 0

    def fused(self, live: list[Node], keep: set[int]) -> set[int]:
        """A map larger than a block read only by a ⊕/⊗, or joined to its further terms (a bias)."""
        return fused_maps(live, keep, is_map, is_reduction, self.block)

    def streams(self, live: list[Node], keep: set[int]) -> Streams:
        return plan_for(live, keep, self.fused(live, keep), self.block)

    def bytes_per_value(self) -> tuple[int, int]:
        return 8, 0

    def work_bytes(self, node: Node, shape: tuple[int, ...], fused: bool, operand_bytes: int,
                   nodes: Mapping[int, Node] | None = None) -> int:
        if fused:
            return FUSED_BYTES * largest_block(shape, tuple(node.attrs.get("axes", ())), self.block)
        return TEMPORARY_BYTES.get(node.prim, 0) * node.size

    def start_bytes(self, live: list[Node]) -> int:
        """numba and the erf kernel (the fast engine's measured ``JIT_BYTES``), first used by this process."""
        return JIT_BYTES if "numba" not in sys.modules and any(n.prim is P.ERF for n in live) else 0


class Float64Run:
    """One unrounded float64 evaluation: the hooks of ``run_nodes`` (tc0sim.engines.base.Run).
    ``live_arrays`` / ``peak_arrays``: the arrays it made that are alive now / at most at once.
    It sets the fast engine's allocator policy (``keep_freed_pages``: freed pages kept for the next
    array), without which the scaled FlowAR-S spent 47 s of system time re-faulting freed pages
    against 0.6 s with it (40-50 s of user time either way, on a loaded machine)."""

    name = "float64"

    def __init__(self, block: int = BLOCK, blas: bool = False) -> None:
        self.block, self.blas = block, blas
        self.memory = Float64Memory(block)
        self.fused: set[int] = set()
        self.live_arrays = self.peak_arrays = 0
        keep_freed_pages()

    def prepare(self, live: list[Node], keep: set[int]) -> None:
        self.fused = self.memory.fused(live, keep)

    def entry(self, node: Node, value: Any) -> np.ndarray:
        """The input as float64, as given (no copy when it already is)."""
        arr = np.asarray(value, dtype=np.float64)
        if arr.shape != node.shape:
            raise ValueError(f"input {node.name!r} has shape {arr.shape}, expected {node.shape}")
        return arr

    def apply(self, node: Node, args: list[Any]) -> Any:
        row = node.prim
        if node.id in self.fused:  # computed later, in blocks, by the reduction reading it
            return defer(node, args)
        with np.errstate(all="ignore"):  # float64 overflows to inf and invalid to nan: a baseline, never refused
            if row in REDUCERS and isinstance(args[0], Deferred):
                value = self._map_reduce(node, args[0])
            elif row in REDUCERS:
                value = REDUCERS[row](args[0], axis=tuple(node.attrs["axes"]))
            elif row in KERNELS:
                value = KERNELS[row](*args)
            elif row is P.CONSTANT:
                flat = np.asarray(constant_value(node.attrs["value"]), dtype=object).ravel()
                value = np.fromiter((float(v) for v in flat), np.float64, flat.size).reshape(node.shape)
            else:
                value = move(node, args, lambda: 0.0)
        return self._track(np.asarray(value, dtype=np.float64))

    def _map_reduce(self, node: Node, d: Deferred) -> np.ndarray:
        """⊕/⊗ of the deferred map ``d`` (then its joined terms) over the reduced axes, in blocks
        of at most ``block`` map elements cut along the kept axes."""
        shape, axes = d.node.shape, reduced_axes(node, d)
        if self.blas and d.node.prim is P.MUL and node.prim is P.SUM:
            out = contract(shape, d.args, axes)
            return out if d.extra is None else out + np.sum(d.extra, axis=-1)
        kept = [i for i in range(len(shape)) if i not in axes]
        out = np.empty(node.shape)
        fn, reducer = KERNELS[d.node.prim], REDUCERS[node.prim]
        for index in blocks(shape, kept, self.block):
            block = fn(*(np.broadcast_to(a, shape)[index] for a in d.args))
            out_index = tuple(index[i] for i in kept)
            if d.extra is not None:
                out[out_index] = reducer(join_terms(block, d.extra, out_index), axis=-1)
            else:
                out[out_index] = reducer(block, axis=axes)
        return out

    def _track(self, value: np.ndarray) -> np.ndarray:
        self.live_arrays += 1
        self.peak_arrays = max(self.peak_arrays, self.live_arrays)
        weakref.finalize(value, self._freed)
        return value

    def _freed(self) -> None:
        self.live_arrays -= 1

    def release(self, value: Any) -> None:
        """Nothing to do: the driver drops its reference, and numpy frees the array with the last."""

    def result(self, value: Any, values: str) -> np.ndarray:
        return value

    def close(self) -> None:
        """Nothing held."""


LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def contract(shape: tuple[int, ...], args: list[np.ndarray], axes: tuple[int, ...]) -> np.ndarray:
    """Σ over ``axes`` of a·b, a and b (broadcast to ``shape``) read on their own axes only (those
    a broadcast did not add) and contracted by ``np.einsum`` (two operands: numpy's tensordot, the
    installed BLAS's dot products and threads): the ``blas`` option, not the DAG's arithmetic. An
    axis neither operand has is a constant factor (reduced) or a broadcast (kept) of the result."""
    ops, subs = [], []
    for a in args:
        view = np.broadcast_to(a, shape)
        own = [i for i, n in enumerate(shape) if view.strides[i] != 0 or n == 1]
        ops.append(view[tuple(slice(None) if i in own else 0 for i in range(len(shape)))])
        subs.append("".join(LETTERS[i] for i in own))
    present = set("".join(subs))
    kept = [i for i in range(len(shape)) if i not in axes]
    out = np.einsum(f"{subs[0]},{subs[1]}->{''.join(LETTERS[i] for i in kept if LETTERS[i] in present)}", *ops,
                    optimize=True)
    factor = math.prod(shape[i] for i in axes if LETTERS[i] not in present)
    out = out.reshape([shape[i] if LETTERS[i] in present else 1 for i in kept]) * factor
    return np.ascontiguousarray(np.broadcast_to(out, [shape[i] for i in kept]))


def evaluate_float64(
    graph: Graph, inputs: Mapping[str, Any], *, block: int = BLOCK, streamed: bool = True,
    stats: EvalStats | None = None, progress: Callable[[int], None] | None = None, run: Float64Run | None = None,
    blas: bool = False,
) -> dict[str, np.ndarray]:
    """Every output of ``graph`` in plain float64, unrounded (module docstring); ``streamed=False``
    holds every value whole (the same values up to summation order); ``blas``: a ⊕ of products
    contracted by numpy's einsum (``contract``) instead."""
    flat = graph.flat()
    run = run if run is not None else Float64Run(block, blas)
    results = run_nodes(run, flat.live(), set(flat.outputs.values()), inputs, stats or EvalStats(), progress,
                        streamed=streamed)
    return {name: results[nid] for name, nid in flat.outputs.items()}


def estimate_bytes(graph: Graph, block: int = BLOCK) -> int:
    """An upper bound on the bytes the baseline holds at once (tc0sim.engines.peak.peak_bytes on
    ``Float64Memory``; the inputs counted while the run reads them, not the caller's copies)."""
    flat = graph.flat()
    return peak_bytes(Float64Memory(block), flat.live(), set(flat.outputs.values()))


