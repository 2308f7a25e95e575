"""Matrix multiplication (VAR Lemma 5.2, FlowAR Lemma 4.1): (XY)_ij = ⊕_k (X_ik · Y_kj)."""

from __future__ import annotations

from typing import Any

from tc0sim.errors import GraphError
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind

REF = "VAR Lemma 5.2 / FlowAR Lemma 4.1"


def matmul(b: Builder, x: Tensor, y: Tensor, name: str = "matmul") -> Tensor:
    """X[n1, d] · Y[d, n2]: one layer of products, then one ⊕ of fan-in d (depth d_std + d_sum)."""
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[0]:
        raise GraphError(f"{name}: cannot multiply {x.shape} by {y.shape}")
    with b.scope(name, REF):
        n1, d = x.shape
        n2 = y.shape[1]
        products = b.mul(b.reshape(x, (n1, d, 1)), b.reshape(y, (1, d, n2)))
        return b.sum(products, axis=1)


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    x = b.input("X", (dims["n1"], dims["d"]))
    y = b.input("Y", (dims["d"], dims["n2"]))
    return {"out": matmul(b, x, y)}


KINDS: tuple[Kind, ...] = (
    Kind("matmul", ("n1", "d", "n2"), _build, REF, doc="(XY)_ij = ⊕_k X_ik·Y_kj"),
)
"""The kinds this module defines (listed by its package's __init__)."""
