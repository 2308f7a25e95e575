"""Layer-wise normalization (VAR Definition 4.7 / Lemma 5.5, FlowAR Definition B.8 / Lemma C.4).

``μ = (⊕ X)/c``; ``Δ = X − μ``; ``σ² = (⊕ Δ·Δ)/c``; ``LN(X) = Δ / √σ²`` over the last axis,
with no ε and no affine parameters (both papers' definition). A constant row has σ² = 0 and its
evaluation raises DivisionByZero.
"""

from __future__ import annotations

from typing import Any

from tc0sim.errors import GraphError
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind

REF = "VAR Lemma 5.5 / FlowAR Lemma C.4"


def layernorm(b: Builder, x: Tensor, name: str = "layernorm") -> Tensor:
    """Normalize each row of X[n, c]: depth 5d_std + 2d_sum + d_sqrt."""
    if x.ndim != 2:
        raise GraphError(f"{name}: expected X[n, c], got shape {x.shape}")
    n, c = x.shape
    with b.scope(name, REF):
        width = b.constant(c)
        mean = b.div(b.sum(x, axis=1), width)
        centered = b.sub(x, b.reshape(mean, (n, 1)))
        variance = b.div(b.sum(b.mul(centered, centered), axis=1), width)
        return b.div(centered, b.reshape(b.sqrt(variance), (n, 1)))


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    return {"out": layernorm(b, b.input("X", (dims["n"], dims["c"])))}


KINDS: tuple[Kind, ...] = (
    Kind("layernorm", ("n", "c"), _build, REF, doc="(X − μ) / √σ² per row, no ε, no affine"),
)
"""The kinds this module defines (listed by its package's __init__)."""
