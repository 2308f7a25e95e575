"""Compile a whole DAG into ONE threshold circuit (small models), to check it against evaluate.

Every element of a model input becomes one encoded operand (2p+3 input bits, tc0sim.threshold's
encoding); constants become constant bits; every element of a compute node is a copy of its
primitive's circuit on the operand literals of its arguments; wiring moves operands without gates
(``neg`` is one gate per element: the sign flips unless the value is zero).  The outputs are every
model output element in the same encoding, then one bit that ORs all range-error bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
import numpy as np

from tc0sim.errors import ConfigError
from tc0sim.fp import Format
from tc0sim.interp.threshold import node_arity
from tc0sim.ir.exact import constant_value
from tc0sim.ir.graph import Graph
from tc0sim.ir.primitives import CONSTANT, INPUT, NEG
from tc0sim.ir.wiring import move
from tc0sim.threshold.builder import ONE, ZERO, Builder
from tc0sim.threshold.circuit import Circuit
from tc0sim.threshold.fp_circuits import PRIMS, REDUCTIONS, build, encode, operand_bits

__all__ = ["CompiledModel", "compile_graph"]


@dataclass
class CompiledModel:
    """The circuit, the order of its input operands and of its output operands."""

    circuit: Circuit
    precision: int
    inputs: list[tuple[str, tuple[int, ...]]]
    outputs: list[tuple[str, tuple[int, ...]]]

    def input_bits(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """The input vector for F_p values (object arrays of mpfr, one per model input)."""
        F = Format(self.precision)
        bits: list[int] = []
        for name, shape in self.inputs:
            for x in np.asarray(values[name], dtype=object).reshape(-1):
                bits += encode(*F.to_pair(x), self.precision)
        return np.array(bits, dtype=np.uint8)


def encode_const(m: int, e: int, p: int) -> list[int]:
    """Constant literals for a known F_p value."""
    return [ONE if bit else ZERO for bit in encode(m, e, p)]


def compile_graph(graph: Graph, p: int, max_gates: int = 2_000_000) -> CompiledModel:
    """One threshold circuit computing every output of the graph at precision p."""
    graph = graph.flat()
    F = Format(p)
    b = Builder()
    width = operand_bits(p)
    live = graph.live()
    inputs = [(n.name, n.shape) for n in live if n.prim is INPUT]
    bits = b.inputs(sum(math.prod(s) for _, s in inputs) * width)
    operands: list[list[int]] = [encode_const(0, 0, p)]
    """Operand literal lists; operand 0 is the zero that padding fills in."""
    errors: list[int] = []
    cache: dict[tuple[str, int], Circuit] = {}
    values: dict[int, np.ndarray] = {}
    cursor = 0
    for node in live:
        row = node.prim
        if row is INPUT:
            ids = np.arange(len(operands), len(operands) + node.size).reshape(node.shape)
            for _ in range(node.size):
                operands.append(bits[cursor:cursor + width])
                cursor += width
            values[node.id] = ids
            continue
        if row is CONSTANT:
            consts = F.asarray(constant_value(node.attrs["value"])).reshape(-1)
            ids = np.arange(len(operands), len(operands) + len(consts)).reshape(node.shape)
            operands.extend(encode_const(*F.to_pair(x), p) for x in consts)
            values[node.id] = ids
            continue
        args = [values[i] for i in node.inputs]
        if row.is_wiring and row is not NEG:
            values[node.id] = move(node, args, lambda: 0)
            continue
        name = row.name  # the threshold circuits are keyed by primitive name
        if name not in PRIMS:
            raise ConfigError(f"no threshold circuit for {name} (node {node.name}): cannot compile this model")
        k = node_arity(graph, node)
        key = (name, k if name in REDUCTIONS else 0)
        if key not in cache:
            cache[key] = build(name, p, k if name in REDUCTIONS else 2)
        if row.role == "reduction":
            arr = args[0]
            axes = list(node.attrs["axes"])
            keep = [i for i in range(arr.ndim) if i not in axes]
            rows = np.transpose(arr, keep + axes).reshape(-1, k)
        else:
            rows = np.stack([a.reshape(-1) for a in args], axis=1)
        out = np.empty(len(rows), dtype=np.int64)
        for i, r in enumerate(rows):
            result = b.inline(cache[key], [lit for j in r for lit in operands[j]])
            errors.append(result[-1])
            out[i] = len(operands)
            operands.append(result[:-1])
        values[node.id] = out.reshape(node.shape)
        if len(b.gates) > max_gates:
            raise ConfigError(f"the compiled circuit exceeds {max_gates} gates at node {node.name}")
    outputs = [(name, graph.node(nid).shape) for name, nid in graph.outputs.items()]
    out_lits = [lit for name, nid in graph.outputs.items() for j in values[nid].reshape(-1) for lit in operands[j]]
    circuit = b.circuit(out_lits + [b.or_(errors)])
    return CompiledModel(circuit, p, inputs, outputs)
