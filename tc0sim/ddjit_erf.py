"""A certified double-double erf for 26 <= p <= 53 (numbers layer, compiled by numba).

erf(x) = (2/√π)·e^(−x²)·S, S = Σ_{n>=0} x·(2x²)^n / (1·3···(2n+1)) (M. Abramowitz, I. A. Stegun,
*Handbook of Mathematical Functions*, 7.1.6): every term positive for x > 0, so each rounding
error is relative to the sum. Terms, sum and products are double-doubles whose errors are bounded
in docs/semantics.md §2.7 ("erf"); the result is rounded by Theorem 2 (``ddjit._certify``) with
the bound |hi|·2^-69 (the budget gives 2^-70.9), and flagged (NaN) where not certain. Same
contract as ``ddjit.exp_p``: a flag is recomputed by MPFR, so a flag is always safe.
"""

from __future__ import annotations

import math

import gmpy2
import numpy as np

from tc0sim.ddjit import _certify, _dd_exp, _product_error, _square_error, _two_sum_error, inline, jit

__all__ = ["ERF_DD_RELATIVE_ERROR", "ERF_ONE", "ERF_LINEAR", "ERF_MIN", "MAX_TERMS", "dd_erf", "erf_p"]

ERF_DD_RELATIVE_ERROR = 2.0**-69
"""The bound certified, relative to |hi| (the budget in docs/semantics.md §2.7 gives 2^-70.9)."""
ERF_ONE = 6.0
"""|x| >= 6: round_p(erf(x)) = ±1 for every p <= 53 (erfc(6) < 2^-55, docs)."""
ERF_LINEAR = 2.0**-40
"""|x| < 2^-40: erf(x) = (2/√π)·x·(1 + θ), |θ| <= x²/3 < 2^-81.5 (alternating series)."""
ERF_MIN = 2.0**-960
"""|x| below this is flagged (MPFR): (2/√π)·x's Dekker product would underflow."""
MAX_TERMS = 160
"""Series terms allowed (|x| < 6 stops by n = 115); an element that needs more is flagged."""


def _constants() -> tuple[float, float, np.ndarray, np.ndarray]:
    """2/√π and 1/(2n+1), n < MAX_TERMS, as normalised double-doubles rounded from MPFR at 200 bits
    (each within 2^-106 relative)."""
    ctx = gmpy2.context(precision=200)
    c = ctx.div(2, ctx.sqrt(ctx.const_pi()))
    inv = [ctx.div(1, 2 * n + 1) for n in range(MAX_TERMS)]
    ih = np.array([float(v) for v in inv])
    il = np.array([float(ctx.sub(v, h)) for v, h in zip(inv, ih)])
    return float(c), float(ctx.sub(c, float(c))), ih, il


_CH, _CL, _IH, _IL = _constants()


@inline
def _mul(ah: float, al: float, bh: float, bl: float) -> tuple[float, float]:
    """(ah + al)·(bh + bl) as a normalised double-double, relative error <= 8.01·u² (docs):
    Dekker's exact ah·bh, the cross terms in binary64, al·bl dropped, renormalised by TwoSum."""
    ph = ah * bh
    c = _product_error(ah, bh, ph) + (ah * bl + al * bh)
    hi = ph + c
    return hi, _two_sum_error(ph, c, hi)


@inline
def _add(ah: float, al: float, bh: float, bl: float) -> tuple[float, float]:
    """(ah + al) + (bh + bl) for positive double-doubles, normalised, relative error <= 3.01·u²."""
    s = ah + bh
    c = _two_sum_error(ah, bh, s) + (al + bl)
    hi = s + c
    return hi, _two_sum_error(s, c, hi)


@inline
def _series(a: float, zh: float, zl: float) -> tuple[float, float, bool]:
    """S for a > 0 and z = 2a² = zh + zl (exact): the terms t_n = t_(n−1)·z·(1/(2n+1)) summed
    until the tail, <= 2r·t_n once r = z/(2n+3) <= 1/2, is below 2^-81·S; False if MAX_TERMS
    are not enough."""
    th, tl, sh, sl = a, 0.0, a, 0.0
    for n in range(1, MAX_TERMS):
        d = 2.0 * n + 1.0  # 2(n − 1) + 3 for the tail after t_(n−1)
        if (2.0 * zh <= d * (1.0 - 2.0**-40)) & (2.0 * zh * th <= d * sh * 2.0**-82):
            return sh, sl, True
        th, tl = _mul(th, tl, zh, zl)
        th, tl = _mul(th, tl, _IH[n], _IL[n])
        sh, sl = _add(sh, sl, th, tl)
    return sh, sl, False


@inline
def _erf_abs(a: float) -> tuple[float, float, bool]:
    """erf(a) for ERF_LINEAR <= a < ERF_ONE as a double-double within 2^-70.9 relative."""
    h = a * a
    l = _square_error(a, h)  # a² = h + l exactly
    sh, sl, ok = _series(a, 2.0 * h, 2.0 * l)
    eh, el, _ = _dd_exp(-h)  # e^-h within 2^-71 relative (h <= 36: far from underflow)
    c = el - eh * l  # e^-l = 1 − l + θ, |θ| <= l²: e^(−a²) ≈ (eh + el)·(1 − l)
    eh2 = eh + c
    el2 = _two_sum_error(eh, c, eh2)
    ph, pl = _mul(_CH, _CL, sh, sl)
    hi, lo = _mul(ph, pl, eh2, el2)
    return hi, lo, ok


@inline
def _dd_erf(v: float) -> tuple[float, float, float]:
    """(hi, lo, bound), |erf(v) − (hi + lo)| <= bound = |hi|·ERF_DD_RELATIVE_ERROR, |lo| <= ulp(hi)/2,
    for ERF_MIN <= |v| < ERF_ONE; bound infinite elsewhere (NaN included) and where the series
    needs more than MAX_TERMS terms."""
    a = abs(v)
    inside = (a >= ERF_MIN) & (a < ERF_ONE)  # False for NaN
    a = a if inside else 1.0
    if a < ERF_LINEAR:
        hi, lo = _mul(_CH, _CL, a, 0.0)
        ok = True
    else:
        hi, lo, ok = _erf_abs(a)
    sign = math.copysign(1.0, v)
    return hi * sign, lo * sign, abs(hi) * ERF_DD_RELATIVE_ERROR if inside & ok else np.inf


@jit
def _dd_erf_loop(x: np.ndarray, out: np.ndarray) -> None:
    for i in range(x.size):
        out[0, i], out[1, i], out[2, i] = _dd_erf(x[i])


def dd_erf(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hi, lo, bound) of ``_dd_erf`` per element of a float64 array (for tests); bound is
    infinite where no certificate is attempted."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    out = np.empty((3, *x.shape))
    _dd_erf_loop(x.reshape(-1), out.reshape(3, -1))
    return out[0], out[1], out[2]


@jit
def erf_p(x: np.ndarray, p: int, out: np.ndarray, flagged: np.ndarray) -> None:
    """round_p(erf(x)) over a flat array in one pass, certified by Theorem 2; erf(±0) = ±0 and
    ±1 for 6 <= |x| < inf are exact (docs); NaN, ±inf, |x| < ERF_MIN and uncertain elements
    flagged (NaN)."""
    for i in range(x.size):
        v = x[i]
        if v == 0.0:
            out[i], flagged[i] = v, False
        elif (abs(v) >= ERF_ONE) & (abs(v) < np.inf):
            out[i], flagged[i] = math.copysign(1.0, v), False
        else:
            hi, lo, bound = _dd_erf(v)
            out[i], ok = _certify(hi, lo, bound, False, p)
            flagged[i] = not ok
