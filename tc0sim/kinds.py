"""The registry of buildable kinds: the thirteen operators of SPEC §3 and the models of §4.

An operator module registers a ``Kind`` with ``@register``; ``build(kind, dims, params)`` returns
the Graph. A kind declares its integer dims and its params (with defaults), builds its own
inputs with ``b.input(name, shape, role)`` and returns its outputs by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tc0sim.errors import ConfigError
from tc0sim.ir.budget import BudgetedBuilder, BuildBudget, active_budget
from tc0sim.ir.graph import Builder, Graph, Tensor

BuildFn = Callable[[Builder, dict[str, int], dict[str, Any]], dict[str, Tensor]]
MinNodesFn = Callable[[Mapping[str, int], Mapping[str, Any]], int]


@dataclass(frozen=True)
class Kind:
    """A buildable kind: required ``dims``, ``params`` with defaults, and its build function."""

    name: str
    dims: tuple[str, ...]
    build: BuildFn
    ref: str
    params: Mapping[str, Any] = field(default_factory=dict)
    model: bool = False
    doc: str = ""
    min_nodes: MinNodesFn | None = None
    """A lower bound on the graph's tensor nodes from dims and params, checked against the build
    budget before building (for kinds whose size grows with a param, e.g. ``layers``)."""


KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    if kind.name in KINDS:
        raise ValueError(f"kind {kind.name!r} registered twice")
    KINDS[kind.name] = kind
    return kind


def _load_all() -> None:
    import tc0sim.models  # noqa: F401  (registers the models)
    import tc0sim.ops  # noqa: F401  (registers the operators)


def kind_names() -> list[str]:
    """Every registered kind, operators and models, sorted."""
    _load_all()
    return sorted(KINDS)


def get_kind(name: str) -> Kind:
    _load_all()
    if name not in KINDS:
        raise ConfigError(f"unknown kind {name!r}; expected one of {', '.join(sorted(KINDS))}")
    return KINDS[name]


def build(
    name: str, dims: Mapping[str, int], params: Mapping[str, Any] | None = None, budget: BuildBudget | None = None
) -> Graph:
    """Build the Graph of kind ``name``; missing/extra dims and unknown params are ConfigErrors.

    With a ``budget`` (default: the active ``budget_scope``'s, if any) the build is refused
    (BudgetError) as soon as the graph would exceed it, and before anything is built when the
    kind's ``min_nodes`` already does.
    """
    kind = get_kind(name)
    missing = [d for d in kind.dims if d not in dims]
    extra = [d for d in dims if d not in kind.dims]
    if missing or extra:
        raise ConfigError(
            f"kind {name!r} takes dims {{{', '.join(kind.dims)}}}"
            + (f"; missing {', '.join(missing)}" if missing else "")
            + (f"; unknown {', '.join(extra)}" if extra else "")
        )
    for d in kind.dims:
        v = dims[d]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"dim {d} of {name!r} must be a positive integer, got {v!r}")
    params = dict(params or {})
    unknown = [p for p in params if p not in kind.params]
    if unknown:
        raise ConfigError(f"kind {name!r} has no param(s) {', '.join(unknown)}; it takes {', '.join(kind.params) or 'none'}")
    full = {**kind.params, **params}
    budget = budget or active_budget()
    if budget is None:
        b = Builder()
    else:
        b = BudgetedBuilder(budget, f"{name} ({', '.join(f'{d}={dims[d]}' for d in kind.dims)})")
        if kind.min_nodes is not None:
            at_least = kind.min_nodes(dims, full)
            if at_least > budget.max_nodes:
                raise budget.refuse_nodes(at_least, b.label)
    outputs = kind.build(b, dict(dims), full)
    for out_name, t in outputs.items():
        b.output(out_name, t)
    return b.graph
