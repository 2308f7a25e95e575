"""The evaluation engines as one table, and the one plan the CLI and the API share (docs/dag.md, "Engines").

``ENGINES`` maps each engine's name to the engine (tc0sim.engines.base.Engine): the reference
MPFR engine, the fast engine (p <= 53) and the MPFR engine on Dask. ``plan`` chooses the engine,
the workers and the blocking, and checks the memory budget; ``evaluate(graph, inputs, plan)``
runs it. Adding an engine is one module plus one entry here (docs/dag.md, "How to add an engine").
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from tc0sim.engines.base import VALUES, Engine, EvalStats, Progress, complete_inputs, precision_slowdown, random_inputs
from tc0sim.engines.dask import DASK
from tc0sim.engines.fast import FAST
from tc0sim.engines.mpfr import EVAL_RULES, MPFR
from tc0sim.errors import BudgetError, ConfigError
from tc0sim.ir.graph import Graph

ENGINES: dict[str, Engine] = {FAST.name: FAST, MPFR.name: MPFR, DASK.name: DASK}
"""Every engine by name, in the order ``auto`` tries them (the first that runs in this process
and supports the precision and graph)."""

AUTO = "auto"
REFERENCE = MPFR.name
"""The engine every other one agrees with, bit for bit and error for error."""

__all__ = [
    "AUTO", "ENGINES", "EVAL_RULES", "REFERENCE", "VALUES", "EvalStats", "Plan", "Progress", "choices", "evaluate", "plan",
    "random_inputs",
]


@dataclass(frozen=True)
class Plan:
    """How an evaluation runs: the engine's name, the precision, local Dask workers (None: none
    started) or a scheduler's address, the blocking (``chunk``: elements of a product block or
    task; None: the engine's default), the estimated peak bytes (the engine's ``memory_bytes``
    and the inputs' arrays, ``input_bytes``; None: no budget was given), the
    graph's gates (None: not counted) and the estimated seconds (gates over the engine's
    measured ``rate``; None: gates not counted)."""

    engine: str
    p: int
    workers: int | None = None
    scheduler: str | None = None
    chunk: int | None = None
    bytes: int | None = None
    gates: int | None = None
    seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def input_bytes(graph: Graph) -> int:
    """The inputs' float64 arrays, which the caller holds for the whole evaluation (drawn at random
    or read from a checkpoint): part of the run's peak, not of the engine's ``memory_bytes``."""
    return 8 * sum(math.prod(graph.node(nid).shape) for nid in graph.inputs.values())


def choices() -> tuple[str, ...]:
    """The values ``engine`` may take: ``auto`` and every name of ``ENGINES``."""
    return (AUTO, *ENGINES)


def _worker_bytes(engine: Engine) -> int | None:
    """Bytes per local worker of an engine that runs on a Dask cluster (None: in this process)."""
    return getattr(engine, "worker_bytes", None)


def _auto(p: int, graph: Graph) -> str:
    for name, engine in ENGINES.items():
        if _worker_bytes(engine) is None and engine.supports(p, graph) is None:
            return name
    return REFERENCE


def _gates(graph: Graph, gates: int | None) -> int:
    if gates is not None:
        return gates
    from tc0sim.interp.size import size

    return size(graph).total


def plan(
    graph: Graph, p: int, engine: str = AUTO, workers: int | None = None, scheduler: str | None = None,
    chunk: int | None = None, max_memory: int | None = None, *, gates: int | None = None,
    cluster_from: int | None = None, label: str = "the graph",
) -> Plan:
    """The engine, workers and blocking for evaluating ``graph`` at precision p, within
    ``max_memory`` bytes (None: unchecked; BudgetError above it). ``engine`` is ``auto`` (the
    first engine of ENGINES that supports p), or a name of ENGINES; workers (0: this process) or
    a scheduler's address move the reference engine's work onto Dask. With neither, the work
    stays in this process: a local cluster was measured up to 10 times slower on a loaded 2-core
    machine (issue 31); a caller may opt in with ``cluster_from``, from which many gates a graph
    gets a local cluster of one worker per core, as many as the budget holds (none below two).
    ``gates`` saves counting them again (and gives the time estimate); ``label`` names the graph
    in the budget's error."""
    if engine not in choices():
        raise ConfigError(f"unknown engine {engine!r}; expected one of {', '.join(choices())}")
    if engine != AUTO and (reason := ENGINES[engine].supports(p, graph)) is not None:
        raise ConfigError(f"{reason}; use --engine {REFERENCE} or auto")
    name = engine if engine != AUTO else _auto(p, graph)
    cluster = getattr(ENGINES[name], "cluster", None)
    on_cluster = _worker_bytes(ENGINES[name]) is not None
    if workers is not None and workers < 0:
        raise ConfigError(f"workers={workers}: expected 0 (this process) or more")
    # --workers 0 (this process) suits every in-process engine: scripts that pass it for the MPFR
    # engine keep working where auto now picks the fast one (p <= 53).
    for option, given in (("--workers", bool(workers)), ("--scheduler", scheduler is not None)):
        if given and cluster is None and not on_cluster:
            raise ConfigError(f"{option} applies to the MPFR engine; at p={p} the {engine} engine is the {name} one "
                              f"(add --engine {REFERENCE})")
    if workers is not None and scheduler is not None:
        raise ConfigError("--workers starts a local cluster and --scheduler uses yours: give one of them")
    if on_cluster and workers == 0:
        raise ConfigError(f"the {name} engine runs on a Dask cluster: give --workers 1 or more, or --scheduler")
    needed = ENGINES[name].memory_bytes(graph, p, chunk) + input_bytes(graph) if max_memory is not None else None
    counted = gates
    if cluster is not None and workers is None and scheduler is None and cluster_from is not None:
        counted = _gates(graph, gates)
        if counted >= cluster_from:
            count = os.cpu_count() or 1
            each = _worker_bytes(ENGINES[cluster])
            if needed is not None and max_memory is not None and each:
                count = min(count, max(0, max_memory - needed) // each)
            workers = count if count >= 2 else None
    if cluster is not None and (workers or scheduler is not None):
        name, on_cluster = cluster, True
    elif on_cluster and workers is None and scheduler is None:
        workers = os.cpu_count() or 1
    if not on_cluster:
        workers = None
    local = workers if on_cluster and scheduler is None else 0
    if needed is not None and max_memory is not None:
        needed += (local or 0) * (_worker_bytes(ENGINES[name]) or 0)
        if needed > max_memory:
            counted = _gates(graph, counted)
            each = _worker_bytes(ENGINES[name]) or 0
            on, fewer = (f" on {local} local workers ({each:,} bytes each)", " or give fewer --workers") if local else ("", "")
            raise BudgetError(
                f"evaluating {label} ({counted:,} gates at p={p:,}){on} needs about {needed:,} bytes, "
                f"above the budget of {max_memory:,} bytes; raise it with --max-memory{fewer}"
            )
    estimate = getattr(ENGINES[name], "seconds", None)
    seconds = (None if counted is None else estimate(graph, p, counted) if estimate is not None
               else counted / ENGINES[name].rate * precision_slowdown(p))
    return Plan(name, p, workers, scheduler, chunk, needed, counted, seconds)


def evaluate(
    graph: Graph, inputs: Mapping[str, Any] | None, chosen: Plan, *, seed: int = 0, scale: float = 1.0,
    stats: EvalStats | None = None, values: str = "mpfr", progress: Progress | None = None,
) -> dict[str, np.ndarray]:
    """Every output of ``graph`` at the plan's precision on the plan's engine. Inputs not given
    are drawn (``random_inputs(graph, seed, scale)``). ``values``: object arrays of mpfr
    (``mpfr``), float64 arrays of the same values (``float64``; NotRepresentableError if one is
    not), or the engine's own arrays (``native``); ``stats`` (an EvalStats) is filled in;
    ``progress`` is told the gates of each node as it is done (they add up to the gate count)."""
    if values not in VALUES:
        raise ConfigError(f"values={values!r}: expected one of {', '.join(VALUES)}")
    graph = graph.flat()  # a shared body is evaluated at each of its calls
    stats = stats if stats is not None else EvalStats()
    given = complete_inputs(graph, inputs, seed, scale)
    stats.engine = chosen.engine
    return ENGINES[chosen.engine].evaluate(
        graph, given, chosen.p, stats=stats, chunk=chosen.chunk, workers=chosen.workers, scheduler=chosen.scheduler,
        values=values, progress=progress,
    )
