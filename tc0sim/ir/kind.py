"""A buildable kind: an operator of docs/operators.md or a model of docs/models.md, as a record the registry lists.

An operator or model module defines its kinds as ``KINDS = (Kind(...), ...)`` and its package
lists them (``tc0sim.ops.OPERATORS``, ``tc0sim.models.MODELS``); the registry ``tc0sim.kinds``
collects both lists. A kind declares its integer dims and its params as a schema (``Param``
records and cross-parameter ``rules``, ``tc0sim.ir.params``), builds its own inputs with
``b.input(name, shape, role)`` and returns its outputs by name. Every build validates the params
against the schema, then checks the kind's ``estimate`` against the build budget, before building.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tc0sim.errors import BudgetError, ConfigError
from tc0sim.ir.budget import NODE_BYTES, BudgetedBuilder, BuildBudget, active_budget
from tc0sim.ir.dag import paused_gc
from tc0sim.ir.graph import Builder, Graph, Tensor
from tc0sim.ir.params import Param, Rule, inferred, short, validate

BuildFn = Callable[[Builder, dict[str, int], dict[str, Any]], dict[str, Tensor]]
EstimateFn = Callable[[Mapping[str, int], Mapping[str, Any]], "tuple[int, int]"]
"""Lower bounds (tensor nodes, estimated bytes) of a kind's graph from its dims and validated params."""


@dataclass(frozen=True)
class Kind:
    """A buildable kind: required ``dims``, the ``params`` schema, and its build function.

    ``params`` may be given as a mapping of defaults (a kind without a schema: ``inferred``)."""

    name: str
    dims: tuple[str, ...]
    build: BuildFn
    ref: str
    params: tuple[Param, ...] = ()
    model: bool = False
    doc: str = ""
    parameters: Callable[[Graph], dict[str, Any]] | None = None
    """Optional: the weight scalars the circuit reads, grouped (``tc0sim size`` reports it)."""
    ignored_weights: tuple[str, ...] = ()
    """Optional: fnmatch patterns of checkpoint tensors the circuit does not read (``eval --weights``)."""
    rules: tuple[Rule, ...] = ()
    """Cross-parameter rules on the validated params (``validate``), each a message or None."""
    estimate: EstimateFn | None = None
    """Lower bounds (nodes, bytes) of the graph from dims and validated params, checked against the
    build budget before building (for kinds whose size grows with a param, e.g. ``layers``)."""
    open_dims: bool = False
    """The kind takes whatever dims its model file names (the ``torch`` front end: input shapes use them)."""
    locate: Callable[[Mapping[str, Any], Path], dict[str, Any]] | None = None
    """Optional: the params with file names made absolute, relative to the model file's directory."""

    def __post_init__(self) -> None:
        if isinstance(self.params, Mapping):
            object.__setattr__(self, "params", inferred(self.params))

    @property
    def defaults(self) -> dict[str, Any]:
        """Every param's default, by name."""
        return {p.name: p.default for p in self.params}

    def validate(self, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The params checked against the schema, defaults filled in (``tc0sim.ir.params.validate``)."""
        return validate(self, params)

    def graph(
        self,
        dims: Mapping[str, int],
        params: Mapping[str, Any] | None = None,
        budget: BuildBudget | None = None,
        share: bool = False,
    ) -> Graph:
        """Build the Graph; missing/extra dims and params the schema refuses are ConfigErrors.

        With a ``budget`` (default: the active ``budget_scope``'s, if any) the build is refused
        (BudgetError) as soon as the graph would exceed it, and before anything is built when
        the kind's ``estimate`` already does. With ``share`` the sub-circuits a model builds with
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
        given = dict(params or {})
        full = validate(self, given)
        b = self._builder(dims, full, given, budget or active_budget(), share)
        with paused_gc():
            outputs = self.build(b, dict(dims), full)
        for out_name, t in outputs.items():
            b.output(out_name, t)
        return b.graph

    def _builder(
        self, dims: Mapping[str, int], params: dict[str, Any], given: dict[str, Any], budget: BuildBudget | None, share: bool
    ) -> Builder:
        if budget is None:
            return Builder(share)
        b = BudgetedBuilder(budget, f"{self.name} ({', '.join(f'{d}={dims[d]}' for d in self.dims)})", share)
        if self.estimate is not None and not self._fits(dims, params, budget):
            raise self._refusal(dims, params, given, budget, b.label)
        return b

    def _fits(self, dims: Mapping[str, int], params: Mapping[str, Any], budget: BuildBudget) -> bool:
        assert self.estimate is not None
        nodes, size = self.estimate(dims, params)
        return nodes <= budget.max_nodes and max(size, nodes * NODE_BYTES) <= budget.max_bytes

    def _refusal(
        self, dims: Mapping[str, int], params: dict[str, Any], given: dict[str, Any], budget: BuildBudget, label: str
    ) -> BudgetError:
        """The estimate's refusal, naming every given param that alone takes it past the budget
        (the estimate fits with that param at its default)."""
        assert self.estimate is not None
        nodes, size = self.estimate(dims, params)
        size = max(size, nodes * NODE_BYTES)
        if nodes > budget.max_nodes:
            what = f"has more than {budget.max_nodes:,} tensor nodes ({_amount(nodes)}), above the build budget; raise it with --max-nodes"
        else:
            what = f"needs {_amount(size)} bytes, above the build budget of {budget.max_bytes:,} bytes; raise it with --max-memory"
        error = BudgetError(f"{label} {what}")
        blamed = [name for name in given if self._fits_with_default(dims, given, name, budget)]
        if not blamed:
            return error
        said = ", ".join(f"{name!r} = {short(given[name])}" for name in blamed)
        return BudgetError(f"param{'s' if len(blamed) > 1 else ''} {said}: {error}")

    def _fits_with_default(self, dims: Mapping[str, int], given: dict[str, Any], name: str, budget: BuildBudget) -> bool:
        try:
            return self._fits(dims, validate(self, {**given, name: self.defaults[name]}), budget)
        except ConfigError:
            return False


def _amount(count: int) -> str:
    """'at least 1,234' or, beyond 10^15, 'more than 10^k'."""
    return f"at least {count:,}" if count < 10**15 else f"more than 10^{int((count.bit_length() - 1) * 0.30103)}"
