"""A buildable kind: an operator of SPEC §3 or a model of §4, as a record the registry lists.

An operator or model module defines its kinds as ``KINDS = (Kind(...), ...)`` and its package
lists them (``tc0sim.ops.OPERATORS``, ``tc0sim.models.MODELS``); the registry ``tc0sim.kinds``
collects both lists. A kind declares its integer dims and its params (with defaults), builds its
own inputs with ``b.input(name, shape, role)`` and returns its outputs by name.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tc0sim.errors import ConfigError
from tc0sim.ir.graph import Builder, Graph, Tensor

BuildFn = Callable[[Builder, dict[str, int], dict[str, Any]], dict[str, Tensor]]


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

    def graph(self, dims: Mapping[str, int], params: Mapping[str, Any] | None = None) -> Graph:
        """Build the Graph; missing/extra dims and unknown params are ConfigErrors."""
        missing = [d for d in self.dims if d not in dims]
        extra = [d for d in dims if d not in self.dims]
        if missing or extra:
            raise ConfigError(
                f"kind {self.name!r} takes dims {{{', '.join(self.dims)}}}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(extra)}" if extra else "")
            )
        for d in self.dims:
            v = dims[d]
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ConfigError(f"dim {d} of {self.name!r} must be a positive integer, got {v!r}")
        params = dict(params or {})
        unknown = [p for p in params if p not in self.params]
        if unknown:
            raise ConfigError(
                f"kind {self.name!r} has no param(s) {', '.join(unknown)}; it takes {', '.join(self.params) or 'none'}"
            )
        b = Builder()
        outputs = self.build(b, dict(dims), {**self.params, **params})
        for out_name, t in outputs.items():
            b.output(out_name, t)
        return b.graph
