"""F_p for 26 <= p <= 53 on float64 arrays: binary64, error-free transformations, certificates.

A basic primitive is computed in binary64 (s = RN_53 of the exact result x) and rounded to p bits
on the bit pattern; that double rounding is wrong only where s is exactly a p-bit midpoint and
x != s, and there the sign of x − s, computed exactly by TwoSum or Dekker's product, breaks the tie
(for p = 53, s is the answer). ⊕, ⊗ and exp are double-doubles with rigorous error bounds
(tc0sim.ddarith), certified when no p-bit midpoint lies within the bound. Proofs and references:
docs/semantics.md §2.7. Every method returns (values, flagged): flagged elements (NaN) are out
of binary64's normal range or uncertified, and the caller recomputes them with MPFR
(``tc0sim.fp.Format``), which gives the value or raises the error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from tc0sim.ddarith import U, compensated_sum, dd_exp, dd_product, extracted_sum, product_error, reducible, two_sum_error

__all__ = ["MIN_P", "MAX_P", "EXP_RELATIVE_ERROR", "NUMPY_EXP_MAX_P", "PLAIN_SUM_LIMIT", "Kernels53", "supports"]

MIN_P, MAX_P = 26, 53
"""The precisions served here (p <= 25 has tc0sim.fastfp; above 53 a value is not a float64)."""

EXP_RELATIVE_ERROR = 2.0**-40
"""Bound assumed on numpy exp's relative error, as in tc0sim.fastfp (documented <= 1 ulp)."""

NUMPY_EXP_MAX_P = 32
"""Up to this p numpy's exp is tried first (it leaves about 2^(p−39) of the elements uncertified,
which the double-double exp then takes); above it the double-double exp does all of them."""

PLAIN_SUM_LIMIT = 44
"""A ⊕ of k terms first tries the plain binary64 sum when p + log2(k) <= this (beyond it the
bound 2·k·u·Σ|t| covers most p-bit midpoint gaps and certifies almost nothing)."""

_ABS = np.int64(0x7FFF_FFFF_FFFF_FFFF)
_EXP_FIELD = np.int64(0x7FF0_0000_0000_0000)
_FRACTION = np.int64(0x000F_FFFF_FFFF_FFFF)
_LO_BITS = int(np.float64(2.0**-1022).view(np.int64)) + 1
_HI_BITS = int(np.float64(np.finfo(np.float64).max).view(np.int64))


def supports(p: int) -> bool:
    """Whether these kernels are proven for precision p."""
    return MIN_P <= p <= MAX_P


def _unit(x: np.ndarray, even: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """x = m·2^e with m in [1/2, 1) (in [1/2, 2) and e even if ``even``); exact."""
    m, e = np.frexp(x)
    if even:
        odd = (e & 1).astype(bool)
        m, e = np.where(odd, 2 * m, m), np.where(odd, e - 1, e)
    return m, e


def _mul_residual(s: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    (ma, ea), (mb, eb) = _unit(a), _unit(b)
    s1 = np.ldexp(s, -(ea + eb))
    return product_error(ma, mb, s1)


def _div_residual(s: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a/b − q has the sign of (a − q·b)·sign(b); a − h is exact (Sterbenz), l = q·b − h exact."""
    (ma, ea), (mb, eb) = _unit(a), _unit(b)
    q = np.ldexp(s, -(ea - eb))
    h = q * mb
    return ((ma - h) - product_error(q, mb, h)) * np.sign(mb)


def _sqrt_residual(s: np.ndarray, a: np.ndarray) -> np.ndarray:
    """√a − s has the sign of a − s²; a − h is exact (Sterbenz), l = s² − h exact."""
    ma, ea = _unit(a, even=True)
    s1 = np.ldexp(s, -(ea // 2))
    h = s1 * s1
    return (ma - h) - product_error(s1, s1, h)


RESIDUALS: dict[str, Callable[..., np.ndarray]] = {
    "add": lambda s, a, b: two_sum_error(a, b, s),
    "sub": lambda s, a, b: two_sum_error(a, -b, s),
    "mul": _mul_residual,
    "div": _div_residual,
    "sqrt": _sqrt_residual,
}
"""A value with the sign of x − s, for the exact result x and s = fl(x) a normal binary64 number
(where s is a p-bit midpoint). Operands are first scaled by powers of two into [1/2, 2) (exact,
and s with them, since s is normal and lands in [1/4, 2)), so that Dekker's product never over-
or underflows."""

BINARY64: dict[str, Callable[..., np.ndarray]] = {
    "add": np.add, "sub": np.subtract, "mul": np.multiply, "div": np.divide, "sqrt": np.sqrt,
}
"""The correctly rounded binary64 operation of each basic primitive (IEEE 754)."""

EXACT_ZERO: dict[str, Callable[..., np.ndarray]] = {
    "add": lambda a, b: a == -b, "sub": lambda a, b: a == b, "mul": lambda a, b: (a == 0) | (b == 0),
    "div": lambda a, b: (a == 0) & (b != 0), "sqrt": lambda a: a == 0,
}
"""Where a zero result is the exact result (a zero is never 'in range')."""


class Kernels53:
    """The binary64 kernels of F_p for one precision 26 <= p <= 53."""

    def __init__(self, p: int) -> None:
        if not supports(p):
            raise ValueError(f"the double-double kernels support {MIN_P} <= p <= {MAX_P}, got {p}")
        self.p = p
        self.s = 53 - p
        self.half = (1 << self.s) >> 1
        self.low_mask = np.int64((1 << self.s) - 1)
        self.keep_mask = np.int64(~((1 << self.s) - 1))
        self._work = np.empty(0, dtype=np.int64)
        self.delta_min_bits = (p + 2) << 52
        """Bits of 2^(p + 2 − 1023): |r| at least this keeps δ/2 = 2^(E_r − p − 1) normal."""

    maps = frozenset(BINARY64) | {"exp"}
    """The elementwise primitives ``map`` computes (by kernel name)."""

    def magnitudes_safe(self, lo: float, hi: float) -> bool:
        """No interval proof is used at these precisions (every result is range-checked):
        the answer to tc0sim.fastfp.Kernels.magnitudes_safe is always no."""
        return False

    # --- rounding and range ----------------------------------------------------------------

    def in_range(self, r: np.ndarray) -> np.ndarray:
        """True where |r| is a finite binary64 value above 2^-1022 (F_p's range is wider for
        p >= 11, so every such p-bit value is in F_p's range); zeros and NaN are False."""
        r = np.asarray(r)
        a = np.bitwise_and(r.view(np.int64), _ABS, out=self._scratch(r.shape))
        a -= _LO_BITS
        return a.view(np.uint64) <= np.uint64(_HI_BITS - _LO_BITS)

    def _scratch(self, shape: tuple[int, ...]) -> np.ndarray:
        """An int64 work array of ``shape``, reused from call to call: a fresh large array costs a
        page fault per 4 kB page on its first write (a Kernels53 serves one thread)."""
        n = math.prod(shape)
        if self._work.size < n:
            self._work = np.empty(n, dtype=np.int64)
        return self._work[:n].reshape(shape)

    def _round_resolved(self, s: np.ndarray, residual: Callable[[np.ndarray], np.ndarray]) -> None:
        """Round the C-contiguous s, |x − s| <= ulp_53(s)/2, to p bits in place as x, where
        ``residual(i)`` gives a value with the sign of x − s at the flat indices i where s is a
        p-bit midpoint (0: x = s, a true tie), or at every element for i = None."""
        b = s.reshape(-1).view(np.int64)
        at_mid = (b & self.low_mask) == self.half
        t = np.right_shift(b, self.s)
        t &= 1
        t += self.half - 1
        mid = np.flatnonzero(at_mid)
        if 8 * mid.size > b.size:  # p near 53: cheaper on every element than gathered
            res = residual(None)
            up = np.where(res == 0, t, self.half - 1 + ((res > 0) == (s.reshape(-1) > 0)))
            t = np.where(at_mid, up, t)
        elif mid.size:
            res = residual(mid)
            away = (res > 0) == (s.reshape(-1)[mid] > 0)
            t[mid] = np.where(res == 0, t[mid], self.half - 1 + away)
        b += t
        b &= self.keep_mask

    def round(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """round_p of arbitrary binary64 values (one rounding of an exact input); subnormal,
        non-finite and overflowing elements are flagged."""
        r = np.array(x, dtype=np.float64, order="C", copy=True)
        nonzero = r != 0
        if self.p < 53:
            self._round_resolved(r, lambda i: np.zeros(r.size if i is None else i.size))
        return self._finish(r, nonzero)

    def _finish(self, r: np.ndarray, nonzero: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        flagged = ~self.in_range(r) & nonzero
        r[flagged] = np.nan
        return r, flagged

    # --- elementwise primitives ------------------------------------------------------------

    def map(self, prim: str, *args: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """round_p(prim(*args)) elementwise for the basic primitives and exp (broadcasting); the
        values written into ``out`` (C-contiguous, the broadcast shape) if given, except for exp."""
        if prim == "exp":
            return self.exp(args[0])
        args = tuple(np.asarray(a, dtype=np.float64) for a in args)
        shape = np.broadcast_shapes(*(a.shape for a in args))
        s = np.empty(shape) if out is None else out
        assert s.shape == shape and s.flags.c_contiguous
        with np.errstate(all="ignore"):
            BINARY64[prim](*args, out=s)

            def residual(i: np.ndarray | None) -> np.ndarray:
                if i is None:
                    return RESIDUALS[prim](s.reshape(-1), *(np.broadcast_to(a, shape).reshape(-1) for a in args))
                where = np.unravel_index(i, shape)
                return RESIDUALS[prim](s.reshape(-1)[i], *(np.broadcast_to(a, shape)[where] for a in args))

            if self.p < 53:
                self._round_resolved(s, residual)
            ok = self.in_range(s)
            flagged = np.zeros(shape, bool)
            if ok.all():
                return s, flagged
            bad = np.flatnonzero(~ok.reshape(-1))
            where = np.unravel_index(bad, shape)
            zero = EXACT_ZERO[prim](*(np.broadcast_to(a, shape)[where] for a in args))
            bad = bad[~zero]  # elsewhere s is the exact (signed) zero
            flagged.reshape(-1)[bad] = True
            s.reshape(-1)[bad] = np.nan
        return s, flagged

    # --- certified rounding of an approximation --------------------------------------------

    def certified_round(
        self, hi: np.ndarray, lo: np.ndarray, bound: np.ndarray, exact: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """round_p(x) for reals x with |x − (hi + lo)| <= bound, |lo| <= ulp(hi)/2: the values
        r = round_p(hi + lo) and where they are certain (``exact``: x = hi + lo). Certain when no
        p-bit midpoint lies within bound of z = hi + lo: the one next to r on z's side, m, is
        farther (|hi| − m computed exactly as (|hi| − |r|) ∓ δ, δ = 2^(E_r − p), or δ/2 below a
        power of two, δ_t), and bound < δ_t/4 keeps the other one out of reach (docs, Theorem 2)."""
        r = np.array(hi, dtype=np.float64, order="C", copy=True)
        lo_flat = np.ascontiguousarray(lo, dtype=np.float64).reshape(-1)
        if self.p < 53:
            self._round_resolved(r, lambda i: lo_flat if i is None else lo_flat[i])
        with np.errstate(all="ignore"):
            sign = np.copysign(1.0, r)
            away = ((hi - r) + lo) * sign > 0  # z lies beyond |r|, away from zero
            rb = r.view(np.int64) & _ABS
            delta = ((rb & _EXP_FIELD) - (self.p << 52)).view(np.float64)
            toward = np.where((rb & _FRACTION) == 0, delta * 0.5, delta)
            offset = (np.abs(hi) - np.abs(r)) - np.where(away, delta, -toward)  # |hi| − m, exact
            dist = np.abs(offset + lo * sign)
            certain = (dist > bound + bound * 2.0**-50) & (bound < toward * 0.25) & (rb >= self.delta_min_bits)
            ok = self.in_range(r) & (certain | exact) | (exact & (hi == 0))
        r[~ok] = np.nan
        return r, ~ok

    def exp(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """round_p(e^x): numpy's exp certified with EXP_RELATIVE_ERROR for p <= NUMPY_EXP_MAX_P,
        the double-double exp (ddarith.dd_exp, error <= 2^-71) for the rest; e^0 = 1 is exact."""
        x = np.asarray(x, dtype=np.float64)
        zero = x == 0
        if self.p <= NUMPY_EXP_MAX_P:
            with np.errstate(all="ignore"):
                y = np.exp(x)
                bound = y * (2 * EXP_RELATIVE_ERROR)  # >= ε·e^x/(1 − ε); a power of two scaling is exact
            r, flagged = self.certified_round(y, np.zeros_like(y), bound, zero)
        else:
            r, flagged = np.empty(x.shape), np.ones(x.shape, bool)
        todo = np.flatnonzero(flagged.reshape(-1))
        if todo.size:
            hi, lo, bound = dd_exp(x.reshape(-1)[todo])
            r.reshape(-1)[todo], flagged.reshape(-1)[todo] = self.certified_round(hi, lo, bound, zero.reshape(-1)[todo])
        return r, flagged

    # --- reductions ------------------------------------------------------------------------

    @staticmethod
    def _rows(x: np.ndarray, axis: int | Sequence[int]) -> tuple[np.ndarray, tuple[int, ...]]:
        """x with the reduced axes last, as a C-contiguous (outputs, k) array, and the out shape."""
        x = np.asarray(x, dtype=np.float64)
        axes = [a % x.ndim for a in ((axis,) if isinstance(axis, (int, np.integer)) else axis)]
        kept = [i for i in range(x.ndim) if i not in axes]
        out_shape = tuple(x.shape[i] for i in kept)
        k = math.prod(x.shape[a] for a in axes)
        return np.ascontiguousarray(x.transpose(kept + axes)).reshape(math.prod(out_shape), k), out_shape

    def sum(self, x: np.ndarray, axis: int | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """round_p(exact Σ) over ``axis`` (⊕, VAR Lemma 3.5 Part 3): the plain binary64 sum where
        it certifies (small p), then each of SUM_STAGES on the rows still uncertified."""
        rows, out_shape = self._rows(x, axis)
        n, k = rows.shape
        r = np.zeros(n)
        flagged = np.zeros(n, bool)
        todo = np.arange(n)
        if k == 0:
            return r.reshape(out_shape), flagged.reshape(out_shape)
        if self.p + math.log2(k) <= PLAIN_SUM_LIMIT and k > 2:
            terms, along = reducible(rows)
            with np.errstate(all="ignore"):
                y = terms.sum(axis=along)
                bound = np.abs(terms).sum(axis=along) * (2.0 * k * U)  # >= γ_(k−1)·Σ|t| (Higham §4.2)
            r, flagged = self.certified_round(y, np.zeros(n), bound, np.zeros(n, bool))
            todo = np.flatnonzero(flagged)
        for stage in SUM_STAGES:
            if not todo.size:
                break
            r[todo], flagged[todo] = self.certified_round(*stage(rows if todo.size == n else rows[todo]))
            todo = todo[flagged[todo]]
        return r.reshape(out_shape), flagged.reshape(out_shape)

    def prod(self, x: np.ndarray, axis: int | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """round_p(exact Π) over ``axis`` (⊗, one rounding): a normalised double-double product."""
        rows, out_shape = self._rows(x, axis)
        n, k = rows.shape
        with np.errstate(all="ignore"):
            h, l, e, bound = dd_product(rows)
            scaled, flagged = self.certified_round(h, l, bound, np.full(n, k <= 2))
            r = np.ldexp(scaled, np.clip(e, -4000, 4000).astype(np.int32))
        zero = (rows == 0).any(axis=1)
        flagged = (flagged | ~self.in_range(r)) & ~zero
        r[zero] = 0.0
        r[flagged] = np.nan
        return r.reshape(out_shape), flagged.reshape(out_shape)

    def reduce(self, prim: str, x: np.ndarray, axis: int | Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
        """⊕ ("sum") or ⊗ ("prod") over ``axis``."""
        return REDUCTIONS[prim](self, x, axis)


SUM_STAGES = (extracted_sum, compensated_sum)
"""The double-double sums tried in turn on the rows not yet certified."""

REDUCTIONS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {"sum": Kernels53.sum, "prod": Kernels53.prod}
