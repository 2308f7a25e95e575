"""A buildable kind: an operator of docs/operators.md or a model of docs/models.md, as a record the registry lists.

An operator or model module defines its kinds as ``KINDS = (Kind(...), ...)`` and its package
lists them (``tc0sim.ops.OPERATORS``, ``tc0sim.models.MODELS``); the registry ``tc0sim.kinds``
collects both lists. A kind declares its integer dims and its params (with defaults), builds its
own inputs with ``b.input(name, shape, role)`` and returns its outputs by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tc0sim.errors import ConfigError
from tc0sim.ir.budget import BudgetedBuilder, BuildBudget, active_budget
from tc0sim.ir.graph import Builder, Graph, Tensor, paused_gc

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
    parameters: Callable[[Graph], dict[str, Any]] | None = None
    """Optional: the weight scalars the circuit reads, grouped (``tc0sim size`` reports it)."""
    ignored_weights: tuple[str, ...] = ()
    """Optional: fnmatch patterns of checkpoint tensors the circuit does not read (``eval --weights``)."""
    min_nodes: MinNodesFn | None = None
    """A lower bound on the graph's tensor nodes from dims and params, checked against the build
    budget before building (for kinds whose size grows with a param, e.g. ``layers``)."""
    open_dims: bool = False
    """The kind takes whatever dims its model file names (the ``torch`` front end: input shapes use them)."""
    locate: Callable[[Mapping[str, Any], Path], dict[str, Any]] | None = None
    """Optional: the params with file names made absolute, relative to the model file's directory."""

    def graph(
        self,
        dims: Mapping[str, int],
        params: Mapping[str, Any] | None = None,
        budget: BuildBudget | None = None,
        share: bool = False,
    ) -> Graph:
        """Build the Graph; missing/extra dims and unknown params are ConfigErrors.

        With a ``budget`` (default: the active ``budget_scope``'s, if any) the build is refused
        (BudgetError) as soon as the graph would exceed it, and before anything is built when
        ``min_nodes`` already does. With ``share`` the sub-circuits a model builds with
        ``Builder.call`` are built once and called (the depth and size interpreters read such
        graphs; ``Graph.flat`` gives the same circuit without calls).
        """
        missing = [d for d in self.dims if d not in dims]
        extra = [d for d in dims if d not in self.dims and not self.open_dims]
        if missing or extra:
            raise ConfigError(
                f"kind {self.name!r} takes dims {{{', '.join(self.dims)}}}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(extra)}" if extra else "")
            )
        for d in dims:
            v = dims[d]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"dim {d} of {self.name!r} must be a positive integer, got {v!r}")
        params = dict(params or {})
        unknown = [p for p in params if p not in self.params]
        if unknown:
            raise ConfigError(
                f"kind {self.name!r} has no param(s) {', '.join(unknown)}; it takes {', '.join(self.params) or 'none'}"
            )
        full = {**self.params, **params}
        b = self._builder(dims, full, budget or active_budget(), share)
        with paused_gc():
            outputs = self.build(b, dict(dims), full)
        for out_name, t in outputs.items():
            b.output(out_name, t)
        return b.graph

    def _builder(self, dims: Mapping[str, int], params: Mapping[str, Any], budget: BuildBudget | None, share: bool) -> Builder:
        if budget is None:
            return Builder(share)
        b = BudgetedBuilder(budget, f"{self.name} ({', '.join(f'{d}={dims[d]}' for d in self.dims)})", share)
        if self.min_nodes is not None:
            at_least = self.min_nodes(dims, params)
            if at_least > budget.max_nodes:
                raise budget.refuse_nodes(at_least, b.label)
        return b
