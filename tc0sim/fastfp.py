"""F_p for small p on float64 arrays: binary64 arithmetic, one vectorised rounding, certificates.

Every F_p value with p <= 25 inside binary64's normal range is exactly a float64, so a float64
array can hold F_p values. The kernels here compute a primitive in binary64 and round the result
to p bits (ties to even) on the int64 bit view. Why that gives the bits of the MPFR engine:

* add, sub, mul, div, sqrt: binary64 rounds the exact result to 53 bits, and rounding that to p
  bits again equals rounding the exact result to p bits once when 53 >= 2p + 2 (S. A. Figueroa,
  "When is double rounding innocuous?", ACM SIGNUM Newsletter 30(3), 1995; P. Roux, "Innocuous
  double rounding of basic arithmetic operations", Journal of Formalized Reasoning 7(1), 2014),
  i.e. for p <= 25, provided the binary64 result is a normal number (no overflow, no underflow).
* exp: numpy's binary64 exp has a relative error far below ``EXP_RELATIVE_ERROR`` (2^-40; numpy's
  AVX-512 kernel follows Tang's table-driven method, proved below 0.77 ulp, and glibc's exp is
  below 1 ulp). An element is *certified* when no rounding boundary of F_p (a midpoint between
  two consecutive p-bit floats) lies within that bound of the binary64 value: then the exact
  e^x rounds to the same p-bit float. Other elements are recomputed by MPFR.
* sum (⊕): the binary64 sum of k terms, in any order, is within γ_k·Σ|t_i| of the exact sum
  (γ_k = k·u/(1 − k·u), u = 2^-53; N. J. Higham, "Accuracy and Stability of Numerical
  Algorithms", 2nd ed., §4.2); certified as for exp, or exact when every partial sum is a float64
  (all terms are multiples of 2^L and Σ|t_i| < 2^(L+52)); the rest are summed by MPFR.
* prod (⊗): significands (numpy.frexp) multiplied in binary64 are within γ_(k−1) relative error,
  the exponents are added as integers; exact when k·p <= 53.

Range: a result outside binary64's normal range, or outside F_p's (narrower for p <= 9 at the
top and p <= 10 at the bottom), is *flagged*; flagged elements are recomputed by MPFR, which
either gives the value or raises the MPFR engine's error.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

__all__ = ["MAX_FAST_P", "EXP_RELATIVE_ERROR", "EXP_SINGLE_RELATIVE_ERROR", "Kernels", "supports"]

MAX_FAST_P = 25
"""The largest p with 53 >= 2p + 2 (innocuous double rounding for add, sub, mul, div, sqrt)."""

EXP_RELATIVE_ERROR = 2.0**-40
"""Bound assumed on numpy exp's relative error (about 4096 binary64 ulps; documented ≤ 1 ulp)."""

EXP_SINGLE_RELATIVE_ERROR = 2.0**-17
"""Bound assumed on numpy's binary32 exp (64 binary32 ulps; its SIMD kernels are stated below 2.52
ulps, relative 2.1e-7, in numpy pull request 13134; glibc's expf is below 1 ulp)."""

EXP_SINGLE_ARGUMENTS = (2.0**-126, 80.0)
"""|x| range where binary32 exp is used: such a p-bit x (p <= 24) is a normal binary32 number, and
e^x lies in [e^-80, e^80], inside binary32's normal range."""

U = 2.0**-53
"""Unit roundoff of binary64."""

_ABS = np.int64(0x7FFF_FFFF_FFFF_FFFF)
_EXPONENT_FIELD = np.int64(0x7FF0_0000_0000_0000)
_SIGN = np.int64(-0x8000_0000_0000_0000)
_MIN_NORMAL_BITS = int(np.float64(2.0**-1022).view(np.int64))


def supports(p: int) -> bool:
    """Whether the fast kernels are proven for precision p."""
    return 2 <= p <= MAX_FAST_P


def _bits(x: float) -> int:
    return int(np.float64(x).view(np.int64))


class Kernels:
    """The float64 kernels of F_p for one precision p <= MAX_FAST_P."""

    def __init__(self, p: int) -> None:
        if not supports(p):
            raise ValueError(f"the fast kernels support 2 <= p <= {MAX_FAST_P}, got {p}")
        self.p = p
        self.s = 53 - p
        self.half = 1 << (self.s - 1)
        self.low_mask = (1 << self.s) - 1
        self.keep_mask = np.int64(~self.low_mask)
        fp_min = 2.0 ** (p - 1 - 2**p) if p <= 10 else 0.0
        fp_max = (2**p - 1) * 2.0 ** (2**p - 1) if p <= 9 else (2**p - 1) * 2.0 ** (1024 - p)
        # Lowest accepted magnitude: F_p's smallest value, or (p >= 11) strictly above 2^-1022, since
        # a subnormal binary64 result may round up to exactly 2^-1022.
        self.lo_bits = _bits(fp_min) if p <= 10 else _MIN_NORMAL_BITS + 1
        self.hi_bits = _bits(fp_max)
        self.lo = float(np.int64(self.lo_bits).view(np.float64))
        self.hi = fp_max
        self.magic = np.int64((self.s << 52) | (1 << 51))
        self.magic_limit = 2.0 ** (1021 - self.s)
        self.exp_threshold = certificate_threshold(EXP_RELATIVE_ERROR)
        """Certified exp elements are at least this many binary64 ulps from an F_p midpoint."""
        single = certificate_threshold(EXP_SINGLE_RELATIVE_ERROR)
        self.exp_single_threshold = single if p <= 24 and single <= 1 << (self.s - 2) else None
        """The same for binary32 exp, or None where that bound is too wide for p bits."""

    # --- rounding and range ------------------------------------------------------------------

    def round_inplace(self, x: np.ndarray, tmp: np.ndarray | None = None) -> np.ndarray:
        """Round a contiguous float64 array to p bits, ties to even, in place (normal inputs);
        ``tmp`` is an optional int64 work array of the same shape."""
        b = x.view(np.int64)
        t = np.right_shift(b, self.s, out=tmp)
        t &= 1
        t += self.half - 1
        b += t
        b &= self.keep_mask
        return x

    def round_safe_inplace(self, x: np.ndarray, tmp: np.ndarray | None = None) -> np.ndarray:
        """The same rounding in four passes, for arrays known to hold only zeros and normal values
        of magnitude below ``magic_limit``: with c = 1.5·2^(E+53−p) for x in [2^E, 2^(E+1)), x + c
        has ulp 2^(E+1−p) and c is an even multiple of it, so binary64's round-to-nearest-even of
        x + c rounds x to p bits, ties to even; (x + c) − c is exact (Sterbenz)."""
        return self.round_safe_into(x, x, tmp)

    def round_safe_into(self, x: np.ndarray, out: np.ndarray, tmp: np.ndarray | None = None) -> np.ndarray:
        """round_safe_inplace of x written into the C-contiguous ``out`` (x is left unchanged).
        c carries x's sign (so x + c rounds like |x| + |c|, symmetrically); (x + c) − c of a zero
        x is +0, so x's sign bit, kept in c, is put back on the result (a no-op for non-zero x,
        whose rounded value has its sign): −0 stays −0, as MPFR keeps it."""
        c = np.bitwise_and(x.view(np.int64), _EXPONENT_FIELD | _SIGN, out=tmp)
        c += self.magic
        cf = c.view(np.float64)
        np.add(x, cf, out=out)
        out -= cf
        c &= _SIGN
        out.view(np.int64)[...] |= c
        return out

    def rounded(self, x: np.ndarray) -> np.ndarray:
        """A rounded copy of x."""
        return self.round_inplace(np.array(x, dtype=np.float64, order="C", copy=True))

    def in_range(self, r: np.ndarray) -> np.ndarray:
        """True where |r| is a non-zero F_p value inside binary64's normal range (zeros are False)."""
        a = r.view(np.int64) & _ABS
        a -= self.lo_bits
        return a.view(np.uint64) <= np.uint64(self.hi_bits - self.lo_bits)

    def magnitudes_safe(self, lo: float, hi: float) -> bool:
        """Whether every non-zero result with |r| in [lo, hi] (before rounding) is in range and may
        use round_safe_inplace (a factor 2 covers the rounding of the result and of lo, hi)."""
        return lo >= 2 * self.lo and hi <= min(self.hi, self.magic_limit) / 2

    def midpoint_distance(self, r_bits: np.ndarray) -> np.ndarray:
        """Distance, in binary64 ulps, from each value to the F_p midpoint in its p-bit interval."""
        low = r_bits & self.low_mask
        low -= self.half
        return np.abs(low)

    # --- certificates ----------------------------------------------------------------------------

    def certify_exp(
        self, y: np.ndarray, tmp: np.ndarray | None = None, out: np.ndarray | None = None, threshold: int | None = None
    ) -> np.ndarray:
        """True where y = numpy exp(x) > 0 certainly rounds like e^x: the low bits L of y are at
        least t = ``threshold`` (default ``exp_threshold``) from the midpoint h, i.e. not
        L − (h − t + 1) ∈ [0, 2t − 2], computed modulo 2^(53−p) (h >= t)."""
        t_ulps = self.exp_threshold if threshold is None else threshold
        t = np.subtract(y.view(np.int64), self.half - t_ulps + 1, out=tmp)
        t &= self.low_mask
        return np.greater(t, 2 * t_ulps - 2, out=out)

    def round_certified_inplace(self, x: np.ndarray) -> np.ndarray:
        """Round a contiguous float64 array of non-negative values to p bits in two passes, ties
        upwards: right for every element that is not a tie, e.g. one certified as far from
        every midpoint (values of other elements are meaningless)."""
        b = x.view(np.int64)
        b += self.half
        b &= self.keep_mask
        return x

    def certify_absolute(self, y: np.ndarray, bound: np.ndarray) -> np.ndarray:
        """True where no F_p midpoint lies within ``bound`` of y (y normal, bound >= 0)."""
        bits = y.view(np.int64) & _ABS
        ulp_exponent = 1075 - (bits >> 52)
        with np.errstate(over="ignore"):
            ulps = np.ldexp(bound, ulp_exponent.astype(np.int32))
        dist = self.midpoint_distance(bits).astype(np.float64)
        return (ulps < dist) & (ulps < float(1 << (self.s - 2)))

    def sum_bound(self, abs_sum: np.ndarray, k: int) -> np.ndarray | None:
        """Rigorous bound 2·k·u·Σ|t| >= γ_k·Σ|t_exact| on the binary64 sum error; None if k·u is too big."""
        if k * U > 2.0**-10:
            return None
        return abs_sum * (2.0 * k * U)

    def exact_sum_rows(self, rows: np.ndarray) -> np.ndarray:
        """True for rows (2-d, one sum per row) whose binary64 sum is exact in any order."""
        if rows.shape[1] == 0:
            return np.ones(rows.shape[0], dtype=bool)
        _, exps = np.frexp(rows)
        exps = np.where(rows != 0, exps, np.iinfo(np.int32).max)
        low = exps.min(axis=1).astype(np.int64) - self.p
        total = np.abs(rows).sum(axis=1)
        with np.errstate(over="ignore"):  # 2^(L+52) beyond binary64 is an infinite limit, rightly
            limit = np.ldexp(1.0, np.clip(low + 52, -1100, 1100).astype(np.int32))
        return total < limit


def certificate_threshold(relative_error: float) -> int:
    """Binary64 ulps t such that y within ``relative_error`` ε of a positive z is less than t
    ulps of y from z: |y − z| <= ε·z <= ε·y/(1 − ε) < 2^53·ε/(1 − ε) ulps of y (y < 2^(E+1),
    ulp 2^(E−52)); t is one more than that bound rounded up (2^13 + 2 for ε = 2^-40)."""
    eps = Fraction(relative_error)
    return math.ceil(2**53 * eps / (1 - eps)) + 1


def compact(x: np.ndarray) -> np.ndarray:
    """The distinct elements of a broadcast view: zero-stride axes cut to length 1 (a view)."""
    index = tuple(slice(0, 1) if st == 0 and n > 1 else slice(None) for st, n in zip(x.strides, x.shape))
    return x[index]


def magnitude_range(x: np.ndarray, block: int = 1 << 16) -> tuple[float, float, bool, bool]:
    """(smallest non-zero |x|, largest |x|, has zeros, has negatives) of a float64 array of
    normal numbers and zeros, from the bit patterns in blocks (no full-size temporaries)."""
    c = np.ascontiguousarray(compact(x)).reshape(-1)
    if c.size == 0:
        return math.inf, 0.0, False, False
    lo, hi, zeros, negative = (1 << 64) - 1, -1, False, False
    work = np.empty(min(block, c.size), dtype=np.int64)
    for start in range(0, c.size, block):
        part = c[start:start + block]
        t = np.bitwise_and(part.view(np.int64), _ABS, out=work[: part.size])
        t -= 1
        u = t.view(np.uint64)
        lo = min(lo, int(u.min()))
        zeros = zeros or int(u.max()) == (1 << 64) - 1
        hi = max(hi, int(t.max()))
        negative = negative or bool(part.min() < 0)
    as_float = lambda b: float(np.int64(b).view(np.float64))  # noqa: E731
    smallest = math.inf if lo == (1 << 64) - 1 else as_float(lo + 1)
    return smallest, (as_float(hi + 1) if hi >= 0 else 0.0), zeros, negative
