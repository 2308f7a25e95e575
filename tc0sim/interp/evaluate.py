"""The evaluate interpreter: bit-exact p-bit evaluation of a DAG (docs/semantics.md, docs/dag.md).

Inputs and constants are rounded to p bits on entry; every compute node applies one F_p array
operation, so every primitive rounds exactly once. Arithmetic errors are re-raised with the node
name and its operator scope.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from tc0sim.errors import ConfigError
from tc0sim.fp import Format, FpArithmeticError
from tc0sim.ir.graph import Graph, Node
from tc0sim.ir.primitives import Primitive
from tc0sim.ir.rules import RuleTable
from tc0sim.ir.wiring import move

Rule = Callable[[Format, Node, list[np.ndarray]], np.ndarray]


def _map(name: str) -> Rule:
    return lambda F, node, args: F.map(name, *args)


def _reduce(name: str) -> Rule:
    return lambda F, node, args: F.reduce(name, args[0], node.attrs["axes"])


def _move(F: Format, node: Node, args: list[np.ndarray]) -> np.ndarray:
    return move(node, args, lambda: F.zero)


def _constant(F: Format, node: Node, args: list[np.ndarray]) -> np.ndarray:
    return F.asarray(node.attrs["value"])


def _derive(row: Primitive) -> Rule | None:
    """A primitive with an F_p kernel applies it (elementwise or per reduced row); wiring moves."""
    if row.kernel is not None:
        return _reduce(row.kernel) if row.role == "reduction" else _map(row.kernel)
    return _move if row.move is not None else None


EVAL_RULES: RuleTable[Rule] = RuleTable("evaluate", _derive)
EVAL_RULES["constant"] = _constant
"""One rule per primitive; ``input`` is handled by the evaluator itself (it reads the inputs)."""


def random_inputs(graph: Graph, seed: int = 0, scale: float = 1.0) -> dict[str, np.ndarray]:
    """Draw every input as normal(0, 1)·scale in float64, one stream per (seed, input name)."""
    out = {}
    for name, nid in graph.inputs.items():
        rng = np.random.default_rng([int(seed), zlib.crc32(name.encode())])
        out[name] = rng.standard_normal(graph.node(nid).shape) * float(scale)
    return out


def _entry(F: Format, node: Node, value: Any) -> np.ndarray:
    arr = np.asarray(value, dtype=object) if not isinstance(value, np.ndarray) else value
    if arr.shape != node.shape:
        raise ConfigError(f"input {node.name!r} has shape {arr.shape}, expected {node.shape}")
    try:
        return F.asarray(arr)
    except FpArithmeticError as e:
        raise type(e)(f"input {node.name!r}: {e}") from None


def evaluate(
    graph: Graph,
    p: int,
    inputs: Mapping[str, Any] | None = None,
    seed: int = 0,
    scale: float = 1.0,
) -> dict[str, np.ndarray]:
    """Evaluate every output at precision p; returns object arrays of F_p values (mpfr)."""
    F = Format(p)
    given = dict(inputs or {})
    unknown = sorted(set(given) - set(graph.inputs))
    if unknown:
        raise ConfigError(f"unknown input(s) {', '.join(unknown)}; the graph takes {', '.join(graph.inputs)}")
    missing = [name for name in graph.inputs if name not in given]
    if missing:
        drawn = random_inputs(graph, seed, scale)
        given.update({name: drawn[name] for name in missing})
    live = graph.live()
    last_use: dict[int, int] = {}
    for node in live:
        for i in node.inputs:
            last_use[i] = node.id
    keep = set(graph.outputs.values())
    values: dict[int, np.ndarray] = {}
    for node in live:
        if node.prim == "input":
            values[node.id] = _entry(F, node, given[node.name])
            continue
        rule = EVAL_RULES.rule(node.prim)
        args = [values[i] for i in node.inputs]
        try:
            values[node.id] = rule(F, node, args)
        except FpArithmeticError as e:
            raise type(e)(f"node {node.name} in operator {node.scope_path or '(top)'}: {e}") from None
        for i in set(node.inputs):
            if last_use.get(i) == node.id and i not in keep:
                del values[i]
    return {name: values[nid] for name, nid in graph.outputs.items()}
