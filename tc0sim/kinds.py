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
from tc0sim.ir.kind import BuildFn, Kind, Param
from tc0sim.models import MODELS
from tc0sim.ops import OPERATORS

__all__ = ["BuildFn", "KINDS", "Kind", "Param", "build", "describe", "get_kind", "kind_names", "params_markdown", "register"]

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


def describe() -> list[dict[str, Any]]:
    """Every kind as plain data, sorted by name: name, model or operator, dims, doc, reference and
    its params (name, type, default, rule, doc), read from the schema (``tc0sim kinds``, the docs)."""
    return [
        {
            "name": kind.name,
            "model": kind.model,
            "dims": list(kind.dims),
            "doc": kind.doc,
            "ref": kind.ref,
            "params": [p.describe() for p in kind.params],
        }
        for kind in (KINDS[name] for name in kind_names())
    ]


def params_markdown() -> str:
    """The markdown table of every param of every kind, read from the schema (docs/model_files.md)."""
    lines = ["| kind | param | default | rule | meaning |", "|---|---|---|---|---|"]
    for kind in describe():
        for p in kind["params"]:
            cells = (f"`{kind['name']}`", f"`{p['name']}`", "null" if p["default"] is None else f"`{p['default']}`",
                     p["rule"], p["doc"])
            lines.append("| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines)
