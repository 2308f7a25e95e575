"""The IR: primitives declared once, the tensor-level DAG, and its builder."""

from tc0sim.ir.dag import Graph, Node, Scope, Tensor
from tc0sim.ir.graph import Builder
from tc0sim.ir.primitives import PRIMITIVES, SYMBOLS, Primitive, primitive, scratch_primitive

__all__ = [
    "Builder", "Graph", "Node", "Scope", "Tensor", "PRIMITIVES", "SYMBOLS", "Primitive", "primitive", "scratch_primitive",
]
