"""The registry of buildable kinds: the operators of docs/operators.md and the models of docs/models.md.

The kinds are collected explicitly from the two lists ``tc0sim.ops.OPERATORS`` and
``tc0sim.models.MODELS`` (no registration by import side effect); ``build(kind, dims, params)``
returns the Graph. ``register`` adds a kind at run time (tests use it for throw-away kinds).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tc0sim.errors import ConfigError
from tc0sim.frontends import FRONTENDS
from tc0sim.ir.budget import BuildBudget
from tc0sim.ir.graph import Graph
from tc0sim.ir.kind import BuildFn, Kind
from tc0sim.models import MODELS
from tc0sim.ops import OPERATORS

__all__ = ["BuildFn", "KINDS", "Kind", "build", "get_kind", "kind_names", "register"]

KINDS: dict[str, Kind] = {}


def register(kind: Kind) -> Kind:
    """Add ``kind`` to the registry; a name is registered once."""
    if kind.name in KINDS:
        raise ValueError(f"kind {kind.name!r} registered twice")
    KINDS[kind.name] = kind
    return kind


for _kind in (*OPERATORS, *MODELS, *FRONTENDS):
    register(_kind)


def kind_names() -> list[str]:
    """Every registered kind, operators and models, sorted."""
    return sorted(KINDS)


def get_kind(name: str) -> Kind:
    """The kind called ``name``; an unknown name is a ConfigError listing the kinds."""
    if name not in KINDS:
        raise ConfigError(f"unknown kind {name!r}; expected one of {', '.join(sorted(KINDS))}")
    return KINDS[name]


def build(
    name: str,
    dims: Mapping[str, int],
    params: Mapping[str, Any] | None = None,
    budget: BuildBudget | None = None,
    share: bool = False,
) -> Graph:
    """Build the Graph of kind ``name``; missing/extra dims and unknown params are ConfigErrors.

    ``budget`` (default: the active ``budget_scope``'s, if any) bounds the graph; ``share`` builds
    repeated sub-circuits once (``Kind.graph``).
    """
    return get_kind(name).graph(dims, params, budget, share)
