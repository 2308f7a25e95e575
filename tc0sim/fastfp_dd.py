"""F_p for 26 <= p <= 53 on float64 arrays: binary64, error-free transformations, certificates.

A basic primitive is computed in binary64 (s = RN_53 of the exact result x) and rounded to p bits
on the bit pattern; that double rounding is wrong only where s is exactly a p-bit midpoint and
x != s, and there the sign of x − s, computed exactly by TwoSum or Dekker's product, breaks the tie
(for p = 53, s is the answer). ⊕, ⊗, exp and erf are double-doubles with rigorous error bounds
(tc0sim.ddarith), certified when no p-bit midpoint lies within the bound. Proofs and references:
docs/semantics.md §2.7. Every method returns (values, flagged): flagged elements (NaN) are out
of binary64's normal range or uncertified, and the caller recomputes them with MPFR
(``tc0sim.fp.Format``), which gives the value or raises the error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from tc0sim.ddarith import dd_product, product_error, two_sum_error

__all__ = ["MIN_P", "MAX_P", "Kernels53", "supports"]

MIN_P, MAX_P = 26, 53
"""The precisions served here (p <= 25 has tc0sim.fastfp; above 53 a value is not a float64)."""

_ABS = np.int64(0x7FFF_FFFF_FFFF_FFFF)
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

SIGN_OF_B: dict[str, float] = {"add": 1.0, "sub": -1.0}
"""The primitives a + (±b) that ``map`` computes in one fused pass, rounding included."""

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
        self._work = np.empty(0, dtype=np.int64)
        from tc0sim import ddjit, ddjit_erf, ddsum  # numba (0.1 s to import) only for a run at these precisions

        self.jit = ddjit
        self.sums = ddsum
        self.fused = {"exp": ddjit.exp_p, "erf": ddjit_erf.erf_p}
        """The one-pass certified kernels of one-operand primitives: f(x, p, out, flagged)."""

    maps = frozenset(BINARY64) | {"exp", "erf"}
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
        flat = s.reshape(-1)
        at_mid = np.empty(flat.size, bool)
        count = self.jit.round_off_midpoints(flat, self.p, at_mid)  # one pass; midpoints left
        if not count:
            return
        mid = np.flatnonzero(at_mid)
        # p near 53 (many midpoints): the residual is cheaper on every element than gathered
        res = residual(None)[mid] if 8 * count > flat.size else residual(mid)
        self.jit.round_midpoints(flat, mid, np.ascontiguousarray(res, dtype=np.float64), self.p)

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
        """round_p(prim(*args)) elementwise for the basic primitives, exp and erf (broadcasting);
        the values written into ``out`` (C-contiguous, the broadcast shape) if given."""
        if prim in self.fused:
            return self._fused(prim, args[0], out)
        args = tuple(np.asarray(a, dtype=np.float64) for a in args)
        shape = np.broadcast_shapes(*(a.shape for a in args))
        s = np.empty(shape) if out is None else out
        assert s.shape == shape and s.flags.c_contiguous
        if prim in SIGN_OF_B:  # one fused pass (ddjit.add_p)
            a, b = (np.ascontiguousarray(np.broadcast_to(v, shape)).reshape(-1) for v in args)
            flagged = np.empty(shape, bool)
            self.jit.add_p(a, b, SIGN_OF_B[prim], self.p, s.reshape(-1), flagged.reshape(-1))
            return s, flagged
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
        hi, lo, bound, exact = np.broadcast_arrays(*(np.asarray(a) for a in (hi, lo, bound, exact)))
        flat = [np.ascontiguousarray(a, dtype=t).reshape(-1) for a, t in ((hi, float), (lo, float), (bound, float), (exact, bool))]
        r, flagged = np.empty(hi.shape), np.empty(hi.shape, bool)
        self.jit.certify(*flat, self.p, r.reshape(-1), flagged.reshape(-1))
        return r, flagged

    def exp(self, x: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """round_p(e^x) in one fused pass (tc0sim.ddjit.exp_p): the double-double exp, error
        <= 2^-71, certified by Theorem 2; e^0 = 1 is exact. Written into ``out`` if given."""
        return self._fused("exp", x, out)

    def erf(self, x: np.ndarray, out: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """round_p(erf(x)) in one fused pass (tc0sim.ddjit_erf.erf_p): the double-double series,
        error <= 2^-70.9, certified by Theorem 2; erf(±0) = ±0 and ±1 for |x| >= 6 are exact."""
        return self._fused("erf", x, out)

    def _fused(self, prim: str, x: np.ndarray, out: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """``fused[prim]`` over x (broadcast to ``out``, C-contiguous, if given): (values, flagged)."""
        x = np.ascontiguousarray(np.broadcast_to(x, out.shape) if out is not None else x, dtype=np.float64)
        r = np.empty(x.shape) if out is None else out
        flagged = np.empty(x.shape, bool)
        self.fused[prim](x.reshape(-1), self.p, r.reshape(-1), flagged.reshape(-1))
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
        """round_p(exact Σ) over ``axis`` (⊕, VAR Lemma 3.5 Part 3), one fused pass per row
        (tc0sim.ddsum.sum_rows: certified extraction, then a compensated sum where it cancels)."""
        rows, out_shape = self._rows(x, axis)
        n, k = rows.shape
        r, flagged = np.zeros(n), np.zeros(n, bool)
        if k:
            self.sums.sum_rows(rows, self.p, r, flagged)
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


REDUCTIONS: dict[str, Callable[..., tuple[np.ndarray, np.ndarray]]] = {"sum": Kernels53.sum, "prod": Kernels53.prod}
