"""Operator norms and Lipschitz upper bounds of the layers (Frobenius norm on every tensor).

* Resamplers: the bicubic up-sampler and the area down-sampler act on a map X[h, w, c] as
  ``(R_h ⊗ R_w) X`` per channel, so their operator norm is ``‖R_h‖₂ · ‖R_w‖₂`` (the spectral norm
  of a Kronecker product is the product). ``R`` has exact rational entries; its spectral norm
  √λ_max(RᵀR) is computed with mpmath at 40 digits and rounded up to a float64.
* Matrices with float64 entries (weights, convolutions unrolled to matrices): LAPACK's SVD is
  backward stable, its largest singular value is within a relative O(size·2⁻⁵³) of the true one;
  :func:`spectral_norm` enlarges it by a relative :data:`SVD_MARGIN` (far above that for the sizes
  used here) to make it an upper bound.
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

import mpmath
import numpy as np

from tc0sim.approx.exact import float_up
from tc0sim.ops.conv2d import same_padding
from tc0sim.ops.upsample import bicubic_taps

SVD_MARGIN = 1e-10
RATIONAL_DIGITS = 40


def spectral_norm(a: np.ndarray) -> float:
    """An upper bound on ‖A‖₂ of a float64 matrix: LAPACK's σ_max enlarged by SVD_MARGIN."""
    a = np.asarray(a, dtype=np.float64)
    if a.size == 0:
        return 0.0
    sigma = float(np.linalg.norm(a.reshape(a.shape[0], -1), 2))
    return float_up(sigma * (1 + SVD_MARGIN))


def rational_spectral_norm(rows: list[list[Fraction]]) -> float:
    """‖R‖₂ of a matrix of Fractions: √λ_max(RᵀR) at 40 digits, rounded up to a float64."""
    cols = len(rows[0])
    gram = [[sum((r[i] * r[j] for r in rows), Fraction(0)) for j in range(cols)] for i in range(cols)]
    with mpmath.workdps(RATIONAL_DIGITS):
        g = mpmath.matrix([[mpmath.mpf(x.numerator) / x.denominator for x in row] for row in gram])
        eigenvalues = mpmath.eigsy(g, eigvals_only=True)
        top = max(eigenvalues)
        value = mpmath.sqrt(max(top, 0)) * (1 + mpmath.mpf(10) ** (10 - RATIONAL_DIGITS))
        return float_up(float(value))


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


def attention_lipschitz(w_q: np.ndarray, w_k: np.ndarray, w_v: np.ndarray, n: int, radius: float) -> float:
    """‖W_V‖(√n + ‖W_Q W_Kᵀ‖ R²): a Lipschitz bound of Attn on inputs of Frobenius norm ≤ R."""
    product_error = 2 * w_q.shape[1] * 2.0**-53 * np.linalg.norm(w_q) * np.linalg.norm(w_k)
    m_norm = float_up(spectral_norm(w_q @ w_k.T) + float(product_error))
    v_norm = spectral_norm(w_v)
    return float_up(v_norm * (math.sqrt(n) * (1 + 1e-15) + m_norm * radius * radius) * (1 + 1e-14))


def attention_growth(w_v: np.ndarray, n: int) -> float:
    """√n ‖W_V‖: ‖Attn(X)‖ ≤ this times ‖X‖ (rows of softmax · X are convex combinations)."""
    return float_up(math.sqrt(n) * spectral_norm(w_v) * (1 + 1e-15))
