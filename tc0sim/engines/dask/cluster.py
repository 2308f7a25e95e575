"""The client's side of the Dask cluster: values held there as blocks (``Remote``), starting or
reaching a cluster, and the ``Feeder`` that hands tasks to the workers as they free up."""

from __future__ import annotations

import logging
import math
import signal
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tc0sim.engines.dask.wire import Pairs
from tc0sim.engines.dask.worker import Operand
from tc0sim.errors import ConfigError, Tc0simError
from tc0sim.fastfp import compact
from tc0sim.ir import moves
from tc0sim.ir.graph import Node

TASKS_IN_FLIGHT = 2
"""Tasks submitted to a worker and not yet finished: one running, one waiting, so a worker does
not idle while the client hears of a finished task and submits the next."""

CONNECT_TIMEOUT = 30
"""Seconds to wait for the user's scheduler to answer, then for its first worker."""


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
        move_rule = node.prim.move
        if move_rule is moves.broadcast:
            k = len(node.shape) - len(distinct)
            unit = (slice(0, 1),) * k
            return Remote(self.futures, ((1,) * k + distinct, [unit + ix for ix in indexes],
                                         [(1,) * k + sh for sh in shapes]), node.shape, node.id)
        if move_rule is not moves.reshape or distinct != self.shape:
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
    client). The workers ignore SIGINT (inherited while they start): Ctrl-C reaches a terminal's
    whole process group, and only the client is to act on it, by closing the cluster."""
    import dask
    from distributed import LocalCluster

    main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
    try:
        with dask.config.set(QUIET_WORKERS):
            return LocalCluster(
                n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                silence_logs=logging.CRITICAL,
            )
    finally:
        if main_thread:
            signal.signal(signal.SIGINT, previous)


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
