"""Stage 3: the driver — walk the exported graph in order, fold what is constant, lower the rest.

Placeholders become circuit inputs: forward's tensor arguments under their names (role
``input``), floating parameters and buffers under their state_dict names (role ``weight``, the
module's own values as the graph's defaults); integer buffers and lifted constants are folded.
Every node is built inside the scope of its module path (``nn_module_stack``), so reports group
by module. Before anything is built, every op without a lowering is listed at once.

A call of a repeated block (``blocks.py``) is lowered by replaying its body's program: the body's
arguments are the call's values, its weights the instance's (state_dict name = instance path +
the body's name), its module paths prefixed by the instance's path — the nodes the plain export
would give. When a body holds an op that cannot be lowered, the module is exported again the
plain way, so the report is the plain one.
"""

from __future__ import annotations

import operator
from collections import Counter
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from typing import Any

import torch
from torch.export.graph_signature import InputKind, OutputKind, TensorArgument
from torch.fx import Node
from torch.fx.node import map_arg

from tc0sim.errors import ConfigError, GraphError
from tc0sim.frontends.torch import blocks as rep, fold
from tc0sim.frontends.torch.aten import LOWERINGS
from tc0sim.frontends.torch.export import Program, export_program, named_inputs
from tc0sim.frontends.torch.values import Lazy, Lowering, Masked, module_path, module_type, to_numpy
from tc0sim.ir.dag import paused_gc
from tc0sim.ir.graph import Builder, Graph, Tensor

SHOWN_PATHS = 3
"""How many module paths an unsupported-op report names per op."""


def trace(module: torch.nn.Module, example_inputs: Sequence[Any] | Mapping[str, Any],
          dims: Mapping[str, Mapping[int, str]] | None = None, builder: Builder | None = None,
          repeat: bool = True) -> Graph:
    """Export ``module`` on ``example_inputs`` and lower it (``tc0sim.frontends.torch.trace``);
    ``repeat=False`` exports every block (no repeated-block export, ``blocks.py``)."""
    inputs = named_inputs(module, example_inputs)
    with paused_gc():  # torch.export and the build allocate many objects; a collection walks them all
        return lower(export_program(module, inputs, dims, repeat=repeat), inputs, builder)


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


def _is_weight(program: torch.export.ExportedProgram, spec: Any) -> bool:
    """A parameter or buffer that becomes a weight input (floating, and not a buffer folded as
    structure: ``fold.folded_buffer``); any other state is folded. The one rule for the outer
    program and for every body of a repeated block."""
    if spec.kind not in (InputKind.PARAMETER, InputKind.BUFFER):
        return False
    value = _weight_value(program, spec.target)
    return value.is_floating_point() and not (spec.kind == InputKind.BUFFER and fold.folded_buffer(spec, value))


def _problems(nodes: list[Node], constant: set[Node], prefix: str = "") -> tuple[Counter, Counter, dict[Any, list[str]]]:
    """The ops that read circuit values and have no lowering, the random ops, and their module paths."""
    missing: Counter = Counter()
    random: Counter = Counter()
    where: dict[Any, list[str]] = {}
    block_op = rep.block_op()
    for node in nodes:
        if node.op == "call_function" and node not in constant and node.target not in (operator.getitem, block_op):
            table = random if node.target in fold.RANDOM else missing if node.target not in LOWERINGS else None
            if table is not None:
                table[node.target] += 1
                path = _joined(prefix, module_path(node.meta.get("nn_module_stack") or {})) or "(top)"
                if path not in where.setdefault(node.target, []):
                    where[node.target].append(path)
        elif node.op not in ("placeholder", "output", "call_function"):
            missing[f"{node.op} {node.target}"] += 1
    return missing, random, where


def _check_supported(nodes: list[Node], constant: set[Node]) -> None:
    """One ConfigError listing every op that reads circuit values and has no lowering, and every random op."""
    missing, random, where = _problems(nodes, constant)

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


def _joined(prefix: str, path: str) -> str:
    return f"{prefix}.{path}" if prefix and path else prefix or path


def _ancestors(nodes: list[Node]) -> set[Node]:
    """The nodes and every node they read, transitively."""
    found, pending = set(), list(nodes)
    while pending:
        node = pending.pop()
        if node not in found:
            found.add(node)
            pending.extend(node.all_input_nodes)
    return found


def lower(program: Program | torch.export.ExportedProgram, example: Mapping[str, Any], builder: Builder | None = None) -> Graph:
    """The circuit of an exported program (core ATen), the user inputs shaped as in ``example``."""
    b = builder or Builder()
    for name, t in lower_into(program, example, b).items():
        b.output(name, t)
    return b.graph


def lower_into(program: Program | torch.export.ExportedProgram, example: Mapping[str, Any], b: Builder) -> dict[str, Tensor]:
    """Build the program's nodes with ``b``; its outputs by name (``out``, or ``out0``, ``out1``, …)."""
    if not isinstance(program, Program):
        program = Program(program)
    if program.blocks is not None:
        with rep.active(program.blocks):
            try:
                return _Replay(program, b).outer(example)
            except rep.NotRepeatable:  # raised before anything is built
                program = program.plain()
    return _Replay(program, b).outer(example)


class _Replay:
    """Lowers one Program: its outer graph, and the body of each repeated-block call in place."""

    def __init__(self, program: Program, b: Builder) -> None:
        self.program, self.b, self.lw = program, b, Lowering(b)
        self.blocks = program.blocks
        self.weights: dict[str, Any] = {}
        self._constant: dict[tuple, set[Node]] = {}

    def outer(self, example: Mapping[str, Any]) -> dict[str, Tensor]:
        program, b = self.program.program, self.b
        nodes = list(program.graph_module.graph.nodes)
        leaves = iter(_named_leaves(example))
        placeholders = [n for n in nodes if n.op == "placeholder"]
        made: list[tuple[Node, str, torch.Tensor, str]] = []  # (node, input name, value, role): built after the checks
        env: dict[Node, Any] = {}
        constant_inputs: set[Node] = set()
        for node, spec in zip(placeholders, program.graph_signature.input_specs):
            if spec.kind == InputKind.USER_INPUT:
                name, value = next(leaves)
                if isinstance(value, torch.Tensor):
                    made.append((node, name, value, "input"))
                    continue
            elif spec.kind in (InputKind.PARAMETER, InputKind.BUFFER):
                value = _weight_value(program, spec.target)
                if _is_weight(program, spec):
                    made.append((node, spec.target, value, "weight"))
                    continue
                self.weights[spec.target] = value
                if value.device.type != "meta":  # folded: a checkpoint holding it must hold these values
                    b.graph.folded[spec.target] = to_numpy(value)
            elif spec.kind in (InputKind.CONSTANT_TENSOR, InputKind.CUSTOM_OBJ):  # a generator: its random ops are reported
                value = program.constants[spec.target]
            else:
                raise ConfigError(f"cannot lower the traced module: input {node.name} of kind {spec.kind.name}")
            env[node] = value
            constant_inputs.add(node)
        constant = fold.constant_nodes(nodes, constant_inputs)
        if self.blocks is not None:
            self._check_bodies(nodes, constant, {name for _, name, _, _ in made} | set(self.weights))
        _check_supported(nodes, constant)
        for node, name, value, role in made:
            env[node] = self.weights[name] = b.input(name, tuple(value.shape), role=role)
            if value.device.type != "meta" and (role == "weight" or not value.is_floating_point()):
                b.graph.defaults[name] = to_numpy(value)  # a module on the meta device has shapes only
        values = self._run(nodes, env, constant, "", "")
        specs = program.graph_signature.output_specs
        outs = [v for v, spec in zip(values, specs) if spec.kind == OutputKind.USER_OUTPUT]
        for i, value in enumerate(outs):
            if not isinstance(value, (Tensor, Masked, torch.Tensor)):
                raise ConfigError(f"output {i} of forward is {type(value).__name__} {str(value)[:40]!r}, not a tensor")
            if isinstance(value, Masked):
                raise GraphError(f"output {i} holds −∞ scores, which F_p cannot represent")
        return {"out" if len(outs) == 1 else f"out{i}": self.lw.tensor(v) for i, v in enumerate(outs)}

    def _run(self, nodes: list[Node], env: dict[Node, Any], constant: set[Node], prefix: str, kind: str) -> list[Any]:
        """Fold or lower every node; the values of the output node's operands."""
        for node in nodes:
            if node.op == "call_function":
                if node in constant:
                    env[node] = fold.run(node, env.__getitem__)
                elif node.target is rep.block_op():
                    env[node] = self._call(node, env)
                else:
                    env[node] = self._lower_node(node, env, prefix, kind)
            elif node.op == "output":
                return [env[v] if isinstance(v, Node) else v for v in node.args[0]]
        return []

    def _body_constant(self, key: tuple, fixed: tuple[bool, ...]) -> set[Node]:
        """The constant nodes of a body whose user inputs ``fixed`` are constants (cached per pattern)."""
        found = self._constant.get((key, fixed))
        if found is None:
            body = self.blocks.bodies[key]
            nodes = list(body.graph_module.graph.nodes)
            users = iter(fixed)
            inputs = set()
            for node, spec in zip([n for n in nodes if n.op == "placeholder"], body.graph_signature.input_specs):
                if spec.kind == InputKind.USER_INPUT:
                    if next(users):
                        inputs.add(node)
                elif not _is_weight(body, spec):
                    inputs.add(node)
            found = self._constant[(key, fixed)] = fold.constant_nodes(nodes, inputs)
        return found

    def _fixed(self, node: Node, is_constant: Any) -> tuple[bool, ...]:
        """Which leaves of a call's ``(args, kwargs)`` are constants."""
        call = self.blocks.calls[node.args[0]]
        tensors = iter(node.args[1][1:])
        return tuple(True if c is not None else is_constant(next(tensors)) for c in call.constants)

    def _check_bodies(self, nodes: list[Node], constant: set[Node], weights: set[str]) -> None:
        """NotRepeatable when a body called on circuit values holds an op with no lowering, or
        reads a weight the outer program does not have under the instance's name."""
        seen = set()
        for node in nodes:
            if node.op == "call_function" and node.target is rep.block_op() and node not in constant:
                call = self.blocks.calls[node.args[0]]
                key = call.key
                body = self.blocks.bodies[key]
                if any(_joined(call.path, s.target) not in weights for s in body.graph_signature.input_specs if _is_weight(body, s)):
                    raise rep.NotRepeatable("a block weight the outer program does not have")
                fixed = self._fixed(node, lambda arg: arg in constant)
                if (key, fixed) not in seen:
                    seen.add((key, fixed))
                    body_nodes = list(self.blocks.bodies[key].graph_module.graph.nodes)
                    missing, random, _ = _problems(body_nodes, self._body_constant(key, fixed))
                    if missing or random:
                        raise rep.NotRepeatable("a body op without a lowering")

    def _call(self, node: Node, env: dict[Node, Any]) -> tuple[Any, ...]:
        """Replay the body of a block call: its outputs, in the order of the op's results (None for
        a result nobody reads: as in the plain export, nothing only it needs is built)."""
        call = self.blocks.calls[node.args[0]]
        body = self.blocks.bodies[call.key]
        leaves = self.blocks.arguments(node.args[0], [env[a] for a in node.args[1]])
        fixed = tuple(not isinstance(v, (Tensor, Masked)) for v in leaves)
        nodes = list(body.graph_module.graph.nodes)
        results = [v for v, spec in zip(nodes[-1].args[0], body.graph_signature.output_specs) if isinstance(spec.arg, TensorArgument)]
        read = {user.args[1] for user in node.users if user.target is operator.getitem}
        users = iter(leaves)
        benv: dict[Node, Any] = {}
        for bnode, spec in zip([n for n in nodes if n.op == "placeholder"], body.graph_signature.input_specs):
            if spec.kind == InputKind.USER_INPUT:
                benv[bnode] = next(users)
            elif spec.kind in (InputKind.CONSTANT_TENSOR, InputKind.CUSTOM_OBJ):
                benv[bnode] = body.constants[spec.target]
            else:
                benv[bnode] = self.weights[_joined(call.path, spec.target)] if _is_weight(body, spec) else _weight_value(body, spec.target)
        needed = _ancestors([r for i, r in enumerate(results) if i in read and isinstance(r, Node)])
        self._run([n for n in nodes if n in needed], benv, self._body_constant(call.key, fixed), call.path, call.kind)
        return tuple(benv.get(r) if isinstance(r, Node) else r for r in results)

    def _lower_node(self, node: Node, env: dict[Node, Any], prefix: str, kind: str) -> Any:
        args = map_arg(node.args, env.__getitem__)
        kwargs = map_arg(node.kwargs, env.__getitem__)
        if node.target is operator.getitem:
            container, i = args
            return container.parts[i]() if isinstance(container, Lazy) else container[i]
        lw = self.lw
        lw.node = node
        stack = node.meta.get("nn_module_stack") or {}
        inner = module_path(stack)
        path = _joined(prefix, inner)
        with lw.b.scope(path, module_type(stack) if inner else kind) if path else nullcontext():
            try:
                return LOWERINGS[node.target](lw, *args, **kwargs)
            except GraphError as e:
                message = str(e)
                where = f"{node.target}" + (f" in {path}" if path else "")
                raise GraphError(message if message.startswith(str(node.target)) else f"{where}: {message}") from None
