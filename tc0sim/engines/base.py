"""What every evaluation engine shares (docs/semantics.md §2.4-2.5, docs/dag.md "Engines").

An ``Engine`` is an object with a name, ``supports(p, graph)`` (None, or why not), a memory
model ``memory_bytes(graph, p, chunk)`` and ``evaluate(graph, inputs, p, ...)``; ``ENGINES`` in
tc0sim.engines lists them. The engines of this package are ``NodeEngine`` records: they compose
the node runner below (``run_nodes``: every live node in order, values released after their last
reader) with a ``Run`` made per evaluation and a ``Memory`` model read by ``peak_bytes``. Every
engine rounds each primitive once (VAR Lemma 3.5), so all give the same bits and errors.
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from tc0sim.engines.streams import Streams, block_node, cut, row_ranges
from tc0sim.errors import ConfigError
from tc0sim.fp import Format, FpArithmeticError
from tc0sim.ir import domains
from tc0sim.ir.graph import Graph, Node
from tc0sim.ir.moves import VIEWS, reshape, same_place
from tc0sim.ir.primitives import INPUT

VALUES = ("mpfr", "float64", "native")
"""Representations of an evaluation's outputs (see tc0sim.engines.evaluate)."""

Progress = Callable[[int], None]
"""Told the gates of each node as it is done (wiring and inputs count none): the calls of one
evaluation add up to its gate count. It may raise (e.g. a time limit) to stop the evaluation."""


@dataclass
class EvalStats:
    """What an evaluation did: gates per engine, certificates, MPFR recomputations, time per operator."""

    gates: dict[str, int] = field(default_factory=dict)
    certified: int = 0
    """Elements of exp / ⊕ / ⊗ whose binary64 value was certified to round like the exact result."""
    recomputed: int = 0
    """Elements of fast-engine nodes recomputed by MPFR (uncertified, or outside binary64's range)."""
    seconds: dict[str, float] = field(default_factory=dict)
    engine: str = ""
    replayed: int = 0
    """Evaluations the Dask engine ran again serially (a task raised, or the cluster failed)."""

    def add_gates(self, engine: str, node: Node) -> None:
        if not node.prim.is_wiring:
            self.gates[engine] = self.gates.get(engine, 0) + node.size

    def as_dict(self) -> dict[str, Any]:
        return {
            "engine": self.engine, "gates": dict(self.gates), "certified": self.certified,
            "recomputed": self.recomputed, "replayed": self.replayed, "seconds": dict(self.seconds),
        }


class Engine(Protocol):
    """An evaluation engine: one module-like object, listed once in ``tc0sim.engines.ENGINES``."""

    name: str
    rate: float
    """Gates per second, measured once on the build machine: the plan's time estimate."""

    def supports(self, p: int, graph: Graph | None = None) -> str | None:
        """None if the engine evaluates ``graph`` at precision p, else the reason it does not."""

    def memory_bytes(self, graph: Graph, p: int, chunk: int | None) -> int:
        """An upper bound on the bytes an evaluation holds at once in this process."""

    def evaluate(
        self, graph: Graph, inputs: Mapping[str, Any], p: int, *, stats: EvalStats, chunk: int | None = None,
        workers: int | None = None, scheduler: str | None = None, values: str = "mpfr", progress: Progress | None = None,
    ) -> dict[str, np.ndarray]:
        """Every output of the flat ``graph`` from every input's value, in the ``values``
        representation; ``progress`` is told each node's gates as it is done."""


class Memory(Protocol):
    """An engine's memory model, read by ``peak_bytes`` (no evaluation is started)."""

    pool_bytes: int
    """Bytes of freed arrays the engine may keep for reuse."""

    def fused(self, live: list[Node], keep: set[int]) -> set[int]:
        """Map nodes the engine computes with their only reader (a reduction), piece by piece."""

    def bytes_per_value(self) -> tuple[int, int]:
        """(bytes per array slot, bytes per computed value beyond its slot)."""

    def work_bytes(self, node: Node, shape: tuple[int, ...], fused: bool, operand_bytes: int) -> int:
        """Bytes of temporaries while ``node`` is computed on operands of ``shape``."""


class Run(Protocol):
    """One evaluation on one engine: the hooks ``run_nodes`` calls."""

    def prepare(self, live: list[Node], keep: set[int]) -> None: ...

    def entry(self, node: Node, value: Any) -> Any: ...

    def apply(self, node: Node, args: list[Any]) -> Any: ...

    def release(self, value: Any) -> None: ...

    def result(self, value: Any, values: str) -> np.ndarray: ...

    def close(self) -> None: ...


class NamedError(Exception):
    """Carries an arithmetic error already prefixed with the node that raised it."""

    def __init__(self, error: FpArithmeticError) -> None:
        super().__init__(str(error))
        self.error = error


def named(node: Node, error: FpArithmeticError) -> FpArithmeticError:
    """The error re-raised with the node name and its operator scope."""
    return type(error)(f"node {node.name} in operator {node.scope_path or '(top)'}: {error}")


def random_inputs(graph: Graph, seed: int = 0, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Draw every input from its domain (``tc0sim.ir.domains``; weights and activations as
    normal(0, 1)·scale) in float64, one stream per (seed, input name)."""
    out = {}
    for name, nid in graph.inputs.items():
        rng = np.random.default_rng([int(seed), zlib.crc32(name.encode())])
        out[name] = domains.draw(graph.node(nid), rng, scale)
    return out


def complete_inputs(graph: Graph, inputs: Mapping[str, Any] | None, seed: int, scale: float) -> dict[str, Any]:
    """The caller's inputs, checked against the graph's; then the graph's own values (``Graph.defaults``,
    e.g. a traced module's parameters) for inputs not given, and every input still missing drawn
    (``random_inputs``)."""
    given = dict(inputs or {})
    unknown = sorted(set(given) - set(graph.inputs))
    if unknown:
        raise ConfigError(f"unknown input(s) {', '.join(unknown)}; the graph takes {', '.join(graph.inputs)}")
    for name, value in given.items():
        domains.check(graph.node(graph.inputs[name]), value)
    given.update({name: value for name, value in graph.defaults.items() if name not in given})
    missing = [name for name in graph.inputs if name not in given]
    if missing:
        drawn = random_inputs(graph, seed, scale)
        given.update({name: drawn[name] for name in missing})
    return given


def entry(F: Format, node: Node, value: Any) -> np.ndarray:
    """An input's value rounded to F_p on entry (object array of mpfr), its shape checked."""
    arr = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
    if arr.shape != node.shape:
        raise ConfigError(f"input {node.name!r} has shape {arr.shape}, expected {node.shape}")
    try:
        return F.asarray(arr)
    except FpArithmeticError as e:
        raise type(e)(f"input {node.name!r}: {e}") from None


def run_nodes(
    run: Run, live: list[Node], keep: set[int], given: Mapping[str, Any], stats: EvalStats,
    progress: Progress | None = None, streamed: bool = True,
) -> dict[int, Any]:
    """Every live node in order on ``run`` (prepared first); a value is released after its last
    reader unless it is in ``keep``. Returns the kept values; an arithmetic error is raised as a
    NamedError (prefixed with its node). ``progress`` is told each computing node's gates. With
    ``streamed``, a run whose memory model plans streams (tc0sim.engines.streams) holds no value
    of a streamed node: each exit of one is computed in blocks of rows from its cone; if that
    raises, the evaluation is run again unstreamed (values held whole), which raises the error
    of the node order."""
    run.prepare(live, keep)
    streams = _streams(getattr(run, "memory", None), live, keep) if streamed else None
    if streams is not None and streams.streamed:
        run.fused = set(streams.fused)  # type: ignore[attr-defined]
        last_use = streams.last_use
    else:
        streams, last_use = None, {i: node.id for node in live for i in node.inputs}
    releases = _released_after(last_use)
    counted: set[int] = set()
    results: dict[int, Any] = {}
    for node in live:
        start = time.perf_counter()
        if streams is not None and node.id in streams.streamed:
            pass  # computed by its exits, block by block
        elif node.prim is INPUT:  # the graph's own input primitive: its value is given
            results[node.id] = run.entry(node, given[node.name])
        else:
            try:
                if streams is not None and node.id in streams.cones:
                    results[node.id] = _stream_exit(run, streams, node, results, stats, counted)
                else:
                    results[node.id] = run.apply(node, [results[i] for i in node.inputs])
            except FpArithmeticError as e:
                if streams is not None:  # blocks change which error comes first: the unstreamed order decides
                    run_nodes(run, live, keep, given, stats, None, streamed=False)
                raise NamedError(named(node, e)) from None
        stats.seconds[node.operator] = stats.seconds.get(node.operator, 0.0) + time.perf_counter() - start
        for i in releases.get(node.id, ()):
            if i not in keep and i in results:
                run.release(results.pop(i))  # no other reference: the fast engine pools an unshared array
        if progress is not None and not node.prim.is_wiring:
            progress(node.size)
    return results


def _released_after(last_use: dict[int, int]) -> dict[int, list[int]]:
    """The values released after each node: those it is the last to read."""
    after: dict[int, list[int]] = {}
    for i, node in last_use.items():
        after.setdefault(node, []).append(i)
    return after


def _streams(memory: Any, live: list[Node], keep: set[int]) -> Streams | None:
    plan = getattr(memory, "streams", None)
    return plan(live, keep) if plan is not None else None


def _stream_exit(
    run: Run, streams: Streams, node: Node, results: dict[int, Any], stats: EvalStats, counted: set[int]
) -> Any:
    """An exit of streams (tc0sim.engines.streams), block of rows by block: its cone evaluated on
    those rows of the held operands, values released after their last reader in the cone. A
    streamed node computed again for a later exit is not counted again in ``stats``."""
    cone = streams.cones[node.id]
    last = {i: n.id for n in cone for i in n.inputs}
    parts = []
    for start, stop in row_ranges(node.shape[0], streams.rows[node.id]):
        values: dict[int, Any] = {}
        with _scratch(run):
            for member in cone:
                piece = block_node(member, stop - start)
                args = [values[i] if i in values else cut(results[i], _shape_of(results[i]), member, start, stop)
                        for i in member.inputs]
                saved = _counts(stats) if member.id in counted else None
                values[member.id] = run.apply(piece, args)
                if saved is not None:
                    stats.gates, stats.certified, stats.recomputed = saved
                for i in set(member.inputs):
                    if i in values and last.get(i) == member.id:
                        run.release(values.pop(i))
            parts.append(values.pop(node.id))
    counted.update(n.id for n in cone[:-1])
    stack = getattr(run, "stack", None)
    return stack(node, parts) if stack is not None else np.concatenate(parts)


def _shape_of(value: Any) -> tuple[int, ...]:
    return tuple(np.shape(value))


def _counts(stats: EvalStats) -> tuple[dict[str, int], int, int]:
    return dict(stats.gates), stats.certified, stats.recomputed


def _scratch(run: Run) -> Any:
    """What a run learns of values while it computes one block of rows stays with that block
    (the fast engine's bounds of operands: ``Run.scratch``); nothing for a run without it."""
    scratch = getattr(run, "scratch", None)
    return scratch() if scratch is not None else contextlib.nullcontext()


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
    streams = _streams(memory, live, keep)
    if streams is None or not streams.streamed:
        streams = Streams(fused=frozenset(memory.fused(live, keep)),
                          last_use={i: node.id for node in live for i in node.inputs})
    return getattr(memory, "start_bytes", 0) + _replay(memory, live, keep, streams, frozenset(), Pool(memory))


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
    releases = _released_after(streams.last_use)
    shapes = {node.id: node.shape for node in live}
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
                work = memory.work_bytes(node, shape, is_fused, operand_bytes)
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


def precision_slowdown(p: int) -> float:
    """How many times longer one MPFR gate takes at p bits than at p <= 526, for the plan's time
    estimate: 2.5·(p/1000)^1.42 above that, fitted to gmpy2's add, mul and div measured here (one
    gate 67 ns at p = 53, 167 ns at 10^3, 3.8 µs at 10^4, 0.14 ms at 10^5, 3.1 ms at 10^6); an
    estimate, as the rates are."""
    return max(1.0, 2.5 * (p / 1000) ** 1.42)


@dataclass(frozen=True)
class NodeEngine:
    """An engine made of the node runner and two per-engine parts: ``start(F, stats, chunk,
    workers, scheduler)`` makes the ``Run`` of one evaluation, ``memory(p, chunk)`` its memory
    model; ``limit(p)`` says why a precision is not supported (None: it is). ``cluster`` names
    the engine that runs this one's work on a Dask cluster (given workers or a scheduler);
    ``worker_bytes`` (a cluster engine) is charged per local worker process against the budget;
    ``rate`` is the gates per second the plan's time estimate divides by (measured, an estimate)."""

    name: str
    start: Callable[..., Run]
    memory: Callable[[int, int | None], Memory]
    limit: Callable[[int], str | None] = lambda p: None
    cluster: str | None = None
    worker_bytes: int | None = None
    rate: float = 1e6

    def supports(self, p: int, graph: Graph | None = None) -> str | None:
        return self.limit(p)

    def memory_bytes(self, graph: Graph, p: int, chunk: int | None = None) -> int:
        graph = graph.flat()
        return peak_bytes(self.memory(p, chunk), graph.live(), set(graph.outputs.values()))

    def evaluate(
        self, graph: Graph, inputs: Mapping[str, Any], p: int, *, stats: EvalStats, chunk: int | None = None,
        workers: int | None = None, scheduler: str | None = None, values: str = "mpfr", progress: Progress | None = None,
    ) -> dict[str, np.ndarray]:
        run = self.start(Format(p), stats, chunk, workers, scheduler)
        try:
            try:
                results = run_nodes(run, graph.live(), set(graph.outputs.values()), inputs, stats, progress)
            except NamedError as e:
                raise e.error from None
            return {name: run.result(results[nid], values) for name, nid in graph.outputs.items()}
        finally:
            run.close()
