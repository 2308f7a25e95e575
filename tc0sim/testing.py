"""Depth assertions for users' tests, and the pytest plugin that exposes them (docs/dag.md, docs/cli.md).

``assert_depth_at_most(model, "6 d_std + 6 d_sum + d_exp")`` passes when every Pareto-maximal
critical vector is ≤ the claim componentwise — the claim then bounds the depth for every
non-negative value of the symbols. ``assert_depth_equals`` passes when the critical depth is
exactly the one vector claimed. A failure is an AssertionError that prints the offending critical
vector and its witness path grouped by operator (with the paper reference of each operator).

``model`` may be a Graph, a ModelSpec, the path of a model file, a ``(kind, dims, params)``
tuple, or a traced module: ``(module, example_inputs[, dims])`` with a ``torch.nn.Module``
(``tc0sim.trace``, docs/torch.md). The plugin (entry point ``tc0sim`` in the ``pytest11`` group) provides the fixtures
``tc0sim_build`` and ``tc0sim_depth`` and a report-header line.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tc0sim.interp.depth import DepthResult
    from tc0sim.ir.graph import Graph
    from tc0sim.ir.vectors import Vec

ModelLike = Any
"""A Graph, a ModelSpec, a model-file path (str or Path), a (kind, dims[, params]) tuple or a
(torch.nn.Module, example_inputs[, dims]) tuple."""


def as_graph(model: ModelLike, n: int | None = None) -> Graph:
    """The Graph a test means by ``model`` (see the module docstring)."""
    from tc0sim.ir.graph import Graph
    from tc0sim.kinds import build
    from tc0sim.modelfile import ModelSpec, load_model

    if isinstance(model, Graph):
        return model
    if isinstance(model, ModelSpec):
        return model.build(n)
    if isinstance(model, (str, os.PathLike)):
        return load_model(Path(model)).build(n)
    if isinstance(model, tuple) and len(model) in (2, 3) and isinstance(model[0], str):
        kind, dims = model[0], model[1]
        params = model[2] if len(model) == 3 else None
        return build(kind, dims, params)
    if isinstance(model, tuple) and len(model) in (2, 3) and _is_module(model[0]):
        from tc0sim.frontends.torch import trace

        return trace(*model)
    raise TypeError(
        "expected a Graph, a ModelSpec, a model-file path, a (kind, dims, params) tuple or a "
        f"(torch.nn.Module, example_inputs[, dims]) tuple, got {model!r}"
    )


def _is_module(obj: Any) -> bool:
    """A torch.nn.Module (PyTorch already imported: a module object means it is)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(obj, torch.nn.Module)


def describe_path(result: DepthResult, v: Vec) -> str:
    """The witness path of ``v``, one line per operator: scope, paper reference, depth, gates."""
    from tc0sim.interp.paths import group_path
    from tc0sim.ir.vectors import fmt

    lines = [
        f"    {g.operator}{f' [{g.ref}]' if g.ref else ''}: {fmt(g.depth)}  ({' -> '.join(g.gates)})"
        for g in group_path(result.witness(v))
        if g.gates
    ]
    return "\n".join(lines) if lines else "    (the path has no gates)"


def _report(result: DepthResult, claim: Vec, vectors: list[Vec], what: str) -> str:
    from tc0sim.ir.vectors import fmt

    parts = [f"{what}; claimed {fmt(claim)}; critical depth {', '.join(fmt(v) for v in result.critical) or '0'}"]
    for v in vectors:
        parts.append(f"  critical vector {fmt(v)}, witness path by operator:")
        parts.append(describe_path(result, v))
    return "\n".join(parts)


def assert_depth_at_most(model: ModelLike, claim: Vec | Mapping[str, int] | str, n: int | None = None) -> DepthResult:
    """Assert every critical vector of ``model`` is ≤ ``claim`` (e.g. "6 d_std + 6 d_sum + d_exp")."""
    from tc0sim.interp.depth import depth
    from tc0sim.ir.vectors import as_vec, leq

    bound = as_vec(claim)
    result = depth(as_graph(model, n))
    violating = [v for v in result.critical if not leq(v, bound)]
    if violating:
        raise AssertionError(_report(result, bound, violating, "depth exceeds the claim"))
    return result


def assert_depth_equals(model: ModelLike, claim: Vec | Mapping[str, int] | str, n: int | None = None) -> DepthResult:
    """Assert the critical depth of ``model`` is exactly the single vector ``claim``."""
    from tc0sim.interp.depth import depth
    from tc0sim.ir.vectors import as_vec

    expected = as_vec(claim)
    result = depth(as_graph(model, n))
    if result.critical != [expected]:
        different = [v for v in result.critical if v != expected] or list(result.critical)
        raise AssertionError(_report(result, expected, different, "depth differs from the claim"))
    return result


@pytest.fixture
def tc0sim_build() -> Callable[..., Graph]:
    """``tc0sim_build(kind, dims, params=None)`` or ``tc0sim_build(path_or_spec, n=None)`` -> Graph."""

    def build_graph(model: ModelLike, dims: Mapping[str, int] | None = None, params: Mapping[str, Any] | None = None, n: int | None = None) -> Graph:
        if dims is not None:
            return as_graph((model, dict(dims), dict(params or {})))
        return as_graph(model, n)

    return build_graph


@pytest.fixture
def tc0sim_depth() -> Callable[..., DepthResult]:
    """``tc0sim_depth(model)`` -> DepthResult of a Graph, ModelSpec, model path or (kind, dims, params)."""

    def depth_of(model: ModelLike, n: int | None = None) -> DepthResult:
        from tc0sim.interp.depth import depth

        return depth(as_graph(model, n))

    return depth_of


def pytest_report_header(config: pytest.Config) -> str:
    """Say in the session header that the tc0sim plugin is active."""
    from tc0sim import __version__

    return f"tc0sim {__version__}: assert_depth_at_most / assert_depth_equals, fixtures tc0sim_build, tc0sim_depth"


__all__ = ["assert_depth_at_most", "assert_depth_equals", "as_graph", "describe_path"]
