"""The feed-forward layer (FlowAR Definition B.7 / Lemma 4.5 / Lemma C.2).

``H = relu(X W1 + b1)``; ``FFN(X) = X + (H W2 + b2)`` — two MLPs (Lemma C.1), a ReLU and a residual add.
"""

from __future__ import annotations

from typing import Any

from tc0sim.errors import GraphError
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind
from tc0sim.ops.mlp import mlp

REF = "FlowAR Lemma 4.5 / Lemma C.2"


def ffn(b: Builder, x: Tensor, w1: Tensor, w2: Tensor, b1: Tensor, b2: Tensor, name: str = "ffn") -> Tensor:
    """X[n, c] + (relu(X W1 + b1) W2 + b2) with W1, W2 [c, c]: depth 6d_std + 2d_sum."""
    if x.ndim != 2:
        raise GraphError(f"{name}: expected X[n, c], got shape {x.shape}")
    c = x.shape[1]
    for weight_name, weight in (("W1", w1), ("W2", w2)):
        if weight.shape != (c, c):
            raise GraphError(f"{name}: {weight_name} must have shape {(c, c)} for X of shape {x.shape}, got {weight.shape}")
    with b.scope(name, REF):
        hidden = b.relu(mlp(b, x, w1, b1))
        return b.add(x, mlp(b, hidden, w2, b2))


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    n, c = dims["n"], dims["c"]
    x = b.input("X", (n, c))
    w1 = b.input("W1", (c, c), role="weight")
    w2 = b.input("W2", (c, c), role="weight")
    b1 = b.input("b1", (c,), role="weight")
    b2 = b.input("b2", (c,), role="weight")
    return {"out": ffn(b, x, w1, w2, b1, b2)}


KINDS: tuple[Kind, ...] = (
    Kind("ffn", ("n", "c"), _build, REF, doc="X + (relu(X W1 + b1) W2 + b2)"),
)
"""The kinds this module defines (listed by its package's __init__)."""
