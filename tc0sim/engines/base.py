"""What every evaluation engine shares (docs/semantics.md §2.4-2.5, docs/dag.md "Engines").

An ``Engine`` is an object with a name, ``supports(p, graph)`` (None, or why not), a memory
model ``memory_bytes(graph, p, chunk)`` and ``evaluate(graph, inputs, p, ...)``; ``ENGINES`` in
tc0sim.engines lists them. The engines of this package are ``NodeEngine`` records: they compose
the node runner below (``run_nodes``: every live node in order, values released after their last
reader, large row-local values streamed: tc0sim.engines.streams) with a ``Run`` made per
evaluation and a ``Memory`` model read by ``peak_bytes`` (tc0sim.engines.peak). Every
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

from tc0sim.engines.peak import Memory, peak_bytes, planned_streams
from tc0sim.engines.streams import Streams, block_node, cut, released_after, row_ranges
from tc0sim.errors import ConfigError
from tc0sim.fp import Format, FpArithmeticError
from tc0sim.ir import domains
from tc0sim.ir.graph import Graph, Node
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


class Run(Protocol):
    """One evaluation on one engine: the hooks ``run_nodes`` calls. A run that streams
    (tc0sim.engines.streams) holds its memory model as ``memory`` (with ``streams(live, keep)``)
    and its fused nodes as ``fused``, and may give ``stack(node, parts)`` (an exit's value from its
    row blocks; default: numpy's concatenate) and ``scratch()`` (a context within which facts it
    learns of values belong to one row block)."""

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
    streams = planned_streams(getattr(run, "memory", None), live, keep) if streamed else None
    if streams is not None and streams.streamed:
        run.fused = set(streams.fused)  # type: ignore[attr-defined]
        last_use = streams.last_use
    else:
        streams, last_use = None, {i: node.id for node in live for i in node.inputs}
    releases = released_after(last_use)
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
    ``rate`` is the gates per second the plan's time estimate divides by (measured, an estimate);
    ``product_rate(p)``, if given, the rate of products (``mul`` gates, most of them feeding a ⊕),
    ``rate`` then that of the other gates."""

    name: str
    start: Callable[..., Run]
    memory: Callable[[int, int | None], Memory]
    limit: Callable[[int], str | None] = lambda p: None
    cluster: str | None = None
    worker_bytes: int | None = None
    rate: float = 1e6
    product_rate: Callable[[int], float] | None = None

    def supports(self, p: int, graph: Graph | None = None) -> str | None:
        return self.limit(p)

    def seconds(self, graph: Graph, p: int, gates: int) -> float:
        """The plan's time estimate for ``gates`` gates of ``graph`` at p (rates measured on the
        build machine: an estimate)."""
        if self.product_rate is None:
            return gates / self.rate * precision_slowdown(p)
        from tc0sim.interp.size import size

        products = size(graph).by_primitive.get("mul", 0)
        return products / self.product_rate(p) + (gates - products) / self.rate

    def explain(self, p: int) -> str:
        """How ``seconds`` estimates, in words for the plan."""
        if self.product_rate is None:
            slower = precision_slowdown(p)
            at_p = f", each gate {slower:.3g} times slower at p = {p:,}" if slower > 1 else ""
            return f"gates / {self.rate:.3g} gates per second, measured on the build machine{at_p}"
        return (f"products / {self.product_rate(p):.3g} per second + other gates / {self.rate:.3g} per second, "
                "measured on the build machine")

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
