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
import sys
import uuid
from dataclasses import dataclass
from typing import Any

import numpy as np

from tc0sim.engines.base import EvalStats, NamedError, NodeEngine, named, run_nodes
from tc0sim.engines.blocking import Deferred, blocks, feeders_of_one_reduction, is_map, is_reduction
from tc0sim.engines.dask import cluster as dask_cluster
from tc0sim.engines.dask.cluster import ClusterFailed, ClusterStartError, Feeder, Remote, Task, _compact
from tc0sim.engines.dask.wire import Pairs, float_pairs, from_pairs, moved_pairs, to_pairs
from tc0sim.engines.dask.worker import region_wire, run_block, run_node, collect_seconds
from tc0sim.engines.mpfr import MPFR_RATE, MpfrMemory, MpfrRun
from tc0sim.engines.streams import Streams
from tc0sim.fp import Format, FpArithmeticError
from tc0sim.ir.graph import Node

MAX_TASK_ELEMENTS = 1 << 20
"""Default largest number of elements (of the product tensor, if fused) per task (its mpfr
objects take about 100 MB on the worker)."""

TASKS_PER_WORKER = 4
"""Default number of tasks a node is cut into per worker (when that keeps them within
MIN_PARALLEL_ELEMENTS..MAX_TASK_ELEMENTS): the client spends a few ms of CPU per task, on the
same cores as the workers of a local cluster, so fewer, larger tasks scale better."""


MIN_PARALLEL_ELEMENTS = 1 << 14
"""Nodes with fewer elements are evaluated in the client."""


LOCAL_WORKER_BYTES = 100 * 2**20
"""Memory charged per worker process of a local cluster against the evaluation budget: its
interpreter, numpy, gmpy2 and Dask (70 MB resident here after a task; the values it holds are not
counted)."""

SCATTER_TIMEOUT = 120
"""Seconds to wait for a node's operands to reach the workers; after that the node is evaluated
serially (same bits) instead of waiting on an unresponsive cluster."""


class DaskRun:
    """One evaluation of the MPFR engine whose large nodes run on a Dask distributed cluster
    (same bits as serial; how nodes are placed and submitted: the module docstring). It holds
    the serial reference run (``serial``) for the nodes it runs in the client."""

    name = "mpfr-dask"

    def __init__(
        self, F: Format, stats: EvalStats, workers: int | None = None, scheduler: str | None = None,
        chunk_elements: int | None = None,
    ) -> None:
        self.F = F
        self.stats = stats
        self.serial = MpfrRun(F, stats)
        self.fused: set[int] = set()
        from distributed import Client

        self.cluster = None
        if scheduler is not None:
            self.client = dask_cluster.connect(scheduler)
        else:
            count = workers or os.cpu_count() or 1
            try:
                self.cluster = dask_cluster.local_cluster(count)
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

    def release(self, value: Any) -> None:
        """A value no node reads any more (values on the cluster are the workers')."""

    def close(self) -> None:
        if isinstance(sys.exc_info()[1], KeyboardInterrupt):
            # interrupted (Ctrl-C, SIGTERM): the gathers cut short leave futures whose "exception was
            # never retrieved" asyncio would log with tracebacks; the command says "interrupted" once
            logging.getLogger("asyncio").disabled = True
        self._collect_seconds()
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()

    def prepare(self, live: list[Node], keep: set[int]) -> None:
        self.live, self.keep = live, keep
        self.fused = DaskMemory(self.F.p).fused(live, keep)

    def entry(self, node: Node, value: Any) -> Any:
        """A float64 input at p >= 53 is exactly F_p (F_p's range contains binary64's): kept as pairs."""
        self.given[node.name] = value
        if (self.F.p >= 53 and isinstance(value, np.ndarray) and value.dtype == np.float64
                and value.shape == node.shape and np.isfinite(value).all()):
            m, e = float_pairs(value)
            return Pairs((m,), (e,))
        return self.serial.entry(node, value)

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
        row = node.prim
        if row.kernel is None and row.move is not None and args and all(isinstance(a, Pairs) for a in args):
            self.stats.add_gates("mpfr", node)
            return moved_pairs(node, args)
        try:
            return self.serial.rule(node, [self._local(a) for a in args])
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
            return self.serial.result(local, values)
        return self.serial.result(self._local(value), values)

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
            self.replayed = run_nodes(MpfrRun(self.F, EvalStats()), self.live, self.keep, self.given, EvalStats())
        return self.replayed


def _kernel(node: Node | None) -> str | None:
    return node.prim.kernel if node is not None else None



def _start(F: Format, stats: EvalStats, chunk: int | None, workers: int | None, scheduler: str | None) -> DaskRun:
    return DaskRun(F, stats, workers=workers, scheduler=scheduler, chunk_elements=chunk)


@dataclass(frozen=True)
class DaskMemory(MpfrMemory):
    """The client's memory on Dask: the reference engine's model of what this engine does. A
    map read only by a ⊕/⊗ is fused from MIN_PARALLEL_ELEMENTS up (smaller ones are held); a
    bias chain (``joined_feeders``) is not fused, and nothing is streamed (every value is held,
    on the cluster or in the client)."""

    def fused(self, live: list[Node], keep: set[int]) -> set[int]:
        feeders = feeders_of_one_reduction(live, keep, is_map, is_reduction)
        return {n.id for n in feeders if n.size >= MIN_PARALLEL_ELEMENTS}

    def streams(self, live: list[Node], keep: set[int]) -> Streams:
        return Streams(fused=frozenset(self.fused(live, keep)), last_use={i: n.id for n in live for i in n.inputs})


DASK = NodeEngine("mpfr-dask", _start, DaskMemory, worker_bytes=LOCAL_WORKER_BYTES, rate=MPFR_RATE)
"""The MPFR engine on Dask: the reference engine's values in the client (``DaskMemory``), plus
LOCAL_WORKER_BYTES per local worker process. Its time estimate is the serial engine's: on the
2-core build machine under load, 2 workers were up to 10 times slower than in-process (issue 31)."""
