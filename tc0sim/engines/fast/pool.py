"""Both cores for the fast engine's numpy steps (issue 31 item 5; docs/threads.md): a large
block of elements cut in two halves along its first axis longer than 1, the first computed in the
calling thread, the second in one pool thread at the same time (numpy's ufuncs and numba's
``nogil`` kernels release the GIL). Each element is rounded once from the same operands whichever
half holds it, so the values are those of one thread; what a half reports (MPFR values by flat
index, the first error) is put back in element order by the caller."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Any, TypeVar

import numpy as np

from tc0sim.errors import ConfigError

T = TypeVar("T")

THREADS_ENV = "TC0SIM_THREADS"
"""Environment variable: 1 keeps every numpy step of the fast engine in the calling thread (numba's
kernels follow NUMBA_NUM_THREADS); unset, both cores are used where this process may run on two."""

SPLIT_MIN = 1 << 21
"""Fewest elements of a block cut in halves: below, handing a half to the other thread costs more
than it saves (measured: docs/threads.md)."""

Half = tuple[np.ndarray, list[np.ndarray], tuple[int, ...]]
"""One half of a block: its C-contiguous output view, its operands, its start in the node."""


def threads() -> int:
    """Threads the fast engine's numpy steps may use: TC0SIM_THREADS if set (1 or 2), else the
    cores this process may run on, at most 2."""
    setting = os.environ.get(THREADS_ENV, "").strip()
    if setting:
        if setting not in ("1", "2"):
            raise ConfigError(f"{THREADS_ENV}={setting!r}: expected 1 (one thread) or 2 (both cores), or unset")
        return int(setting)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(2, cores)


class _Pool:
    """One worker thread, started on first use and again in a forked child (which has no threads)."""

    def __init__(self) -> None:
        self.executor: ThreadPoolExecutor | None = None
        self.lock = threading.Lock()

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        with self.lock:
            if self.executor is None:
                self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tc0sim-half")
            return self.executor.submit(fn)

    def forget(self) -> None:
        self.executor, self.lock = None, threading.Lock()


_POOL = _Pool()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_POOL.forget)


def side_by_side(first: Callable[[], T], second: Callable[[], T]) -> tuple[T, T]:
    """first() in this thread and second() in the pool thread at the same time; both have ended
    when this returns (an exception of first's, else of second's, is raised after both)."""
    future = _POOL.submit(second)
    try:
        a = first()
    finally:
        wait([future])
    return a, future.result()


def halves(out: np.ndarray, args: list[np.ndarray], starts: tuple[int, ...]) -> tuple[Half, Half] | None:
    """``out`` (C-contiguous) and its broadcast operands cut in two along the first axis longer
    than 1 (every element of the first half precedes every element of the second in flat order),
    or None when ``out`` is not C-contiguous or has no such axis."""
    axis = next((a for a, n in enumerate(out.shape) if n > 1), None)
    if axis is None or not out.flags.c_contiguous or len(starts) != out.ndim:
        return None
    cut = out.shape[axis] // 2
    parts = []
    for part, offset in ((slice(0, cut), 0), (slice(cut, None), cut)):
        index = (slice(None),) * axis + (part,)
        cut_args = []
        for a in args:
            own = axis - (out.ndim - np.ndim(a))  # the operand's axis broadcast along out's
            cut_args.append(a[(slice(None),) * own + (part,)] if own >= 0 and np.shape(a)[own] > 1 else a)
        moved = tuple(s + offset if i == axis else s for i, s in enumerate(starts))
        parts.append((out[index], cut_args, moved))
    return parts[0], parts[1]


def joined(out: np.ndarray, first: tuple[np.ndarray, dict[int, Any], Any], second: tuple[np.ndarray, dict[int, Any], Any],
           size: int) -> tuple[np.ndarray, dict[int, Any], Any]:
    """A block's (values, MPFR values by flat index, first error) from its halves' (the first
    holding ``size`` elements, written in place into ``out``): the first half's error if any,
    which precedes every element of the second."""
    flat = out.reshape(-1)
    for values, start in ((first[0], 0), (second[0], size)):
        part = flat[start:start + values.size]
        if not np.shares_memory(values, part):
            part[...] = values.reshape(-1)
    extras = dict(first[1])
    extras.update({i + size: v for i, v in second[1].items()})
    return out, extras, first[2] if first[2] is not None else second[2]
