"""Operator norms and Lipschitz upper bounds of the layers (Frobenius norm on every tensor).

* Every spectral norm is a certified upper bound: a float64 u just above an estimate of σ_max is
  accepted only when u²·I − AᵀA is positive definite, checked in exact integers (Sylvester's
  criterion, the leading minors from fraction-free Bareiss elimination), so λ_max(AᵀA) < u². The estimate is LAPACK's σ_max for float64
  matrices (weights, convolutions unrolled to matrices) and √λ_max at 40 digits (mpmath) for the
  exact rational resampler matrices. Matrices whose both sides exceed :data:`CERTIFY_LIMIT` are not
  factorised; LAPACK's σ_max (backward stable, within a relative O(size·2⁻⁵³)) is then enlarged by
  :data:`SVD_MARGIN`.
* Resamplers: the bicubic up-sampler and the area down-sampler act on a map X[h, w, c] as
  ``(R_h ⊗ R_w) X`` per channel, so their operator norm is ``‖R_h‖₂ · ‖R_w‖₂`` (the spectral norm
  of a Kronecker product is the product).
* Attention ``Attn(X) = softmax(X M Xᵀ) X W_V``, M = W_Q W_Kᵀ, is not globally Lipschitz. On the
  segment between two inputs of Frobenius norm ≤ R its derivative is bounded by
  ``‖W_V‖ (√n + ‖M‖ R²)``: with P = softmax(S), dAttn = dP X W_V + P dX W_V; each row of dP is
  (diag(p) − ppᵀ) dS_i, a matrix of norm ≤ 1/2 (a variance of a unit vector's entries);
  ‖dS‖ ≤ 2‖X‖₂‖M‖‖dX‖; and ‖P‖₂ ≤ √(‖P‖₁‖P‖_∞) ≤ √n for a row-stochastic n × n matrix. Its
  growth: rows of P X are convex combinations of rows of X, so ‖Attn(X)‖ ≤ √n ‖W_V‖ ‖X‖.
* FFN ``X + relu(X W1 + b1) W2 + b2``: Lipschitz ≤ 1 + ‖W1‖‖W2‖ (relu is 1-Lipschitz); a ResNet
  block ``X + C2(relu(C1 X))``: ≤ 1 + ‖C1‖‖C2‖; an MLP: ‖W‖. Layer normalisation has no Lipschitz
  bound (its derivative grows as 1/σ near constant rows): refused.
"""

from __future__ import annotations

import math
from fractions import Fraction

from typing import Any

import gmpy2
import mpmath
import numpy as np

from tc0sim.approx.exact import float_up
from tc0sim.ops.conv2d import same_padding
from tc0sim.ops.upsample import bicubic_taps

CERTIFY_LIMIT = 256
"""Largest Gram matrix (the smaller side of A) whose bound is certified in exact arithmetic."""
SVD_MARGIN = 1e-10
RATIONAL_DIGITS = 40


def _integer_gram(rows: list[list[Any]]) -> tuple[list[list[Any]], Any]:
    """``(G, D)`` with G = (D·A)ᵀ(D·A) as integers (mpz), D the common denominator of A's rationals,
    for the smaller of AᵀA and AAᵀ."""
    if len(rows) < len(rows[0]):
        rows = [list(col) for col in zip(*rows)]
    denominator = gmpy2.mpz(1)
    for row in rows:
        for x in row:
            denominator = gmpy2.lcm(denominator, gmpy2.mpq(x).denominator)
    cols = [[gmpy2.mpz(gmpy2.mpq(x) * denominator) for x in col] for col in zip(*rows)]
    n = len(cols)
    gram = [[gmpy2.mpz(0)] * n for _ in range(n)]
    for i in range(n):
        for j in range(i, n):
            gram[i][j] = gram[j][i] = sum((x * y for x, y in zip(cols[i], cols[j])), gmpy2.mpz(0))
    return gram, denominator


def _positive_definite(m: list[list[Any]]) -> bool:
    """Sylvester's criterion on an integer symmetric matrix: every leading principal minor > 0, the
    minors being the pivots of fraction-free (Bareiss) elimination; exact integer arithmetic."""
    n = len(m)
    m = [list(row) for row in m]
    previous = gmpy2.mpz(1)
    for k in range(n):
        pivot = m[k][k]
        if pivot <= 0:
            return False
        for i in range(k + 1, n):
            row_i, row_k, lead = m[i], m[k], m[i][k]
            for j in range(k + 1, n):
                row_i[j] = (row_i[j] * pivot - lead * row_k[j]) // previous
        previous = pivot
    return True


def _dominates(gram: list[list[Any]], denominator: Any, bound: float) -> bool:
    """Whether bound²·I − AᵀA is positive definite, i.e. λ_max(AᵀA) < bound² (exact integers)."""
    num, den = bound.as_integer_ratio()  # den is a power of 2
    scale2 = den * den
    t = gmpy2.mpz(num) * num * denominator * denominator  # bound² D² den²
    n = len(gram)
    return _positive_definite([[(t if i == j else 0) - gram[i][j] * scale2 for j in range(n)] for i in range(n)])


def certified_upper(rows: list[list[Any]], estimate: float) -> float:
    """A float64 u ≥ ‖A‖₂, certified: u² · I − AᵀA is checked positive definite in exact integers,
    starting just above ``estimate`` (a computed σ_max) and widening the margin until it holds."""
    gram, denominator = _integer_gram(rows)
    margin = 1e-13
    while margin < 1:
        candidate = float_up(estimate * (1 + margin) + 1e-300)
        if _dominates(gram, denominator, candidate):
            return candidate
        margin *= 100
    raise AssertionError(f"no certified bound near {estimate}")


def spectral_norm(a: np.ndarray) -> float:
    """An upper bound on ‖A‖₂ of a float64 matrix: LAPACK's σ_max, then certified in exact
    arithmetic (above CERTIFY_LIMIT on both sides: enlarged by the relative SVD_MARGIN instead)."""
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0:
        return 0.0
    a = a.reshape(a.shape[0], -1)
    sigma = float(np.linalg.norm(a, 2))
    if min(a.shape) > CERTIFY_LIMIT:
        return float_up(sigma * (1 + SVD_MARGIN))
    return certified_upper([[gmpy2.mpq(x) for x in row] for row in a.tolist()], sigma)


def rational_spectral_norm(rows: list[list[Fraction]]) -> float:
    """A certified float64 upper bound on ‖R‖₂ of a matrix of Fractions, within 10⁻¹³ of it
    (√λ_max(RᵀR) estimated at 40 digits, then certified as in :func:`certified_upper`)."""
    exact = [[gmpy2.mpq(x.numerator, x.denominator) for x in row] for row in rows]
    gram, denominator = _integer_gram(exact)
    with mpmath.workdps(RATIONAL_DIGITS):
        g = mpmath.matrix([[mpmath.mpf(int(x)) for x in row] for row in gram])
        top = max(max(mpmath.eigsy(g, eigvals_only=True)), 0)
        estimate = float(mpmath.sqrt(top) / int(denominator))
    return certified_upper(exact, estimate)


def bicubic_matrix(in_size: int, out_size: int) -> list[list[Fraction]]:
    """The 1-D bicubic resampling matrix [out_size, in_size] (exact, border taps clamped)."""
    indices, weights = bicubic_taps(in_size, out_size)
    out = [[Fraction(0)] * in_size for _ in range(out_size)]
    for i in range(out_size):
        for k in range(indices.shape[1]):
            out[i][int(indices[i, k])] += weights[i, k]
    return out


def area_matrix(in_size: int, out_size: int) -> list[list[Fraction]]:
    """The 1-D area-averaging matrix [out_size, in_size]: each output averages in_size/out_size inputs."""
    r = in_size // out_size
    return [[Fraction(1, r) if i * r <= j < (i + 1) * r else Fraction(0) for j in range(in_size)] for i in range(out_size)]


def resampler_norm(matrix_1d: object, in_hw: tuple[int, int], out_hw: tuple[int, int]) -> float:
    """‖R_h ⊗ R_w‖₂ = ‖R_h‖₂ ‖R_w‖₂ for the 1-D matrix builder ``matrix_1d(in, out)``."""
    norm_h = rational_spectral_norm(matrix_1d(in_hw[0], out_hw[0]))
    norm_w = rational_spectral_norm(matrix_1d(in_hw[1], out_hw[1]))
    return float_up(norm_h * norm_w)


def resampler_dense(matrix_1d: object, in_hw: tuple[int, int], out_hw: tuple[int, int], channels: int) -> np.ndarray:
    """The resampler on row-major flattened maps [h·w·c]: R_h ⊗ R_w ⊗ I_c as float64."""
    rh = np.asarray(matrix_1d(in_hw[0], out_hw[0]), dtype=np.float64)
    rw = np.asarray(matrix_1d(in_hw[1], out_hw[1]), dtype=np.float64)
    return np.kron(np.kron(rh, rw), np.eye(channels))


def conv_matrix(kernel: np.ndarray, h: int, w: int) -> np.ndarray:
    """Conv2d (stride 1, 'same' zero padding) K[k, hk, wk, c] as a matrix [h·w·k, h·w·c] (row-major maps)."""
    k, hk, wk, c = kernel.shape
    top, left = same_padding(hk)[0], same_padding(wk)[0]
    out = np.zeros((h * w * k, h * w * c))
    for i in range(h):
        for j in range(w):
            for m in range(hk):
                for n in range(wk):
                    si, sj = i + m - top, j + n - left
                    if 0 <= si < h and 0 <= sj < w:
                        rows = (i * w + j) * k + np.arange(k)
                        cols = (si * w + sj) * c + np.arange(c)
                        out[np.ix_(rows, cols)] += kernel[:, m, n, :]
    return out


def attention_norms(w_q: np.ndarray, w_k: np.ndarray, w_v: np.ndarray) -> tuple[float, float]:
    """Upper bounds on ‖W_Q W_Kᵀ‖₂ (the float64 product's rounding error added) and ‖W_V‖₂."""
    product_error = 2 * w_q.shape[1] * 2.0**-53 * np.linalg.norm(w_q) * np.linalg.norm(w_k)
    return float_up(spectral_norm(w_q @ w_k.T) + float(product_error)), spectral_norm(w_v)


def attention_bound(m_norm: float, v_norm: float, n: int, radius: float) -> float:
    """‖W_V‖(√n + ‖M‖ R²) from the two norms: the Lipschitz bound of Attn on inputs of norm ≤ R."""
    return float_up(v_norm * (math.sqrt(n) * (1 + 1e-15) + m_norm * radius * radius) * (1 + 1e-14))


def attention_lipschitz(w_q: np.ndarray, w_k: np.ndarray, w_v: np.ndarray, n: int, radius: float) -> float:
    """‖W_V‖(√n + ‖W_Q W_Kᵀ‖ R²): a Lipschitz bound of Attn on inputs of Frobenius norm ≤ R."""
    return attention_bound(*attention_norms(w_q, w_k, w_v), n, radius)


def attention_growth(w_v: np.ndarray, n: int) -> float:
    """√n ‖W_V‖: ‖Attn(X)‖ ≤ this times ‖X‖ (rows of softmax · X are convex combinations)."""
    return float_up(math.sqrt(n) * spectral_norm(w_v) * (1 + 1e-15))
