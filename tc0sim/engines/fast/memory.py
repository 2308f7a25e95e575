"""The fast engine's memory: work arrays and a pool of freed node outputs per thread, and its
memory model (tc0sim.engines.base.Memory) read by ``peak_bytes``."""

from __future__ import annotations

import functools
import math
import sys
import threading
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any

import numpy as np

from tc0sim.engines.blocking import fused_maps, largest_block
from tc0sim.engines.streams import Streams, plan_for
from tc0sim.engines.fast import pool
from tc0sim.engines.fast.rules import FAST_RULES, MAPS, REDUCTIONS, SUM
from tc0sim import fastfp_dd
from tc0sim.engines.mpfr import MpfrMemory
from tc0sim.ir.graph import Node
from tc0sim.ir.primitives import ERF

DEFAULT_CHUNK = 1 << 18
"""Default largest number of elements of a fused product block (2 MB of float64: a block's
work arrays stay in cache and are reused, which matters more than the number of numpy calls)."""

POOL_BYTES = 1 << 28
"""Most bytes of freed node outputs kept for reuse (per thread, across evaluations)."""

POOL_MIN_BYTES = 1 << 20
"""Smaller arrays are left to numpy's allocator."""


WORK_BYTES = ((25, 24), (49, 32), (52, 144), (53, 32))
"""Work bytes per element of a node's largest block, by precision (the first row whose p bound
holds): the kernels' temporaries, measured as the peak resident set of a fused 256³ matmul and a
512 × 256 layer norm in a child process (benchmarks/memory_peaks.py). At 50 <= p <= 52 the
double-double path resolves a midpoint residual on most elements (38 MB against 13 MB at p = 49
for the matmul); p = 53 is binary64's own rounding."""


def work_bytes(p: int) -> int:
    """``WORK_BYTES`` at precision p (its last row above 53)."""
    return next((b for top, b in WORK_BYTES if p <= top), WORK_BYTES[-1][1])


class _Memory(threading.local):
    """Work arrays and freed node outputs of this thread's evaluations. The first write to fresh
    memory costs a page fault per 4 kB page, which on the build machine made an 8 MB array up
    to 10x slower to fill than memory used before; reusing arrays avoids it."""

    def __init__(self) -> None:
        self.work: dict[str, np.ndarray] = {}
        self.free: dict[int, list[np.ndarray]] = {}
        self.pooled = 0

    def output(self, shape: tuple[int, ...]) -> np.ndarray:
        """An uninitialised C-contiguous float64 array of ``shape`` (a freed one if there is)."""
        nbytes = 8 * math.prod(shape)
        arrays = self.free.get(nbytes)
        if arrays:
            self.pooled -= nbytes
            array = arrays.pop()
            array.shape = shape  # in place: the array stays the owner of its memory
            return array
        return np.empty(shape, dtype=np.float64)

    def give(self, array: np.ndarray) -> None:
        if self.pooled + array.nbytes <= POOL_BYTES:
            self.free.setdefault(array.nbytes, []).append(array)
            self.pooled += array.nbytes


_MEMORY = _Memory()


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
"""glibc's mallopt parameters (malloc.h)."""

@functools.cache  # once per process
def keep_freed_pages() -> None:
    """Large arrays from the process heap, their pages kept for the next array (glibc only; once
    per process): glibc maps every block above 32 MB afresh and unmaps it when freed, so each of
    the samplers' V × V temporaries (134 MB a row at V = 4096) paid its page faults (the kernel
    zeroes each page) again, more system time than the arithmetic. The peak resident set stays
    that of the largest arrays held at once (plus the heap's fragmentation); it is not returned
    to the system before the process ends."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_MAX, 0)  # no mmap: every block from the heap
        libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)  # free pages at the heap's top kept (up to 2 GB)
    except (OSError, AttributeError):  # not glibc: its allocator's own policy
        pass


def _unshared_refs(value: Any) -> int:
    return sys.getrefcount(value)


def _refs_of_a_temporary(value: Any) -> int:
    """The same call path as ``release`` (a temporary passed on to _unshared_refs)."""
    return _unshared_refs(value)


_UNSHARED = _refs_of_a_temporary(np.empty(1))
"""The reference count release sees for an array held by nothing else (no view, no other
value): measured once on this interpreter, along the same call path, rather than assumed."""


def buffer(slot: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """A reusable work array (allocating a fresh large array per block costs page faults): one
    flat array per slot and thread, grown when needed, viewed with the shape asked for."""
    n = math.prod(shape)
    work = _MEMORY.work
    buf = work.get(slot)
    if buf is None or buf.size < n or buf.dtype != dtype:
        buf = work[slot] = np.empty(max(n, 1), dtype=dtype)
    return buf[:n].reshape(shape)


def release(value: Any) -> None:
    """A node's value no node reads any more: kept for reuse if nothing else holds it (no view
    of it, no deferred node, not an output), checked by its reference count."""
    if (isinstance(value, np.ndarray) and value.dtype == np.float64 and value.base is None
            and value.flags.c_contiguous and value.flags.writeable and value.nbytes >= POOL_MIN_BYTES
            and _unshared_refs(value) <= _UNSHARED):
        _MEMORY.give(value)


def is_fast_map(node: Node) -> bool:
    rule = FAST_RULES.get(node.prim)
    return rule is not None and rule.family in MAPS


def is_fast_reduction(node: Node) -> bool:
    rule = FAST_RULES.get(node.prim)
    return rule is not None and rule.family in REDUCTIONS


JIT_BYTES = 110 << 20
"""Resident memory of importing numba and loading the compiled kernels from numba's cache: 106 MB
measured on the build machine (60 MB the import, 46 MB the first kernels)."""


DOT_MIN_TERMS = 8
"""Fewer products per output are left to the numpy path (the fused kernel's per-output cost dominates)."""

MATERIALISED = 1 << 16
"""Elements the fused kernel's copy of an operand's rows (or of the extra terms) may add beyond
twice its distinct elements (four times the outputs): beyond that the numpy path is left to it
(tc0sim.engines.fast.jit_dot.Dot)."""

DOT_OUTPUT_BYTES = 48
"""Bytes per output of the fused kernel's per-output arrays (values, flags, their copies in the
node's order), besides the node's value."""


def _takes_dot(node: Node, shape: tuple[int, ...], nodes: Mapping[int, Node]) -> bool:
    """A ⊕ of at least DOT_MIN_TERMS products per output (a bias joined or not): the fused kernel's work."""
    rule = FAST_RULES.get(node.prim)
    if rule is None or rule.family != SUM:
        return False
    axes = tuple(node.attrs.get("axes", ()))
    return math.prod(shape[a] for a in axes) >= DOT_MIN_TERMS and _fed_by_products(nodes.get(node.inputs[0]), nodes)


def dot_bytes(node: Node, shape: tuple[int, ...], operand_bytes: int) -> int:
    """The fused product-sum kernel's temporaries: each operand copied into rows (at most twice its
    elements plus MATERIALISED), the per-output arrays, a buffer of one output's terms per thread."""
    terms = math.prod(shape[a] for a in node.attrs.get("axes", ()))
    return 2 * operand_bytes + 2 * 8 * MATERIALISED + DOT_OUTPUT_BYTES * node.size + 2 * 8 * terms


JIT_SUM_MIN_TERMS = 1 << 16
"""Fewest terms in a ⊕ block summed by the compiled pass (below, numpy's sum costs less than a launch)."""


JIT_COLD_ELEMENTS = 1 << 27
"""Below p = 26 the compiled kernels are optional: a process that has not loaded numba yet uses them
only for a graph of at least this many elements in all (node outputs, product maps included).
Loading numba and the cached kernels costs about 0.45 s here, what the numpy path needs for about
10^8 fused products: a small job (a 256³ matmul, 0.05 s) stays on numpy."""


def compiled_worthwhile(live: list[Node]) -> bool:
    """Whether a run below p = 26 uses the compiled kernels (jit_dot, jit_sum, jit_erf)."""
    return "numba" in sys.modules or sum(node.size for node in live) >= JIT_COLD_ELEMENTS


def loads_jit(p: int, live: list[Node]) -> bool:
    """True when evaluating ``live`` at p runs compiled kernels: every kernel at 26 <= p <= 53
    (tc0sim/ddjit.py); below, the fused product-sum kernel (jit_dot: a ⊕ of at least DOT_MIN_TERMS
    products, a bias joined by a concat or not), the compiled ⊕ pass (jit_sum: a ⊕ of at least
    JIT_SUM_MIN_TERMS terms) and erf (jit_erf)."""
    if fastfp_dd.supports(p) or any(node.prim is ERF for node in live):  # erf's kernel is always the compiled one
        return True
    if not compiled_worthwhile(live):
        return False
    by_id = {n.id: n for n in live}
    for node in live:
        rule = FAST_RULES.get(node.prim)
        if rule is None or rule.family != SUM:
            continue
        source = by_id.get(node.inputs[0])
        if source is not None and math.prod(source.shape) >= JIT_SUM_MIN_TERMS:
            return True
        if source is not None and _takes_dot(node, source.shape, by_id):
            return True
    return False


def _fed_by_products(node: Node, by_id: dict[int, Node]) -> bool:
    """True when ``node`` is a product map, or wiring (reshape, concat, …) over one."""
    pending, seen = [node], set()
    while pending:
        n = pending.pop()
        if n is None or n.id in seen:
            continue
        seen.add(n.id)
        if getattr(FAST_RULES.get(n.prim), "product", False):
            return True
        if n.prim.role == "wiring":
            pending.extend(by_id.get(i) for i in n.inputs)
    return False


@dataclass(frozen=True)
class FastMemory:
    """The fast engine's memory model: a float64 per value, its reuse pool, its work arrays; the
    reference engine's model (``fallback``) for primitives without a fast rule."""

    p: int
    chunk: int | None = None
    work: int | None = None
    """Work bytes per element of a node's largest block (the kernels' temporaries; None:
    ``WORK_BYTES`` at p)."""

    pool_bytes = POOL_BYTES
    pool_min_bytes = POOL_MIN_BYTES
    def start_bytes(self, live: list[Node]) -> int:
        """What a first evaluation allocates besides values: the work arrays' first pages (0.6-1.0
        MB measured on graphs of under 20 kB of values, benchmarks/memory_peaks.py) and, the first
        time a process runs compiled kernels, numba and its cached machine code (``JIT_BYTES``)."""
        return (1 << 20) + (JIT_BYTES if "numba" not in sys.modules and loads_jit(self.p, live) else 0)

    @property
    def block(self) -> int:
        return max(1, int(self.chunk or DEFAULT_CHUNK))

    @property
    def split_min(self) -> float:
        """Fewest elements of a block computed in two halves side by side (infinite: one thread)."""
        return pool.SPLIT_MIN if pool.threads() > 1 else math.inf

    @property
    def fallback(self) -> MpfrMemory:
        return MpfrMemory(self.p, self.block)

    def fused(self, live: list[Node], keep: set[int]) -> set[int]:
        """A fast map larger than a block, read only by a fast reduction or joined to its further
        terms (``joined_feeders``: a bias), is computed with it."""
        return fused_maps(live, keep, is_fast_map, is_fast_reduction, self.block)

    def streams(self, live: list[Node], keep: set[int]) -> Streams:
        """Large values never held whole (tc0sim.engines.streams), at this model's block."""
        return plan_for(live, keep, self.fused(live, keep), self.block)

    def bytes_per_value(self) -> tuple[int, int]:
        return 8, 0  # a float64 per value

    def work_bytes(self, node: Node, shape: tuple[int, ...], fused: bool, operand_bytes: int,
                   nodes: Mapping[int, Node] | None = None) -> int:
        """The work arrays of a node's blocks (bit patterns, flags, binary32 copies, products of a
        fused map and numpy's temporaries: ``work`` bytes per element of the largest block, half
        as much again for the pool thread's half when that block is split), and a fused map's
        operands transposed (at most a copy of each) unless the reduced axes are already the
        trailing ones (always so with further terms joined). A primitive without a fast
        rule (erf) runs the MPFR rule on mpfr copies of its operands and result. At p >= 26 a ⊕ of
        products takes the fused kernel (``dot_bytes``)."""
        rule = FAST_RULES.get(node.prim)
        if fused and nodes is not None and fastfp_dd.supports(self.p) and _takes_dot(node, shape, nodes):
            return dot_bytes(node, shape, operand_bytes)
        if rule is None or rule.family not in MAPS | REDUCTIONS:
            mpfr_value = sum(self.fallback.bytes_per_value())
            copies = math.prod(shape) * len(node.inputs) + node.size
            return self.fallback.work_bytes(node, shape, False, 0) + copies * mpfr_value
        axes = tuple(node.attrs.get("axes", ())) if rule.family in REDUCTIONS else ()
        trailing = axes == tuple(range(len(shape) - len(axes), len(shape)))
        per_element = self.work if self.work is not None else work_bytes(self.p)
        block = largest_block(shape, axes, self.block)
        block += block // 2 if block >= self.split_min else 0  # the pool thread's work arrays for its half
        return per_element * block + (operand_bytes if fused and not trailing else 0)
