"""The MPFR engine on a Dask distributed cluster: a node's elements evaluated in parallel blocks.

Large elementwise nodes and reductions (and an elementwise node whose only consumer is a ⊕/⊗,
e.g. a matmul's products, fused with it) are cut into blocks along the kept axes, handed to the
workers as they free up (``Feeder``). Values travel as integer arrays (a ``Wire``: per element Σ_i m_i·2^e_i, one
int64 pair per binary64 term of an exact expansion, or one exact pair beyond binary64's range)
of their distinct elements (a broadcast operand is sent unbroadcast); each worker rebuilds the
mpfr values of the parts its blocks read and applies the same ``Format`` array operation as the
serial engine. The client walks the graph without waiting: a node's value stays on the
cluster as its blocks (``Remote``), a task depends only on the blocks covering the region it
reads, unit-axis reshapes and broadcasts of blocks are views, and any other node reading a value
on the cluster runs there as one task; the client waits only for the outputs. Tasks are queued
in graph order and each worker is kept TASKS_IN_FLIGHT tasks deep: a worker that frees up takes
the next node's block whose operands it holds most of, else one from the end of the other
workers' share, so a slower worker (one sharing its core with the client) does fewer blocks
instead of holding up the node's end. Every element is rounded once from its exact
value, so the bits do not depend on the blocks or the number of workers. If any task raises, or
the cluster fails, the evaluation is replayed serially, which raises exactly the serial engine's
first error (or gives its values). Nodes that read only values held in the client run there.
"""

from __future__ import annotations

import logging
import math
import os
import threading
import time
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

import gmpy2
import numpy as np

from tc0sim.errors import ConfigError, Tc0simError
from tc0sim.fastfp import compact
from tc0sim.fp import Format, FpArithmeticError
from tc0sim.interp.evaluate import (
    ENGINE_CLASSES, EVAL_RULES, Deferred, EvalStats, MpfrEngine, NamedError, blocks, feeders_of_one_reduction, is_map,
    is_reduction, map_reduce, named, run_nodes,
)
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

TASKS_IN_FLIGHT = 2
"""Tasks submitted to a worker and not yet finished: one running, one waiting, so a worker does
not idle while the client hears of a finished task and submits the next."""

MIN_PARALLEL_ELEMENTS = 1 << 14
"""Nodes with fewer elements are evaluated in the client."""

CONNECT_TIMEOUT = 30
"""Seconds to wait for the user's scheduler to answer, then for its first worker."""

LOCAL_WORKER_BYTES = 100 * 2**20
"""Memory charged per worker process of a local cluster against the evaluation budget: its
interpreter, numpy, gmpy2 and Dask (70 MB resident here after a task; the values it holds are not
counted)."""

SCATTER_TIMEOUT = 120
"""Seconds to wait for a node's operands to reach the workers; after that the node is evaluated
serially (same bits) instead of waiting on an unresponsive cluster."""


Wire = tuple[tuple[np.ndarray, ...], tuple[np.ndarray, ...]]
"""Integer arrays (m_1..m_k, e_1..e_k) of one shape: each element's value is Σ_i m_i·2^e_i."""


@dataclass
class Pairs:
    """A node's F_p values kept as integer arrays (a ``Wire``), until the client itself needs
    mpfr objects (then converted once, ``objects``): the operands and results of the nodes run
    on the cluster need no conversion in the client."""

    m: tuple[np.ndarray, ...]
    e: tuple[np.ndarray, ...]
    objects: np.ndarray | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return self.m[0].shape

    def each(self, fn: Any) -> Pairs:
        """The same function applied to every integer array (wiring, compaction, slicing)."""
        return Pairs(tuple(map(fn, self.m)), tuple(map(fn, self.e)))


def float_pairs(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(m, e) int64 arrays with m·2^e = x exactly, for finite float64 x (numpy.frexp)."""
    mant, ex = np.frexp(x)
    return np.ldexp(mant, 53).astype(np.int64), ex.astype(np.int64) - 53


def float_terms(F: Format, flat: list[Any]) -> list[np.ndarray] | None:
    """k = ⌈p/53⌉ float64 arrays whose sum is exactly each value of ``flat`` (a float64
    expansion: term i is the rest after terms 1..i-1 rounded to binary64, the rests computed
    exactly at precision p), or None if some value is beyond binary64's range.

    Why it is exact: a value's bits span [E - p + 1, E]. A normal term is the rest rounded to
    53 bits, so the next rest is a multiple of 2^(E-p+1) below half an ulp of that term: it
    spans at most 53 fewer bits. After k - 1 normal terms at most 53 bits remain, which the last
    term holds exactly. So it is enough to check that every term is finite and normal, or zero
    where the rest it came from is zero (checked for those elements one by one)."""
    n = len(flat)
    k = -(-F.p // 53)
    sub = F._wide.sub
    terms, rest = [], flat
    for i in range(k):
        term = np.fromiter(map(float, rest), np.float64, n)
        if not np.isfinite(term).all():
            return None
        tiny = np.flatnonzero(np.abs(term) < 2.0**-1022)
        if any(rest[j] != 0 for j in tiny.tolist()):
            return None
        terms.append(term)
        if i + 1 < k:
            rest = list(map(sub, rest, term.tolist()))
    return terms


def exact_floats(m: np.ndarray, e: np.ndarray) -> np.ndarray | None:
    """The float64 array m·2^e if every element is exactly a binary64 value, else None
    (certified: |m| <= 2^53 converts exactly, and scaling back by 2^-e gives m again)."""
    if m.dtype != np.int64 or m.size and np.abs(m).max() > 2**53:
        return None
    mf = m.astype(np.float64)
    scale = np.clip(e, -4000, 4000)
    with np.errstate(over="ignore", under="ignore"):
        x = np.ldexp(mf, scale)
        return x if np.array_equal(np.ldexp(x, -scale), mf) else None


def to_pairs(F: Format, values: np.ndarray | Pairs) -> Wire:
    """The Wire of F_p values: one int64 [m, e] pair per float64 term of their expansion
    (``float_terms``), or where that is not exact one exact pair (m a Python int for p > 62)."""
    if isinstance(values, Pairs):
        return values.m, values.e
    arr = np.asarray(values, dtype=object)
    flat = arr.ravel().tolist()
    terms = float_terms(F, flat)
    if terms is not None:
        pairs = [float_pairs(t.reshape(arr.shape)) for t in terms]
        return tuple(m for m, _ in pairs), tuple(e for _, e in pairs)
    exact = [v.as_mantissa_exp() if v != 0 else (0, 0) for v in flat]
    dtype = np.int64 if F.p <= 62 else object
    m = np.array([int(a) for a, _ in exact], dtype=dtype).reshape(arr.shape)
    e = np.array([int(b) for _, b in exact], dtype=np.int64).reshape(arr.shape)
    return (m,), (e,)


def from_pairs(F: Format, ms: tuple[np.ndarray, ...], es: tuple[np.ndarray, ...]) -> np.ndarray:
    """Object array of the mpfr values Σ_i m_i·2^e_i (exact: every Wire holds F_p values, and
    each partial sum of an expansion fits in p bits, so every addition below is exact)."""
    shape = ms[0].shape
    ctx = F._wide
    acc: list[Any] | None = None
    for m, e in zip(ms, es):
        x = exact_floats(m, e)
        if x is not None:
            term = x.ravel().tolist()
        else:
            mpfr, mul_2exp, p = gmpy2.mpfr, ctx.mul_2exp, F.p
            term = [mul_2exp(mpfr(int(a), p), int(b)) for a, b in zip(m.ravel().tolist(), e.ravel().tolist())]
        acc = list(map(ctx.plus, term)) if acc is None else list(map(ctx.add, acc, term))
    assert acc is not None
    return np.fromiter(acc, dtype=object, count=len(acc)).reshape(shape)


def aligned(args: list[Pairs]) -> list[Pairs]:
    """The same values with as many terms each (zero terms appended), for wiring across them."""
    terms = max(len(a.m) for a in args)
    out = []
    for a in args:
        pad = terms - len(a.m)
        zeros = tuple(np.zeros(a.shape, dtype=np.int64) for _ in range(pad))
        out.append(Pairs(a.m + zeros, a.e + zeros))
    return out


def moved_pairs(node: Node, args: list[Pairs]) -> Pairs:
    """A wiring node applied to values held as integer arrays: the same move on every array (a
    padded element gets m = 0, e = 0, i.e. the value 0)."""
    args = aligned(args)
    terms = range(len(args[0].m))
    return Pairs(
        tuple(move(node, [a.m[i] for a in args], lambda: 0) for i in terms),
        tuple(move(node, [a.e[i] for a in args], lambda: 0) for i in terms),
    )


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
    if PRIMITIVES[node.prim].kernel is None and node.prim != "constant":
        moved = moved_pairs(node, [Pairs(*_wire(o)).each(lambda a, s=o[1]: np.broadcast_to(a, s)) for o in operands])
        moved = moved.each(compact)
        _timed(clock, start)
        return moved.m, moved.e
    args = [_objects(p, operand, tuple(slice(None) for _ in operand[1])) for operand in operands]
    try:
        return to_pairs(F, EVAL_RULES.rule(node.prim)(F, node, args))
    finally:
        _timed(clock, start)


Layout = tuple[tuple[int, ...], list[tuple[slice, ...]], list[tuple[int, ...]]]
"""A value held as blocks: (shape of its distinct elements, each block's index and shape there)."""


@dataclass
class Remote:
    """A node's value on the cluster: futures of the Wire of its distinct elements (broadcast
    to ``shape``), or (``layout``) of its blocks; no futures once the cluster has failed (then
    the evaluation is replayed serially). A task reading it waits only for the blocks it reads,
    so no task or trip through the client stands between two nodes, and a block of the next
    node can start as soon as the blocks it needs are done."""

    futures: list[Any]
    layout: Layout | None
    shape: tuple[int, ...]
    node: int
    token: str = field(default_factory=lambda: uuid.uuid4().hex)

    def operand(self, index: tuple[slice, ...] | None = None) -> Operand:
        """The operand of a task that reads the part ``index`` (of ``shape``; None: all)."""
        if self.layout is None:
            return ((self.token,), self.shape, None, None, None, self.futures)
        distinct, indexes, shapes = self.layout
        index = index or tuple(slice(None) for _ in self.shape)
        region = [(0, 1) if c == 1 else s.indices(n)[:2] for c, s, n in zip(distinct, index, self.shape)]
        places, parts = [], []
        for block, block_shape, future in zip(indexes, shapes, self.futures):
            cut = [(max(r0, b.start), min(r1, b.stop)) for (r0, r1), b in zip(region, block)]
            if all(lo < hi for lo, hi in cut):
                dst = tuple(slice(lo - r0, hi - r0) for (lo, hi), (r0, _) in zip(cut, region))
                src = tuple(slice(lo - b.start, hi - b.start) for (lo, hi), b in zip(cut, block))
                places.append((dst, src, block_shape))
                parts.append(future)
        return ((self.token, *region), self.shape, tuple(r0 for r0, _ in region),
                tuple(r1 - r0 for r0, r1 in region), places, parts)

    def moved(self, node: Node) -> Remote | None:
        """A reshape that only adds or drops axes of length 1, or a broadcast, of a value held
        as blocks, as the same blocks seen in the new shape (nothing is computed); else None."""
        if self.layout is None or not self.futures:
            return None
        distinct, indexes, shapes = self.layout
        if node.prim == "broadcast":
            k = len(node.shape) - len(distinct)
            unit = (slice(0, 1),) * k
            return Remote(self.futures, ((1,) * k + distinct, [unit + ix for ix in indexes],
                                         [(1,) * k + sh for sh in shapes]), node.shape, node.id)
        if node.prim != "reshape" or distinct != self.shape:
            return None
        old = [ax for ax, n in enumerate(distinct) if n != 1]
        new = [ax for ax, n in enumerate(node.shape) if n != 1]
        if [distinct[ax] for ax in old] != [node.shape[ax] for ax in new]:
            return None
        moved = []
        for ix in indexes:
            target = [slice(0, 1)] * len(node.shape)
            for o, n in zip(old, new):
                target[n] = ix[o]
            moved.append(tuple(target))
        return Remote(self.futures, (node.shape, moved, [tuple(t.stop - t.start for t in ix) for ix in moved]),
                      node.shape, node.id)


def _compact(value: np.ndarray | Pairs) -> np.ndarray | Pairs:
    """The distinct elements of a broadcast operand (fastfp.compact of every integer array)."""
    return value.each(compact) if isinstance(value, Pairs) else compact(value)


class ClusterStartError(Tc0simError):
    """A local Dask cluster could not be started."""


class ClusterFailed(Exception):
    """The cluster did not take or return a node's data."""


QUIET_WORKERS = {
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.admin.system-monitor.gil.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.deploy.cluster-repr-interval": "10s",
}
"""Dask settings of the local cluster: no statistical profiler sampling the computing thread
every 10 ms, and the periodic checks (system and memory monitors, event-loop health tick, the
cluster's repr) at 1 s or more instead of 20-500 ms. Idle, Dask's defaults took 4.6 % of a core
in the client's process and 4.9 % in two workers; these take 1.3 % and 0.9 %."""


def local_cluster(workers: int) -> Any:
    """A Dask LocalCluster of single-threaded worker processes, quiet (its HTTP server on a free
    port, no logs below CRITICAL: a failing task is replayed serially and reported once, by the
    client)."""
    import dask
    from distributed import LocalCluster

    with dask.config.set(QUIET_WORKERS):
        return LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
            silence_logs=logging.CRITICAL,
        )


def connect(address: str) -> Any:
    """A Dask client of the user's cluster at ``address`` that has at least one worker. A
    malformed address, a scheduler that does not answer, or a cluster with no worker within
    CONNECT_TIMEOUT seconds is a ConfigError (else every task would wait for a worker forever)."""
    from distributed import Client
    from distributed.comm import resolve_address

    try:
        resolve_address(address)  # checked first: a Client that fails to start leaves its IO loop behind
        client = Client(address, timeout=CONNECT_TIMEOUT)
    except ValueError as e:
        raise ConfigError(f"{address!r} is not a Dask scheduler address ({e})") from None
    except OSError as e:
        raise ConfigError(f"cannot reach the Dask scheduler at {address!r}: {e}") from None
    try:
        client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
    except TimeoutError:
        client.close()
        raise ConfigError(f"the Dask cluster at {address!r} has no worker (waited {CONNECT_TIMEOUT} s)") from None
    return client


@dataclass
class Task:
    """A task waiting in the client: the function and node it runs, the values on the cluster it
    reads (with the part each reads; None: all), the arguments before and after its operands,
    the worker whose share of the node it is in (``home``), and where its future goes
    (``out[slot]``, a ``Remote``'s)."""

    fn: Any
    node: Node
    reads: list[tuple[Remote, tuple[slice, ...] | None]]
    before: tuple[Any, ...]
    after: tuple[Any, ...]
    home: int
    out: list[Any]
    slot: int
    operands: list[Operand] = field(default_factory=list)


class Feeder:
    """Hands queued tasks, one node after another in graph order, to the workers as they free
    up, each kept TASKS_IN_FLIGHT tasks deep. A node's tasks are dealt out when it reaches the
    head of the queue (every task it reads from is submitted by then): each goes to the worker
    that computed most of the blocks it reads, else to its ``home`` share; a worker whose share is
    done takes the last task of the largest other share. Its lock is shared with the thread in
    which Dask runs the finished tasks' callbacks; ``failed`` once a submission raised."""

    def __init__(self, addresses: list[str], submit: Any) -> None:
        self.addresses = addresses or [""]
        self.submit = submit
        self.lock = threading.Condition()
        self.queue: deque[list[Task]] = deque()
        self.shares: dict[str, deque[Task]] = {}
        self.in_flight = dict.fromkeys(self.addresses, 0)
        self.where: dict[str, str] = {}
        self.failed = False

    def put(self, tasks: list[Task]) -> None:
        with self.lock:
            self.queue.append(tasks)
            self._feed()

    def wait(self, futures: list[Any]) -> bool:
        """Waits until every one of ``futures`` is submitted; False if a submission failed."""
        with self.lock:
            self.lock.wait_for(lambda: self.failed or None not in futures)
            return not self.failed

    def _done(self, future: Any) -> None:
        with self.lock:
            self.in_flight[self.where[future.key]] -= 1
            self._feed()

    def _feed(self) -> None:
        try:
            while not self.failed:
                free = [a for a in self.addresses if self.in_flight[a] < TASKS_IN_FLIGHT]
                if not free or not self._deal():
                    return
                address = min(free, key=self.in_flight.__getitem__)
                mine = self.shares[address]
                task = mine.popleft() if mine else max(self.shares.values(), key=len).pop()
                future = self.submit(task, address)
                task.out[task.slot] = future
                self.where[future.key] = address
                self.in_flight[address] += 1
                future.add_done_callback(self._done)
        except Exception:  # a closed client or a failed cluster: the evaluation is replayed
            self.failed = True
        finally:
            self.lock.notify_all()

    def _deal(self) -> bool:
        """The next node's tasks dealt out to the workers' shares if the current node's are all
        submitted; False if no task is left."""
        while not any(self.shares.values()):
            if not self.queue:
                return False
            self.shares = {a: deque() for a in self.addresses}
            for task in self.queue.popleft():
                task.operands = [remote.operand(index) for remote, index in task.reads]
                self.shares[self._prefer(task)].append(task)
        return True

    def _prefer(self, task: Task) -> str:
        """The worker holding most of the elements of the blocks the task reads of operands it
        reads a part of (a value every task reads whole, such as a matmul's right factor, says
        nothing about where the task belongs), else its home."""
        held: dict[str, int] = {}
        for (remote, _), (_, _, _, region, places, parts) in zip(task.reads, task.operands):
            if places is None or region == remote.layout[0]:
                continue
            for (dst, _, _), part in zip(places, parts):
                if (address := self.where.get(part.key)) is not None:
                    held[address] = held.get(address, 0) + math.prod(s.stop - s.start for s in dst)
        return max(held, key=held.__getitem__) if held else self.addresses[task.home]


class ParallelMpfrEngine(MpfrEngine):
    """MPFR engine whose large nodes run on a Dask distributed cluster (same bits as serial;
    how nodes are placed and submitted: the module docstring)."""

    name = "mpfr-dask"

    def __init__(
        self, F: Format, stats: EvalStats, workers: int | None = None, scheduler: str | None = None,
        chunk_elements: int | None = None,
    ) -> None:
        super().__init__(F, stats)
        from distributed import Client

        self.cluster = None
        if scheduler is not None:
            self.client = connect(scheduler)
        else:
            count = workers or os.cpu_count() or 1
            try:
                self.cluster = local_cluster(count)
            except Exception as e:  # e.g. worker processes that cannot start (memory, process limits)
                raise ClusterStartError(f"cannot start a local Dask cluster of {count} workers ({e}); "
                                        "--workers 0 evaluates in this process") from None
            self.client = Client(self.cluster)
        self.task_elements = chunk_elements
        self.addresses = sorted(self.client.scheduler_info().get("workers", {}))
        self.workers = max(1, len(self.addresses))
        self.feeder = Feeder(self.addresses, self._submit_task)
        self.live: list[Node] = []
        self.keep: set[int] = set()
        self.given: dict[str, Any] = {}
        self.evaluation = uuid.uuid4().hex
        self.submitted = False
        self.replayed: dict[int, Any] | None = None

    def close(self) -> None:
        self._collect_seconds()
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def prepare(self, live: list[Node], keep: set[int]) -> None:
        self.live, self.keep = live, keep
        feeders = feeders_of_one_reduction(live, keep, is_map, is_reduction)
        self.fused = {n.id for n in feeders if n.size >= MIN_PARALLEL_ELEMENTS}

    def entry(self, node: Node, value: Any) -> Any:
        """A float64 input at p >= 53 is exactly F_p (F_p's range contains binary64's): kept as pairs."""
        self.given[node.name] = value
        if (self.F.p >= 53 and isinstance(value, np.ndarray) and value.dtype == np.float64
                and value.shape == node.shape and np.isfinite(value).all()):
            m, e = float_pairs(value)
            return Pairs((m,), (e,))
        return super().entry(node, value)

    def apply(self, node: Node, args: list[Any]) -> Any:
        if node.id in self.fused:
            return Deferred(node, args)
        if is_reduction(node) and isinstance(args[0], Deferred):
            return self._blocks(node, args[0].node, args[0].args)
        if is_map(node) and node.size >= MIN_PARALLEL_ELEMENTS:
            return self._blocks(None, node, args)
        if is_reduction(node) and math.prod(args[0].shape) >= MIN_PARALLEL_ELEMENTS:
            return self._blocks(node, None, args)
        if any(isinstance(a, Remote) for a in args):
            return self._whole(node, args)
        row = PRIMITIVES.get(node.prim)
        if row is not None and row.kernel is None and row.move is not None and args and all(isinstance(a, Pairs) for a in args):
            self.stats.add_gates("mpfr", node)
            return moved_pairs(node, args)
        try:
            return self.rule(node, [self._local(a) for a in args])
        except FpArithmeticError as e:
            if self.submitted:  # an earlier node on the cluster may fail first: the serial order decides
                self._replay()
            raise NamedError(named(node, e)) from None

    def result(self, value: Any, values: str) -> np.ndarray:
        if isinstance(value, Remote):
            try:
                if not value.futures or not self.feeder.wait(value.futures):
                    raise ClusterFailed
                _, _, _, region, places, _ = value.operand()
                parts = self.client.gather(value.futures)
                ms, es = parts[0] if places is None else region_wire(region, places, parts)
                local = from_pairs(self.F, tuple(np.broadcast_to(m, value.shape) for m in ms),
                                   tuple(np.broadcast_to(e, value.shape) for e in es))
            except Exception:  # an arithmetic error on a worker, or a failed cluster: serial decides
                try:
                    local = self._replay()[value.node]
                except NamedError as e:
                    raise e.error from None
            return super().result(local, values)
        return super().result(self._local(value), values)

    def _local(self, value: Any) -> np.ndarray:
        """mpfr objects of a value held in the client."""
        if isinstance(value, Pairs):
            if value.objects is None:
                value.objects = from_pairs(self.F, value.m, value.e)
            return value.objects
        return value

    def _on_cluster(self, args: list[Any]) -> list[Remote] | None:
        """Every argument as a value on the cluster: a value in the client is sent once, as the
        Wire of its distinct elements. None if the cluster failed."""
        remotes = []
        for a in args:
            if isinstance(a, Remote):
                if not a.futures:
                    return None
                remotes.append(a)
                continue
            wire = to_pairs(self.F, _compact(a))
            try:
                future = self.client.scatter([wire], hash=False, broadcast=True, timeout=SCATTER_TIMEOUT)[0]
            except Exception:
                return None
            remotes.append(Remote([future], None, a.shape, -1))
        return remotes

    def _submit_task(self, task: Task, address: str) -> Any:
        placement = {"workers": [address], "allow_other_workers": True} if address else {}
        return self.client.submit(task.fn, self.F.p, (self.evaluation, task.node.operator), *task.before,
                                  task.operands, *task.after, pure=False, **placement)

    def _put(self, tasks: list[Task]) -> None:
        """One node's tasks queued for the cluster (``submitted``: workers' seconds to collect)."""
        self.submitted = True
        self.feeder.put(tasks)

    def _blocks(self, reduce_node: Node | None, map_node: Node | None, args: list[Any]) -> Remote:
        """Blocks of ``reduce(map(args))`` (either may be absent), queued for the cluster."""
        shape = map_node.shape if map_node is not None else args[0].shape
        axes = tuple(reduce_node.attrs["axes"]) if reduce_node is not None else ()
        kept = [i for i in range(len(shape)) if i not in axes]
        out = reduce_node if reduce_node is not None else map_node
        assert out is not None
        for n in (reduce_node, map_node):
            if n is not None:
                self.stats.add_gates("mpfr", n)
        remotes = self._on_cluster(args)
        if remotes is None:
            return Remote([], None, out.shape, out.id)
        per_task = self.task_elements or min(
            MAX_TASK_ELEMENTS, max(MIN_PARALLEL_ELEMENTS, math.prod(shape) // (TASKS_PER_WORKER * self.workers) + 1)
        )
        indexes = list(blocks(shape, kept, per_task))
        futures: list[Any] = [None] * len(indexes)
        tasks, out_indexes = [], []
        for i, index in enumerate(indexes):
            tasks.append(Task(run_block, out, [(r, index) for r in remotes], (_kernel(map_node), _kernel(reduce_node), axes),
                              (index,), i * self.workers // len(indexes), futures, i))
            kept_index = tuple(index[a] for a in kept) if reduce_node is not None else index
            out_indexes.append(tuple(slice(*s.indices(n)[:2]) for s, n in zip(kept_index, out.shape)))
        self._put(tasks)
        shapes = [tuple(s.stop - s.start for s in ix) for ix in out_indexes]
        return Remote(futures, (out.shape, out_indexes, shapes), out.shape, out.id)

    def _whole(self, node: Node, args: list[Any]) -> Remote:
        self.stats.add_gates("mpfr", node)
        if len(args) == 1 and isinstance(args[0], Remote) and (moved := args[0].moved(node)) is not None:
            return moved
        remotes = self._on_cluster(args)
        if remotes is None:
            return Remote([], None, node.shape, node.id)
        futures: list[Any] = [None]
        self._put([Task(run_node, node, [(r, None) for r in remotes], (node,), (), 0, futures, 0)])
        return Remote(futures, None, node.shape, node.id)

    def _collect_seconds(self) -> None:
        """Workers' CPU seconds per operator, added to the client's once the outputs are in (the
        client only submits the nodes that run on the cluster)."""
        if not self.submitted:
            return
        self.submitted = False
        try:
            per_worker = self.client.run(collect_seconds, self.evaluation)
        except Exception:
            return
        for seconds in per_worker.values():
            for op, s in seconds.items():
                self.stats.seconds[op] = self.stats.seconds.get(op, 0.0) + s

    def _replay(self) -> dict[int, Any]:
        """The whole evaluation again, serially: raises exactly the serial engine's first error
        (named by its node), or gives the values the cluster could not."""
        if self.replayed is None:
            self.stats.replayed += 1
            self.replayed = run_nodes(MpfrEngine(self.F, EvalStats()), self.live, self.keep, self.given, EvalStats())
        return self.replayed


def _kernel(node: Node | None) -> str | None:
    return PRIMITIVES[node.prim].kernel if node is not None else None



ENGINE_CLASSES["dask"] = ParallelMpfrEngine
