"""The package's import graph: no cycle, and imports only point down the layers.

The layers, lowest first (a module may import its own layer and the layers below it):

1. numbers: ``tc0sim`` (the package root), ``errors``, ``limits``, ``fp``, ``fastfp``, ``fastfp_dd``, ``ddarith``, ``ddjit``, ``ddjit_erf``, ``ddsum``, ``expr``, ``linear``,
   ``polyfit``, ``threshold`` (gate-level threshold circuits of the F_p primitives)
2. ir: ``tc0sim.ir`` (primitives, shapes, moves, rule tables, vectors, graph, kinds' record)
3. ops: ``tc0sim.ops`` (operators lowered onto the IR), ``tc0sim.frontends`` (circuits traced from
   other frameworks, e.g. torch.export programs, lowered onto the IR and the operators)
4. models: ``tc0sim.models`` (models built from operators)
5. catalogue: ``tc0sim.kinds`` (the registry of operators and models), ``tc0sim.modelfile``, ``tc0sim.npzfile``,
   ``tc0sim.io`` (.npz inputs and checkpoints bound to a graph)
6. interp: ``tc0sim.interp`` (depth, size, evaluate, expand, export), ``tc0sim.engines`` (the
   evaluation engines and their plan), ``tc0sim.approx`` (the universal-approximation
   quantities, read from evaluations)
7. audit: ``tc0sim.audit`` (claims and their verdicts)
8. reports: ``tc0sim.reports`` (one report per command: ``sections()`` and ``as_dict()``)
9. cli: ``tc0sim.cli``, ``tc0sim.__main__``, ``tc0sim.testing`` (the pytest plugin)

Every import statement counts, also those inside functions or under ``TYPE_CHECKING``: a lazy
import is still a dependency. A new module or subpackage must be given a layer here.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "tc0sim"

LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("numbers", ("tc0sim", "tc0sim.errors", "tc0sim.limits", "tc0sim.fp", "tc0sim.fastfp", "tc0sim.fastfp_dd", "tc0sim.ddarith", "tc0sim.ddjit", "tc0sim.ddjit_erf", "tc0sim.ddsum",
                 "tc0sim.expr", "tc0sim.linear", "tc0sim.polyfit", "tc0sim.threshold")),
    ("ir", ("tc0sim.ir",)),
    ("ops", ("tc0sim.ops", "tc0sim.frontends")),
    ("models", ("tc0sim.models",)),
    ("catalogue", ("tc0sim.kinds", "tc0sim.modelfile", "tc0sim.npzfile", "tc0sim.io")),
    ("interp", ("tc0sim.interp", "tc0sim.engines", "tc0sim.approx")),
    ("audit", ("tc0sim.audit",)),
    ("reports", ("tc0sim.reports",)),
    ("cli", ("tc0sim.cli", "tc0sim.__main__", "tc0sim.testing")),
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def layer_of(module: str) -> int:
    """The index of the module's layer: the longest prefix listed in LAYERS."""
    best, index = -1, None
    for i, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or (prefix != "tc0sim" and module.startswith(prefix + "."))) and len(prefix) > best:
                best, index = len(prefix), i
    if index is None:
        raise AssertionError(f"module {module} has no layer: add it to LAYERS in tests/test_layering.py")
    return index


def resolve(importer: str, node: ast.ImportFrom) -> list[str]:
    """The tc0sim modules a ``from X import a, b`` names (a submodule if a or b is one, else X)."""
    if node.level:
        is_package = MODULES[importer].name == "__init__.py"
        base = importer.split(".")[: len(importer.split(".")) - node.level + (1 if is_package else 0)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    submodules = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES]
    rest = [a for a in node.names if f"{target}.{a.name}" not in MODULES]
    return submodules + ([target] if rest and target in MODULES else [])


def imports_of(module: str) -> set[str]:
    """Every tc0sim module that ``module`` imports, anywhere in its text."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name in MODULES)
        elif isinstance(node, ast.ImportFrom):
            found.update(resolve(module, node))
    return found - {module}


GRAPH = nx.DiGraph((m, target) for m in MODULES for target in imports_of(m))
GRAPH.add_nodes_from(MODULES)


def test_the_graph_is_read_from_the_real_imports():
    """The reader finds known edges, so the other tests are not vacuous."""
    assert GRAPH.has_edge("tc0sim.interp.depth.analysis", "tc0sim.ir.dag")
    assert GRAPH.has_edge("tc0sim.kinds", "tc0sim.ops")
    assert GRAPH.has_edge("tc0sim.cli.eval_cmd", "tc0sim.fp")
    assert GRAPH.number_of_edges() > 100


def test_every_module_has_a_layer():
    for module in MODULES:
        layer_of(module)


def test_no_import_cycle():
    cycles = list(nx.simple_cycles(GRAPH))
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c + [c[0]]) for c in cycles[:5])


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    upward = [t for t in sorted(GRAPH.successors(module)) if layer_of(t) > layer_of(module)]
    assert not upward, f"{module} ({LAYERS[layer_of(module)][0]}) imports higher layers: " + ", ".join(
        f"{t} ({LAYERS[layer_of(t)][0]})" for t in upward
    )


def test_no_module_outside_the_cli_imports_it():
    """The command line is a thin layer over the library: nothing below it imports ``tc0sim.cli``."""
    outside = [m for m in MODULES if not m.startswith("tc0sim.cli") and m != "tc0sim.__main__"]
    importers = sorted(m for m in outside if any(t.startswith("tc0sim.cli") for t in GRAPH.successors(m)))
    assert not importers, f"modules importing tc0sim.cli: {importers}"


def test_the_cli_main_module_is_short():
    """The group, its shared options and error handling; every command has a module of its own (issue 28)."""
    assert len(MODULES["tc0sim.cli.main"].read_text(encoding="utf-8").splitlines()) <= 400


def test_ir_and_fp_import_nothing_above_them():
    above = ("tc0sim.interp", "tc0sim.ops", "tc0sim.models", "tc0sim.audit", "tc0sim.cli", "tc0sim.kinds", "tc0sim.modelfile")
    for module in MODULES:
        if module == "tc0sim.fp" or module.startswith(("tc0sim.fp.", "tc0sim.ir")):
            reached = nx.descendants(GRAPH, module)
            bad = sorted(t for t in reached if t.startswith(above))
            assert not bad, f"{module} reaches {bad}"


def model_of(module: str) -> str:
    """The model a module belongs to: ``tc0sim.models.X`` for X's module or any module of X's package."""
    return ".".join(module.split(".")[:3])


def test_models_share_helpers_through_common_not_a_sibling_model():
    allowed = {("tc0sim.models.fast_flowar", "tc0sim.models.flowar")}  # fast FlowAR is FlowAR with AAttC
    helpers = {"tc0sim.models.common", "tc0sim.models.vae_decoder"}  # shared building blocks, not models
    for module in MODULES:
        if module.startswith("tc0sim.models.") and model_of(module) not in helpers:
            model = model_of(module)
            siblings = {model_of(t) for t in GRAPH.successors(module)
                        if t.startswith("tc0sim.models.") and model_of(t) not in helpers and model_of(t) != model}
            assert {(model, s) for s in siblings} <= allowed, (module, siblings)
