"""Approximate attention AAttC (FlowAR Definition 5.1, Lemma 5.2; Alman & Song 2023).

The FlowAR paper's attention (Definition B.5) is ``D⁻¹ A X W_V`` with ``A = exp(Q Kᵀ)``, ``Q = X W_Q``,
``K = X W_K`` (no 1/√d scaling). AAttC replaces ``exp(s)`` by its degree-g Taylor polynomial
``P_g(s) = Σ_{j≤g} s^j/j!`` and factors ``P_g(⟨q, k⟩) = ⟨φ1(q), φ2(k)⟩`` with one feature per
multi-index α ∈ ℕ^d, |α| ≤ g:  ``φ1(q)_α = q^α/α!`` and ``φ2(k)_α = k^α``, because
``(q·k)^j/j! = Σ_{|α|=j} q^α k^α/α!`` (multinomial theorem). The rank is r = C(d+g, g).
With U1 = φ1(Q), U2 = φ2(K) [n, r] and V = X W_V:
``out = (U1 (U2ᵀ V)) / (U1 (U2ᵀ 1))`` — the n × n matrix ``U1 U2ᵀ`` is never formed.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from fractions import Fraction
from itertools import combinations_with_replacement
from typing import Any

import numpy as np

from tc0sim.errors import ConfigError, GraphError
from tc0sim.ir.budget import CONSTANT_ELEMENT_BYTES, INDEX_BYTES
from tc0sim.ir.graph import Builder, Tensor
from tc0sim.ir.kind import Kind, Param
from tc0sim.ops.matmul import matmul

REF = "FlowAR Definition 5.1 / Lemma 5.2 (Alman & Song 2023)"
DEFAULT_DEGREE = 2


def taylor_degree(g: Any) -> int:
    """The polynomial degree g of AAttC: an integer ≥ 1, else a ConfigError."""
    try:
        if isinstance(g, bool):
            raise TypeError
        value = operator.index(g)
    except TypeError:
        raise ConfigError(f"degree g={g!r} must be ≥ 1 (an integer)") from None
    if value < 1:
        raise ConfigError(f"degree g={value} must be ≥ 1")
    return value


def feature_rank(d: int, g: int) -> int:
    """Number of multi-indices α ∈ ℕ^d with |α| ≤ g: r = C(d+g, g)."""
    return math.comb(d + g, g)


def monomials(d: int, degree: int) -> list[tuple[int, ...]]:
    """The multi-indices of one degree, each as the sorted tuple of the coordinates it multiplies.

    (0, 0, 1) stands for q_0² q_1, i.e. α = (2, 1, 0, …). Order: lexicographic in the tuples.
    """
    return list(combinations_with_replacement(range(d), degree))


def inverse_multifactorial(coords: tuple[int, ...]) -> Fraction:
    """1/α! = 1/∏_i α_i! for the multi-index written as a tuple of coordinates."""
    return Fraction(1, math.prod(math.factorial(k) for k in Counter(coords).values()))


def monomial_array(d: int, degree: int) -> np.ndarray:
    """``monomials(d, degree)`` as an int64 array [r, degree], built with numpy (same rows, same order).

    A sorted tuple of degree j is a sorted tuple of degree j - 1 with a first coordinate a ≤ its
    first coordinate prepended; sorting the rows lexicographically restores the order."""
    rows = np.arange(d, dtype=np.int64).reshape(d, 1)
    if degree == 0:
        return np.zeros((1, 0), dtype=np.int64)
    for _ in range(degree - 1):
        choices = rows[:, 0] + 1
        tails = np.repeat(rows, choices, axis=0)
        starts = np.cumsum(choices) - choices
        heads = np.arange(len(tails), dtype=np.int64) - np.repeat(starts, choices)
        rows = np.concatenate([heads[:, None], tails], axis=1)
        rows = rows[np.lexsort(rows.T[::-1])]
    return rows


def multifactorials(rows: np.ndarray) -> np.ndarray:
    """α! for each multi-index written as a sorted row of coordinates (int64; needs α! < 2^63).

    Equal coordinates of a sorted row are adjacent; a run of length m contributes 1·2·…·m = m!."""
    out = np.ones(len(rows), dtype=np.int64)
    run = np.ones(len(rows), dtype=np.int64)
    for k in range(1, rows.shape[1]):
        run = np.where(rows[:, k] == rows[:, k - 1], run + 1, 1)
        out *= run
    return out


def _monomial_features(b: Builder, z: Tensor, g: int) -> Tensor:
    """[n, r]: every monomial z^α, |α| ≤ g; degree 0 is the constant 1, degree 1 is z itself
    (wiring), degree j ≥ 2 one ⊗ of fan-in j over gathered coordinates (static indices)."""
    n, d = z.shape
    blocks = [b.broadcast(b.constant([[1]], name="monomial_1"), (n, 1)), z]
    for degree in range(2, g + 1):
        picked = b.gather(z, monomial_array(d, degree), axis=1)
        blocks.append(b.prod(picked, axis=2))
    return b.concat(blocks, axis=1)


def _inverse_factorials(d: int, g: int) -> np.ndarray:
    """The object array of 1/α! (Fractions) over every |α| ≤ g in feature order; α! takes few
    distinct values, so one Fraction per distinct value is shared by the elements that have it."""
    if g >= 21:  # 21! ≥ 2^63: integer α! no longer fit int64; exact Python integers instead
        return np.array([inverse_multifactorial(a) for j in range(g + 1) for a in monomials(d, j)], dtype=object)
    alpha = np.concatenate([multifactorials(monomial_array(d, degree)) for degree in range(g + 1)])
    distinct, inverse = np.unique(alpha, return_inverse=True)
    fractions = np.empty(len(distinct), dtype=object)
    fractions[:] = [Fraction(1, int(a)) for a in distinct]
    return fractions[inverse.reshape(-1)]


def aattc(b: Builder, x: Tensor, w_q: Tensor, w_k: Tensor, w_v: Tensor, g: Any = DEFAULT_DEGREE) -> Tensor:
    """Approximate attention of X[n, d] with a degree-g polynomial kernel (FlowAR Def. 5.1).

    Depth 4 d_std + 3 d_sum + d_prod for g ≥ 2 (4 d_std + 3 d_sum for g = 1).
    """
    g = taylor_degree(g)
    if x.ndim != 2:
        raise GraphError(f"aattc: X must be [n, d], got {x.shape}")
    d = x.shape[1]
    for label, w in (("W_Q", w_q), ("W_K", w_k), ("W_V", w_v)):
        if w.shape != (d, d):
            raise GraphError(f"aattc: {label} must be [{d}, {d}] for X {x.shape}, got {w.shape}")
    b.reserve(math.comb(d + g, g) * (2 * g + 1), INDEX_BYTES + CONSTANT_ELEMENT_BYTES, "aattc: monomial features")
    with b.scope("aattc", ref=REF):
        q = matmul(b, x, w_q)
        k = matmul(b, x, w_k)
        v = matmul(b, x, w_v)
        u1 = b.mul(_monomial_features(b, q, g), b.constant(_inverse_factorials(d, g), name="inverse_alpha_factorial"))
        u2 = _monomial_features(b, k, g)
        r = u2.shape[1]
        u2_t = b.transpose(u2, (1, 0))
        numerator = matmul(b, u1, matmul(b, u2_t, v))
        key_mass = b.reshape(b.sum(u2, axis=0), (r, 1))
        denominator = matmul(b, u1, key_mass)
        return b.div(numerator, denominator)


def aattc_error_bound(B: float, g: int, vmax: float) -> float:
    """ℓ∞ bound on AAttC − Attn when every score |⟨q_i, k_j⟩| ≤ B and max|V| ≤ vmax (exact math).

    Lagrange: |e^s − P_g(s)| ≤ e^B B^(g+1)/(g+1)!, so each weight has relative error at most
    ε_g = e^(2B) B^(g+1)/(g+1)! (as e^s ≥ e^(−B)); if ε_g < 1 the normalised rows differ by
    at most 2ε_g/(1−ε_g) in ℓ1, hence |out − exact| ≤ 2ε_g/(1−ε_g)·vmax. Returns inf if ε_g ≥ 1.
    """
    g = taylor_degree(g)
    if B < 0 or vmax < 0:
        raise ConfigError(f"aattc_error_bound needs B ≥ 0 and vmax ≥ 0, got B={B}, vmax={vmax}")
    eps = math.exp(2 * B) * B ** (g + 1) / math.factorial(g + 1)
    if eps >= 1:
        return math.inf
    return 2 * eps / (1 - eps) * vmax


def _build(b: Builder, dims: dict[str, int], params: dict[str, Any]) -> dict[str, Tensor]:
    g = taylor_degree(params["g"])
    n, d = dims["n"], dims["d"]
    x = b.input("X", (n, d))
    w_q, w_k, w_v = (b.input(name, (d, d), role="weight") for name in ("W_Q", "W_K", "W_V"))
    return {"out": aattc(b, x, w_q, w_k, w_v, g)}


KINDS: tuple[Kind, ...] = (
    Kind(
        "aattc", ("n", "d"), _build, REF, params=(Param("g", "any", DEFAULT_DEGREE, "the degree of the polynomial kernel (an integer ≥ 1)", parse=taylor_degree),),
        doc="(U1 (U2ᵀ V)) / (U1 (U2ᵀ 1)), U1 = φ1(XW_Q), U2 = φ2(XW_K), rank C(d+g, g)",
    ),
)
"""The kinds this module defines (listed by its package's __init__)."""
