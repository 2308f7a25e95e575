"""Stage 3: the driver — walk the exported graph in order, fold what is constant, lower the rest.

Placeholders become circuit inputs: forward's tensor arguments under their names (role
``input``), floating parameters and buffers under their state_dict names (role ``weight``, the
module's own values as the graph's defaults); integer buffers and lifted constants are folded.
Every node is built inside the scope of its module path (``nn_module_stack``), so reports group
by module. Before anything is built, every op without a lowering is listed at once.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch.export.graph_signature import InputKind, OutputKind
from torch.fx import Node
from torch.fx.node import map_arg

from tc0sim.errors import ConfigError, GraphError
from tc0sim.frontends.torch import fold
from tc0sim.frontends.torch.aten import LOWERINGS
from tc0sim.frontends.torch.export import export_program, named_inputs
from tc0sim.frontends.torch.values import Lazy, Lowering, Masked, module_path, module_type, to_numpy
from tc0sim.ir.graph import Builder, Graph, Tensor

SHOWN_PATHS = 3
"""How many module paths an unsupported-op report names per op."""


def trace(module: torch.nn.Module, example_inputs: Sequence[Any] | Mapping[str, Any],
          dims: Mapping[str, Mapping[int, str]] | None = None, builder: Builder | None = None) -> Graph:
    """Export ``module`` on ``example_inputs`` and lower it (``tc0sim.frontends.torch.trace``)."""
    inputs = named_inputs(module, example_inputs)
    return lower(export_program(module, inputs, dims), inputs, builder)


def _weight_value(program: torch.export.ExportedProgram, target: str) -> torch.Tensor:
    found = program.state_dict.get(target)
    return program.constants[target] if found is None else found


def _named_leaves(example: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """forward's inputs flattened as torch.export does, each under its argument's own name
    (``cond_BD``, not the placeholder's lower-cased one); a nested argument's leaves as name_0, name_1, …"""
    out = []
    for key, value in example.items():
        leaves = torch.utils._pytree.tree_leaves(value)
        out += [(key if len(leaves) == 1 else f"{key}_{i}", leaf) for i, leaf in enumerate(leaves)]
    return out


def _check_supported(nodes: list[Node], constant: set[Node]) -> None:
    """One ConfigError listing every op that reads circuit values and has no lowering, and every random op."""
    missing: Counter = Counter()
    random: Counter = Counter()
    where: dict[Any, list[str]] = {}
    for node in nodes:
        if node.op == "call_function" and node not in constant and node.target is not operator.getitem:
            table = random if node.target in fold.RANDOM else missing if node.target not in LOWERINGS else None
            if table is not None:
                table[node.target] += 1
                path = module_path(node.meta.get("nn_module_stack") or {}) or "(top)"
                if path not in where.setdefault(node.target, []):
                    where[node.target].append(path)
        elif node.op not in ("placeholder", "output", "call_function"):
            missing[f"{node.op} {node.target}"] += 1

    def listed(table: Counter) -> str:
        return ", ".join(
            f"{op} ×{n} in {', '.join(where.get(op, ['(top)'])[:SHOWN_PATHS])}{', …' if len(where.get(op, [])) > SHOWN_PATHS else ''}"
            for op, n in sorted(table.items(), key=lambda item: str(item[0]))
        )

    parts = []
    if missing:
        parts.append(f"{len(missing)} ATen op(s) have no lowering: {listed(missing)}")
    if random:
        parts.append(f"random ops are not lowered (pass the random numbers as inputs of forward): {listed(random)}")
    if parts:
        raise ConfigError("cannot lower the traced module: " + "; ".join(parts) + " (docs/torch.md)")


def lower(program: torch.export.ExportedProgram, example: Mapping[str, Any], builder: Builder | None = None) -> Graph:
    """The circuit of an exported program (core ATen), the user inputs shaped as in ``example``."""
    b = builder or Builder()
    for name, t in lower_into(program, example, b).items():
        b.output(name, t)
    return b.graph


def lower_into(program: torch.export.ExportedProgram, example: Mapping[str, Any], b: Builder) -> dict[str, Tensor]:
    """Build the program's nodes with ``b``; its outputs by name (``out``, or ``out0``, ``out1``, …)."""
    graph = program.graph_module.graph
    nodes = list(graph.nodes)
    env: dict[Node, Any] = {}
    constant_inputs: set[Node] = set()
    leaves = iter(_named_leaves(example))
    placeholders = [n for n in nodes if n.op == "placeholder"]
    for node, spec in zip(placeholders, program.graph_signature.input_specs):
        if spec.kind == InputKind.USER_INPUT:
            name, value = next(leaves)
            if isinstance(value, torch.Tensor):
                env[node] = b.input(name, tuple(value.shape))
                if not value.is_floating_point() and value.device.type != "meta":
                    b.graph.defaults[name] = to_numpy(value)
                continue
        elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
            value = _weight_value(program, spec.target)
            if value.is_floating_point() and not (spec.kind == InputKind.BUFFER and fold.folded_buffer(spec, value)):
                env[node] = b.input(spec.target, tuple(value.shape), role="weight")
                if value.device.type != "meta":  # a module on the meta device has shapes only
                    b.graph.defaults[spec.target] = to_numpy(value)
                continue
            if value.device.type != "meta":  # folded: a checkpoint holding it must hold these values
                b.graph.folded[spec.target] = to_numpy(value)
        elif spec.kind in (InputKind.CONSTANT_TENSOR, InputKind.CUSTOM_OBJ):  # a generator: its random ops are reported
            value = program.constants[spec.target]
        else:
            raise ConfigError(f"cannot lower the traced module: input {node.name} of kind {spec.kind.name}")
        env[node] = value
        constant_inputs.add(node)
    constant = fold.constant_nodes(nodes, constant_inputs)
    _check_supported(nodes, constant)
    lw = Lowering(b)
    outputs: dict[str, Tensor] = {}
    for node in nodes:
        if node.op == "call_function":
            env[node] = fold.run(node, env.__getitem__) if node in constant else _lower_node(lw, node, env)
        elif node.op == "output":
            outputs = _outputs(lw, node, program, env)
    return outputs


def _lower_node(lw: Lowering, node: Node, env: dict[Node, Any]) -> Any:
    args = map_arg(node.args, env.__getitem__)
    kwargs = map_arg(node.kwargs, env.__getitem__)
    if node.target is operator.getitem:
        container, i = args
        return container.parts[i]() if isinstance(container, Lazy) else container[i]
    lw.node = node
    stack = node.meta.get("nn_module_stack") or {}
    path = module_path(stack)
    with lw.b.scope(path, module_type(stack)) if path else nullcontext():
        try:
            return LOWERINGS[node.target](lw, *args, **kwargs)
        except GraphError as e:
            message = str(e)
            raise GraphError(message if message.startswith(str(node.target)) else f"{lw.where()}: {message}") from None


def _outputs(lw: Lowering, node: Node, program: torch.export.ExportedProgram, env: dict[Node, Any]) -> dict[str, Tensor]:
    specs = program.graph_signature.output_specs
    values = [v for v, spec in zip(node.args[0], specs) if spec.kind == OutputKind.USER_OUTPUT]
    out = {}
    for i, value in enumerate(values):
        value = env[value] if isinstance(value, Node) else value
        if not isinstance(value, (Tensor, Masked, torch.Tensor)):
            raise ConfigError(f"output {i} of forward is {type(value).__name__} {str(value)[:40]!r}, not a tensor")
        if isinstance(value, Masked):
            raise GraphError(f"output {i} holds −∞ scores, which F_p cannot represent")
        out["out" if len(values) == 1 else f"out{i}"] = lw.tensor(value)
    return out
