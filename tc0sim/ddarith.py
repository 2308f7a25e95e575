"""Error-free transformations and double-double arithmetic on float64 arrays (numbers layer).

TwoSum (O. Møller, BIT 5, 1965; D. E. Knuth, TAOCP vol. 2, §4.2.2), Dekker's product with
Veltkamp's split (T. J. Dekker, Numerische Mathematik 18, 1971), and from them the double-double
product of tc0sim.fastfp_dd, with a rigorous error bound (proofs in docs/semantics.md §2.7).
Every function is vectorised over rows or elements; the fused one-pass kernels (exp, ⊕,
certification) are in tc0sim.ddjit.
"""

from __future__ import annotations

import numpy as np

__all__ = ["U", "two_sum_error", "split", "product_error", "dd_product"]

U = 2.0**-53
"""Unit roundoff of binary64."""

_VELTKAMP = 134217729.0  # 2^27 + 1


def two_sum_error(a: np.ndarray, b: np.ndarray, s: np.ndarray) -> np.ndarray:
    """a + b − s exactly, for s = fl(a + b) (Knuth's TwoSum; exact in any range, also subnormal)."""
    bb = s - a
    return (a - (s - bb)) + (b - bb)


def split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Veltkamp's split: a = hi + lo exactly, each with at most 26 significant bits."""
    c = _VELTKAMP * a
    hi = c - (c - a)
    return hi, a - hi


def product_error(a: np.ndarray, b: np.ndarray, s: np.ndarray) -> np.ndarray:
    """a·b − s exactly, for s = fl(a·b) with a, b in [1/4, 4) (Dekker: no step over- or underflows)."""
    ah, al = split(a)
    bh, bl = split(b)
    return (((ah * bh - s) + ah * bl) + al * bh) + al * bl


def dd_product(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: (h, l, e, bound) with Π rows = (h + l)·2^e·(1 + θ), |θ·(h + l)| <= bound.

    Significands m_i in [1/2, 1) (frexp) are multiplied into a double-double kept in [1/2, 1):
    (ph, pl) = exact h·m (Dekker), (h, l) = TwoSum(ph, fl(pl + fl(l·m))), a relative error of
    at most 3.0001·u² per step; hence |θ| <= 3.0002·(k − 1)·u² for k·u² tiny (bound 4·k·u²·|h|)."""
    n, k = rows.shape
    mant, exps = np.frexp(rows)
    e = exps.sum(axis=1, dtype=np.int64)
    h = mant[:, 0].copy() if k else np.ones(n)
    l = np.zeros(n)
    for i in range(1, k):
        m = mant[:, i]
        ph = h * m
        pl = product_error(h, m, ph)
        v = pl + l * m
        h = ph + v
        l = two_sum_error(ph, v, h)
        h, shift = np.frexp(h)
        l = np.ldexp(l, -shift)
        e += shift
    return h, l, e, np.abs(h) * (4 * k * U * U)
