"""The instances an audit reads: a claim's kind built along an n sweep, and exact size fits in n.

For each claim with a kind, the kind is built at the claim's dims (a model file's ``ModelSpec``, so
claims and files share one evaluator of dims in n) for a sweep of n and read by the depth and size
interpreters (docs/dag.md, issue 5 item 3). Sizes and operation counts are fitted as exact
polynomials in n (Fractions, verified on further points).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from tc0sim import polyfit
from tc0sim.errors import Tc0simError
from tc0sim.interp.depth import DepthResult, depth
from tc0sim.interp.size import fan_in
from tc0sim.ir.graph import Graph
from tc0sim.kinds import build, get_kind
from tc0sim.modelfile import ModelSpec, from_mapping

DEFAULT_NS: tuple[int, ...] = (2, 3, 4, 6, 8)
"""The n sweep of ``audit_claims`` and of model files whose dims use n."""

MIN_SWEEP = 3
"""Fewest instances a sweep should have; further n are tried when some n do not build."""

VERIFY_POINTS = 2
"""A fitted size polynomial must match this many further points to be reported as exact."""

MAX_SIZE_POINTS = 9
"""Most instances built for one size fit (degree ≤ MAX_SIZE_POINTS − VERIFY_POINTS − 1)."""

MAX_EXTRA_NS = 2
"""Most further n tried (doubling the largest) when fewer than MIN_SWEEP instances build."""

GRID_MULTIPLIERS = (1, 2, 3, 4)
"""When the counts are not a polynomial on the grid of n, coarser grids (floors and ceilings inside a
kind, e.g. ⌈h/2⌉ pyramid levels) are tried: the grid step times each multiplier."""

_FLOOR_DIVISOR = re.compile(r"//\s*(\d+)")

Maker = Callable[[Any], tuple[dict[str, int], Graph]]
"""At n (None for a fixed file): the names a precondition reads and the built graph."""


@dataclass
class Instance:
    """One built instance: its n (None for a fixed file), the names preconditions read, its graph."""

    n: int | None
    env: dict[str, int]
    graph: Graph
    depth: DepthResult


def operation_count(graph: Graph) -> int:
    """Sequential operations to evaluate the graph: one per gate, k per ⊕/⊗ gate of fan-in k."""
    total = 0
    for node, where, times in graph.occurrences():
        if node.prim.is_wiring:
            continue
        reads = fan_in(node, where) if "reduction" in node.prim.properties else 1
        total += times * node.size * reads
    return total


def claim_env(dims: Mapping[str, int], n: int | None, params: Mapping[str, Any]) -> dict[str, int]:
    """Names a precondition may read: integer params, then n, then the dims (a dim n wins)."""
    env = {k: v for k, v in params.items() if isinstance(v, int) and not isinstance(v, bool)}
    if n is not None:
        env["n"] = n
    env.update(dims)
    return env


def sweep(make: Maker, ns: Iterable[int], notes: list[str], extend: bool = True) -> list[Instance]:
    """Build and measure the depth at each n; n that do not build are skipped with a note.

    When some but fewer than MIN_SWEEP instances build, up to MAX_EXTRA_NS further n are tried.
    """
    instances: list[Instance] = []
    skipped: dict[str, list[int]] = {}
    candidates = sorted(set(ns))
    extra = max(candidates) if candidates else 1
    extras = 0
    while candidates:
        n = candidates.pop(0)
        try:
            env, graph = make(n)
        except Tc0simError as error:
            skipped.setdefault(str(error), []).append(n)
        else:
            instances.append(Instance(n, env, graph, depth(graph)))
        if not candidates and extend and instances and len(instances) < MIN_SWEEP and extras < MAX_EXTRA_NS:
            extra *= 2
            extras += 1
            candidates.append(extra)
    if skipped:
        notes.append(
            "instances that do not build were skipped: "
            + "; ".join(f"n={', '.join(map(str, at))}: {message}" for message, at in skipped.items())
        )
    return instances


def _grid(ns: Sequence[int], divisors: Iterable[int]) -> int:
    """The step of n for size fitting: the gcd of the built n and every floor divisor of the dims."""
    step = 0
    for n in ns:
        step = math.gcd(step, n)
    step = step or 1
    for d in divisors:
        step = step * d // math.gcd(step, d)
    return step


def size_fit(
    make: Maker, built: Mapping[int, Graph], divisors: Iterable[int], measure: Callable[[Graph], int]
) -> tuple[list[Fraction] | None, list[int], dict[int, int]]:
    """Fit ``measure`` (size or operation count) as a polynomial in n on a grid of n, built as needed.

    Returns the coefficients (None when no grid gives a polynomial), the n it was verified at, and
    the measured points of the successful grid (of the finest grid when none succeeds).
    """
    step = _grid(sorted(built), divisors)
    measured = {n: measure(g) for n, g in built.items()}
    first: dict[int, int] | None = None
    for multiplier in GRID_MULTIPLIERS:
        coefficients, verified, points = _fit_on_grid(make, measured, step * multiplier, measure)
        if coefficients is not None:
            return coefficients, verified, points
        first = first if first is not None else points
    return None, [], first or {}


def _fit_on_grid(
    make: Maker, measured: dict[int, int], step: int, measure: Callable[[Graph], int]
) -> tuple[list[Fraction] | None, list[int], dict[int, int]]:
    """Fit on the multiples of ``step``, building further multiples until the fit is verified."""
    points = {n: m for n, m in measured.items() if n % step == 0}
    n = max(points, default=0)
    attempts = 0
    while True:
        fit = polyfit.fit_and_verify(points, VERIFY_POINTS) if len(points) > VERIFY_POINTS else None
        if (fit is not None and fit.verified) or len(points) >= MAX_SIZE_POINTS or attempts >= 2 * MAX_SIZE_POINTS:
            break
        n += step
        attempts += 1
        if n not in measured:
            try:
                measured[n] = measure(make(n)[1])
            except Tc0simError:
                continue
        points[n] = measured[n]
    if fit is None or not fit.verified:
        return None, [], points
    return fit.coefficients, fit.checked_on, points


def divisors(texts: Iterable[str]) -> list[int]:
    """The floor divisors ``// k`` written in dims or params (the size-fit grid must step over them)."""
    return [int(m) for text in texts for m in _FLOOR_DIVISOR.findall(str(text))]


def claim_maker(claim_kind: str, dims: Mapping[str, str], params: Mapping[str, Any] | None = None) -> Maker:
    """Build ``claim_kind`` at the dims (and optional params, expressions in n) evaluated at n.

    The dims and params are read as a model file's (``from_mapping``), so claims and model files
    share one evaluator; the kind's own refusals are reported without the file prefix.
    """
    data = {"kind": claim_kind, "dims": dict(dims), "params": dict(params or {})}
    spec = from_mapping(data, source=f"the dims of {claim_kind}")
    return spec_maker(spec, lambda n, values, chosen: build(claim_kind, values, chosen))


def spec_maker(spec: ModelSpec, build_graph: Callable[[Any, dict[str, int], dict[str, Any]], Graph]) -> Maker:
    """At n: the names a precondition reads (``claim_env``) and the graph ``build_graph`` builds."""
    defaults = get_kind(spec.kind).defaults

    def make(n: int | None) -> tuple[dict[str, int], Graph]:
        dims, params = spec.dims_at(n), spec.params_at(n)
        return claim_env(dims, n, {**defaults, **params}), build_graph(n, dims, params)

    return make
