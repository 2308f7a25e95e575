"""Multi-head scaled dot-product attention and AdaLN modulation, as the released FlowAR uses them.

* ``sdpa(q, k, v, scale)`` per head: ``O = (⊕_j e^{scale·⟨q_i, k_j⟩} v_j) ÷ ⊕_j e^{scale·⟨q_i, k_j⟩}``,
  PyTorch's ``F.scaled_dot_product_attention`` without a mask in exact arithmetic (the softmax
  normalisation is divided out after the value sum; no max is subtracted, which changes no exact value).
* ``split_heads`` / ``merge_heads``: ``[..., n, H·d] ↔ [..., H, n, d]`` (wiring; channel ``h·d + e``).
* ``modulate(x, scale, shift) = x·(1 + scale) + shift`` (AdaLN).
"""

from __future__ import annotations

from typing import Any

from tc0sim.errors import GraphError
from tc0sim.ir.graph import Builder, Tensor

REF = "PyTorch F.scaled_dot_product_attention / AdaLN"


def split_heads(b: Builder, x: Tensor, heads: int) -> Tensor:
    """[..., n, H·d] → [..., H, n, d]."""
    *lead, n, width = x.shape
    if width % heads:
        raise GraphError(f"split_heads: width {width} is not divisible by {heads} heads")
    y = b.reshape(x, (*lead, n, heads, width // heads))
    k = len(lead)
    return b.transpose(y, (*range(k), k + 1, k, k + 2))


def merge_heads(b: Builder, x: Tensor) -> Tensor:
    """[..., H, n, d] → [..., n, H·d]."""
    *lead, heads, n, d = x.shape
    k = len(lead)
    return b.reshape(b.transpose(x, (*range(k), k + 1, k, k + 2)), (*lead, n, heads * d))


def sdpa(b: Builder, q: Tensor, k: Tensor, v: Tensor, scale: Any, name: str = "sdpa") -> Tensor:
    """q[..., n, d], k[..., m, d], v[..., m, e] → [..., n, e]: 4 d_std + 2 d_sum + d_exp."""
    if q.shape[:-2] != k.shape[:-2] or k.shape[:-1] != v.shape[:-1] or q.shape[-1] != k.shape[-1]:
        raise GraphError(f"{name}: cannot attend with q {q.shape}, k {k.shape}, v {v.shape}")
    *lead, n, d = q.shape
    m, e = v.shape[-2:]
    r = len(lead)
    with b.scope(name, REF):
        logits = b.sum(b.mul(b.reshape(q, (*lead, n, 1, d)), b.reshape(k, (*lead, 1, m, d))), axis=r + 2)
        weights = b.exp(b.mul(logits, b.constant(scale)))
        total = b.sum(weights, axis=r + 1)
        mixed = b.sum(b.mul(b.reshape(weights, (*lead, n, m, 1)), b.reshape(v, (*lead, 1, m, e))), axis=r + 1)
        return b.div(mixed, b.reshape(total, (*lead, n, 1)))


def modulate(b: Builder, x: Tensor, scale: Tensor, shift: Tensor, name: str = "modulate") -> Tensor:
    """x·(1 + scale) + shift (broadcast): 3 d_std."""
    with b.scope(name, REF):
        return b.add(b.mul(x, b.add(scale, b.constant(1))), shift)
