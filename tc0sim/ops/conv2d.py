"""Convolution, stride 1 (VAR Definition 4.10 / Lemma 5.6 / Proposition 5.7).

``Y_ijo = ⊕(X_{i+m−pt, j+q−pl, l} · K_{o,m,q,l} for all m, q, l, and b_o)``: every product and the
bias are the terms of ONE iterated sum (depth d_std + d_sum). Zero padding as PyTorch's
``padding="same"``: a total of hk − 1 rows, ⌊(hk − 1)/2⌋ of them before (likewise for columns).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tc0sim.errors import GraphError
from tc0sim.ir.budget import INDEX_BYTES
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind

REF = "VAR Lemma 5.6 / Proposition 5.7"


def same_padding(kernel_size: int) -> tuple[int, int]:
    """(before, after) zero padding of PyTorch's padding="same" for a stride-1 kernel."""
    total = kernel_size - 1
    return total // 2, total - total // 2


def conv2d(b: Builder, x: Tensor, kernel: Tensor, bias: Tensor, name: str = "conv2d") -> Tensor:
    """X[h, w, c] * K[k, hk, wk, c] + b[k] → Y[h, w, k]: products, then one ⊕ with the bias as a term."""
    if x.ndim != 3 or kernel.ndim != 4 or kernel.shape[3] != x.shape[2] or bias.shape != (kernel.shape[0],):
        raise GraphError(
            f"{name}: expected X[h, w, c], K[k, hk, wk, c], b[k]; got X {x.shape}, K {kernel.shape}, b {bias.shape}"
        )
    h, w, c = x.shape
    k, hk, wk, _ = kernel.shape
    b.reserve(h * hk + w * wk, INDEX_BYTES, f"{name}: window indices")
    row_idx = np.arange(h, dtype=np.int64)[:, None] + np.arange(hk, dtype=np.int64)[None, :]
    col_idx = np.arange(w, dtype=np.int64)[:, None] + np.arange(wk, dtype=np.int64)[None, :]
    with b.scope(name, REF):
        padded = b.pad(x, (same_padding(hk), same_padding(wk), (0, 0)))
        windows = b.gather(b.gather(padded, row_idx, axis=0), col_idx, axis=2)  # [h, hk, w, wk, c]
        windows = b.reshape(b.transpose(windows, (0, 2, 1, 3, 4)), (h, w, 1, hk, wk, c))
        products = b.mul(windows, b.reshape(kernel, (1, 1, k, hk, wk, c)))
        terms = b.concat(
            [b.reshape(products, (h, w, k, hk * wk * c)), b.broadcast(b.reshape(bias, (k, 1)), (h, w, k, 1))],
            axis=3,
        )
        return b.sum(terms, axis=3)


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    h, w, c, k, hk, wk = (dims[d] for d in ("h", "w", "c", "k", "hk", "wk"))
    x = b.input("X", (h, w, c))
    kernel = b.input("K", (k, hk, wk, c), role="weight")
    bias = b.input("b", (k,), role="weight")
    return {"out": conv2d(b, x, kernel, bias)}


KINDS: tuple[Kind, ...] = (
    Kind(
        "conv2d",
        ("h", "w", "c", "k", "hk", "wk"),
        _build,
        REF,
        doc="stride 1, padding 'same': Y_ijo = ⊕(all products X·K, and b_o)",
    ),
)
"""The kinds this module defines (listed by its package's __init__)."""
