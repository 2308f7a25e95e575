"""Multi-head scaled dot-product attention and AdaLN modulation, as the released FlowAR uses them.

* ``sdpa(q, k, v, scale)`` per head: ``O = (⊕_j e^{scale·⟨q_i, k_j⟩} v_j) ÷ ⊕_j e^{scale·⟨q_i, k_j⟩}``,
  PyTorch's ``F.scaled_dot_product_attention`` without a mask in exact arithmetic (the softmax
  normalisation is divided out after the value sum; no max is subtracted, which changes no exact value).
* ``split_heads`` / ``merge_heads``: ``[..., n, H·d] ↔ [..., H, n, d]`` (wiring; channel ``h·d + e``).
* ``sdpa_aattc(q, k, v, scale, g)``: the same with e^s replaced by its degree-g Taylor polynomial, factored
  through monomial features (AAttC of the FlowAR paper's Definition 5.1, Alman and Song 2023):
  ``O = (U1 (U2ᵀ V)) ÷ (U1 (U2ᵀ 1))`` with ``U1 = φ1(scale·q)``, ``U2 = φ2(k)``; the n × m score matrix is
  never formed.
* ``modulate(x, scale, shift) = x·(1 + scale) + shift`` (AdaLN).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tc0sim.errors import GraphError
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ops.aattc import _inverse_factorials, _monomial_features, taylor_degree

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


def _features(b: Builder, x: Tensor, g: int) -> Tensor:
    """The monomial features of each row of x[..., n, d]: [..., n, r]."""
    *lead, n, d = x.shape
    flat = _monomial_features(b, b.reshape(x, (int(np.prod(lead, dtype=np.int64)) * n, d)), g)
    return b.reshape(flat, (*lead, n, flat.shape[-1]))


def sdpa_aattc(b: Builder, q: Tensor, k: Tensor, v: Tensor, scale: Any, g: Any = 2, name: str = "sdpa_aattc") -> Tensor:
    """q[..., n, d], k[..., m, d], v[..., m, e] → [..., n, e] through rank-C(d+g, g) polynomial features."""
    if q.shape[:-2] != k.shape[:-2] or k.shape[:-1] != v.shape[:-1] or q.shape[-1] != k.shape[-1]:
        raise GraphError(f"{name}: cannot attend with q {q.shape}, k {k.shape}, v {v.shape}")
    g = taylor_degree(g)
    d = q.shape[-1]
    r = len(q.shape) - 2
    with b.scope(name, REF):
        u1 = b.mul(_features(b, b.mul(q, b.constant(scale)), g), b.constant(_inverse_factorials(d, g)))
        u2 = _features(b, k, g)
        *lead, m, rank = u2.shape
        e = v.shape[-1]
        kv = b.sum(b.mul(b.reshape(u2, (*lead, m, rank, 1)), b.reshape(v, (*lead, m, 1, e))), axis=r)
        n = u1.shape[-2]
        numerator = b.sum(b.mul(b.reshape(u1, (*lead, n, rank, 1)), b.reshape(kv, (*lead, 1, rank, e))), axis=r + 1)
        mass = b.sum(u2, axis=r)
        denominator = b.sum(b.mul(u1, b.reshape(mass, (*lead, 1, rank))), axis=r + 1)
        return b.div(numerator, b.reshape(denominator, (*lead, n, 1)))


def modulate(b: Builder, x: Tensor, scale: Tensor, shift: Tensor, name: str = "modulate") -> Tensor:
    """x·(1 + scale) + shift (broadcast): 3 d_std."""
    with b.scope(name, REF):
        return b.add(b.mul(x, b.add(scale, b.constant(1))), shift)
