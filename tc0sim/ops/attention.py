"""The attention matrix (VAR Definition 4.4 / Lemma 5.3) and the single attention layer
(VAR Definition 4.5, FlowAR Definition B.5 / Lemma 4.6 / Lemma C.3).

``M = W_Q W_Kᵀ``; ``S = (X M) Xᵀ``; ``A = exp(S)``; ``D = ⊕_j A_ij``; ``Dinv = 1 / D``;
``O = (A X) W_V``; ``Attn(X) = Dinv · O`` — in that order, each product a matmul (Lemma 4.1).
"""

from __future__ import annotations

from typing import Any

from tc0sim.errors import GraphError
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind
from tc0sim.ops.matmul import matmul

REF_MATRIX = "VAR Lemma 5.3"
REF_LAYER = "FlowAR Lemma 4.6 / Lemma C.3"


def _check_square_weights(name: str, x: Tensor, weights: dict[str, Tensor]) -> None:
    if x.ndim != 2:
        raise GraphError(f"{name}: expected X[n, d], got shape {x.shape}")
    d = x.shape[1]
    for weight_name, weight in weights.items():
        if weight.shape != (d, d):
            raise GraphError(f"{name}: {weight_name} must have shape {(d, d)} for X of shape {x.shape}, got {weight.shape}")


def _attention_matrix(b: Builder, x: Tensor, w_q: Tensor, w_k: Tensor) -> Tensor:
    m = matmul(b, w_q, b.transpose(w_k, (1, 0)))
    s = matmul(b, matmul(b, x, m), b.transpose(x, (1, 0)))
    return b.exp(s)


def attention_matrix(b: Builder, x: Tensor, w_q: Tensor, w_k: Tensor, name: str = "attention_matrix") -> Tensor:
    """A[n, n] = exp((X (W_Q W_Kᵀ)) Xᵀ): three matmuls then exp (3(d_std + d_sum) + d_exp)."""
    _check_square_weights(name, x, {"W_Q": w_q, "W_K": w_k})
    with b.scope(name, REF_MATRIX):
        return _attention_matrix(b, x, w_q, w_k)


def attention(b: Builder, x: Tensor, w_q: Tensor, w_k: Tensor, w_v: Tensor, name: str = "attention") -> Tensor:
    """Attn(X) = D⁻¹ A X W_V with D = diag(A 1_n): the row sums are divided into (A X) W_V."""
    _check_square_weights(name, x, {"W_Q": w_q, "W_K": w_k, "W_V": w_v})
    n = x.shape[0]
    with b.scope(name, REF_LAYER):
        with b.scope("attention_matrix", REF_MATRIX):
            a = _attention_matrix(b, x, w_q, w_k)
        row_sums = b.sum(a, axis=1)
        row_sums_inv = b.div(b.constant(1), row_sums)
        values = matmul(b, matmul(b, a, x), w_v)
        return b.mul(b.reshape(row_sums_inv, (n, 1)), values)


def _inputs(b: Builder, dims: dict[str, int], names: tuple[str, ...]) -> list[Tensor]:
    n, d = dims["n"], dims["d"]
    return [b.input("X", (n, d))] + [b.input(w, (d, d), role="weight") for w in names]


def _build_matrix(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    x, w_q, w_k = _inputs(b, dims, ("W_Q", "W_K"))
    return {"out": attention_matrix(b, x, w_q, w_k)}


def _build_layer(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    x, w_q, w_k, w_v = _inputs(b, dims, ("W_Q", "W_K", "W_V"))
    return {"out": attention(b, x, w_q, w_k, w_v)}


KINDS: tuple[Kind, ...] = (
    Kind(
        "attention_matrix",
        ("n", "d"),
        _build_matrix,
        REF_MATRIX,
        doc="A = exp((X (W_Q W_Kᵀ)) Xᵀ)",
    ),
    Kind(
        "attention",
        ("n", "d"),
        _build_layer,
        REF_LAYER,
        doc="Attn(X) = (1 / ⊕_j A_ij) · ((A X) W_V)",
    ),
)
"""The kinds this module defines (listed by its package's __init__)."""
