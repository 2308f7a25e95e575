"""The evaluate interpreter: bit-exact p-bit evaluation of a DAG (docs/semantics.md, docs/dag.md).

A thin front over tc0sim.engines, kept for its callers: ``evaluate`` plans (``engines.plan``,
no budget, no cluster started unasked) and runs (``engines.evaluate``). Every primitive rounds
exactly once on every engine (VAR Lemma 3.5), so every engine gives the same bits and errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from tc0sim import engines
from tc0sim.engines import EVAL_RULES, VALUES, EvalStats, random_inputs
from tc0sim.errors import ConfigError
from tc0sim.fp import Format
from tc0sim.ir.graph import Graph

__all__ = ["EVAL_RULES", "EvalStats", "evaluate", "evaluation_bytes", "random_inputs"]


def evaluation_bytes(graph: Graph, p: int, engine: str = "auto", chunk_elements: int | None = None) -> int:
    """The estimated peak bytes of ``evaluate(graph, p, engine=engine)`` in this process (on
    Dask the same values are spread over the workers): ``engines.plan``'s estimate."""
    chosen = engines.plan(graph, p, engine, chunk=chunk_elements, cluster_from=None)
    return engines.ENGINES[chosen.engine].memory_bytes(graph, p, chunk_elements)


def evaluate(
    graph: Graph,
    p: int,
    inputs: Mapping[str, Any] | None = None,
    seed: int = 0,
    scale: float = 1.0,
    engine: str = "auto",
    stats: EvalStats | None = None,
    chunk_elements: int | None = None,
    workers: int | None = None,
    scheduler: str | None = None,
    values: str = "mpfr",
) -> dict[str, np.ndarray]:
    """Evaluate every output at precision p; returns object arrays of F_p values (mpfr), or with
    ``values="float64"`` float64 arrays of the same values (NotRepresentableError if one is not),
    or with ``values="native"`` the engine's own arrays without conversion: float64 arrays from
    the fast engine (an object array of mpfr for an output with a value beyond binary64's normal
    range), object arrays of mpfr from the MPFR engines. ``Format.to_pairs`` takes both.

    ``engine`` is auto or a name of ``tc0sim.engines.ENGINES`` (same bits); ``stats`` (an
    EvalStats) is filled in; ``chunk_elements`` bounds the elements of a product tensor held at
    once; ``workers`` (local Dask worker processes; 0 or None: this process) / ``scheduler``
    (the address of a running Dask cluster) run the MPFR engine on a Dask cluster.
    """
    Format(p)  # an unsupported precision is refused first
    if values not in VALUES:
        raise ConfigError(f"values={values!r}: expected one of {', '.join(VALUES)}")
    chosen = engines.plan(graph, p, engine, workers, scheduler, chunk_elements, cluster_from=None)
    return engines.evaluate(graph, inputs, chosen, seed=seed, scale=scale, stats=stats, values=values)
