"""2-D axial rotary position embedding, as FlowAR's ``VisionRotaryEmbeddingFast`` computes it.

For a head of width d (d divisible by 4) on an s × s token map (row-major, token = i·s + j), with
``L = 16`` (``pt_seq_len``) and θ = 10⁴: the per-axis frequencies are ``f_k = θ^(−4k/d)`` for
k < d/4, each used twice; the axis position of row i is ``t_i = i·L/s``. The angle of channel m of
token (i, j) is ``t_i·f_{⌊m/2⌋}`` for m < d/2 and ``t_j·f_{⌊(m − d/2)/2⌋}`` otherwise, and

    rope(x) = x · cos(angle) + rotate_half(x) · sin(angle),   rotate_half(x)_{2k} = −x_{2k+1}, _{2k+1} = x_{2k}.

The tables depend only on positions: they are constants of the circuit (320-bit MPFR values). The
sign of rotate_half is folded into the sin table and the pair swap is wiring, so rope costs one
product layer and one addition (2 d_std).
"""

from __future__ import annotations

from fractions import Fraction
from functools import lru_cache

import numpy as np

from tc0sim.errors import ConfigError, GraphError
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ops.constants import cos_sin, power

REF = "FlowAR VisionRotaryEmbeddingFast (models/rope.py)"
PT_SEQ_LEN = 16
THETA = 10000


@lru_cache(maxsize=None)
def rope_tables(head_dim: int, side: int, pt_seq_len: int = PT_SEQ_LEN) -> tuple[np.ndarray, np.ndarray]:
    """(cos, signed sin) tables [side², head_dim] of exact Fractions; signed sin has −sin on even channels."""
    if head_dim % 4:
        raise ConfigError(f"rope: head width {head_dim} is not divisible by 4 (2-D rotary pairs per axis)")
    half = head_dim // 2
    freqs = [power(THETA, Fraction(-2 * k, half)) for k in range(half // 2)]
    angles = [Fraction(i * pt_seq_len, side) * f for i in range(side) for f in freqs]
    cos, sin = cos_sin(angles)
    axis_cos = np.array(cos, dtype=object).reshape(side, half // 2).repeat(2, axis=1)
    axis_sin = np.array(sin, dtype=object).reshape(side, half // 2).repeat(2, axis=1)
    axis_sin[:, 0::2] = -axis_sin[:, 0::2]

    def grid(axis: np.ndarray) -> np.ndarray:
        rows = np.broadcast_to(axis[:, None, :], (side, side, half))
        cols = np.broadcast_to(axis[None, :, :], (side, side, half))
        return np.concatenate([rows, cols], axis=2).reshape(side * side, head_dim)

    return grid(axis_cos), grid(axis_sin)


def swap_pairs(head_dim: int) -> np.ndarray:
    """The channel permutation 1, 0, 3, 2, … of rotate_half."""
    return np.arange(head_dim).reshape(-1, 2)[:, ::-1].reshape(-1)


def rope(b: Builder, x: Tensor, cos: Tensor, sin: Tensor, name: str = "rope") -> Tensor:
    """x[..., n, d] · cos + swap(x) · signed sin, with the [n, d] table tensors of ``rope_tables``."""
    if x.shape[-2:] != cos.shape or cos.shape != sin.shape:
        raise GraphError(f"{name}: tables {cos.shape} do not fit queries/keys {x.shape}")
    with b.scope(name, REF):
        swapped = b.gather(x, swap_pairs(x.shape[-1]), axis=x.ndim - 1)
        return b.add(b.mul(x, cos), b.mul(swapped, sin))
