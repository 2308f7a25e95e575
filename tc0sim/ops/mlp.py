"""The MLP layer (VAR Definition 4.6 / Lemma 5.4, FlowAR Definition B.6 / Lemma C.1): ``X W + b``."""

from __future__ import annotations

from typing import Any

from tc0sim.errors import GraphError
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind
from tc0sim.ops.matmul import matmul

REF = "VAR Lemma 5.4 / FlowAR Lemma C.1"


def mlp(b: Builder, x: Tensor, w: Tensor, bias: Tensor, name: str = "mlp") -> Tensor:
    """X[n, c] W[c, d] + b[d]: a matmul, then one rounded add (2d_std + d_sum)."""
    if w.ndim != 2 or bias.shape != (w.shape[1],):
        raise GraphError(f"{name}: bias must have shape ({w.shape[-1]},) for W of shape {w.shape}, got {bias.shape}")
    with b.scope(name, REF):
        return b.add(matmul(b, x, w), bias)


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    n, c, d = dims["n"], dims["c"], dims["d"]
    x = b.input("X", (n, c))
    w = b.input("W", (c, d), role="weight")
    bias = b.input("b", (d,), role="weight")
    return {"out": mlp(b, x, w, bias)}


KINDS: tuple[Kind, ...] = (
    Kind("mlp", ("n", "c", "d"), _build, REF, doc="X W + b"),
)
"""The kinds this module defines (listed by its package's __init__)."""
