"""The format F_p itself (VAR Definition 3.3) on gmpy2/MPFR: rounding, pairs, the scalar primitives
(one rounding each, Definition 3.4 and Lemma 3.5) and, from ``ArrayMethods``, the array path."""

from __future__ import annotations

import numbers
import operator
from decimal import Decimal
from fractions import Fraction
from typing import Any, Callable, Iterable, Sequence

import gmpy2
import numpy as np

from tc0sim.errors import MissingKernelError
from tc0sim.fp.arrays import ArrayMethods
from tc0sim.fp.errors import (DivisionByZero, FpArithmeticError, FpOverflow, FpUnderflow, NegativeSqrt,
                              NotRepresentableError, PrecisionError, show, show_terms)
from tc0sim.fp.kernels import KERNELS, Kernel, kernel_of
from tc0sim.fp.mpfr import GMPY_ERRORS, MPFR, MPFR_EMAX, MPFR_EMIN, MPQ, MPZ, TLS, get_exp, mpfr, widen_range


class Format(ArrayMethods):
    """The format F_p of VAR Definition 3.3 with round-to-nearest-even (Definition 3.4).

    ``emin``/``emax`` are MPFR exponents (a value in ``[2^(E-1), 2^E)`` has exponent E):
    ``emin = p - 2^p`` and ``emax = 2^p - 1 + p``, clamped to MPFR's limits for large p.
    """

    __slots__ = (
        "p", "emin", "emax", "e_lo", "e_hi", "clamped", "context", "zero", "one",
        "_fast", "_wide", "_bound",
    )

    def __init__(self, p: int) -> None:
        if isinstance(p, bool) or not isinstance(p, numbers.Integral):
            raise PrecisionError(f"precision must be an integer >= 2, got {p!r}")
        p = int(p)
        if p < 2:
            raise PrecisionError(f"precision must be an integer >= 2, got {p}")
        if p > gmpy2.get_max_precision():
            raise PrecisionError(f"precision {p} exceeds MPFR's maximum {gmpy2.get_max_precision()}")
        if not TLS.widened:
            widen_range()
        self.p = p
        big = p >= 64
        self.e_lo = None if big else -(2**p)
        self.e_hi = None if big else 2**p - 1
        emin = MPFR_EMIN if big else max(p - 2**p, MPFR_EMIN)
        emax = MPFR_EMAX if big else min(2**p - 1 + p, MPFR_EMAX)
        self.emin, self.emax = emin, emax
        self.clamped = big or emin != p - 2**p or emax != 2**p - 1 + p
        self.context = gmpy2.context(
            precision=p, round=gmpy2.RoundToNearest, emin=emin, emax=emax, subnormalize=False,
            trap_underflow=True, trap_overflow=True, trap_inexact=False, trap_invalid=True,
            trap_erange=True, trap_divzero=True, allow_complex=False, rational_division=False,
        )
        self._fast = gmpy2.context(
            precision=p, round=gmpy2.RoundToNearest, emin=emin, emax=emax, subnormalize=False,
            allow_complex=False, rational_division=False,
        )
        self._wide = gmpy2.context(
            precision=p, round=gmpy2.RoundToNearest, emin=MPFR_EMIN, emax=MPFR_EMAX,
        )
        self.zero = mpfr(0, p)
        self.one = mpfr(1, p)
        self._bound: dict[str, tuple[Kernel, Callable[..., Any]]] = {}

    def __repr__(self) -> str:
        return f"Format({self.p})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Format) and other.p == self.p

    def __hash__(self) -> int:
        return hash(("Format", self.p))

    def __reduce__(self) -> tuple[type, tuple[int]]:
        return (Format, (self.p,))

    # --- errors -----------------------------------------------------------------------------

    def _range_text(self) -> str:
        if self.clamped:
            return (
                f"the F_{self.p} exponent range as clamped to MPFR's limits "
                f"(MPFR exponents [{self.emin}, {self.emax}])"
            )
        return f"the F_{self.p} exponent range e in [{self.e_lo}, {self.e_hi}]"

    def _error(self, op: str, exc: BaseException, operands: str) -> FpArithmeticError:
        """Translate a gmpy2 trap into the tc0sim error that names the op and operands."""
        p = self.p
        k = KERNELS.get(op)
        invalid = k.invalid if k else FpArithmeticError
        zero_div = invalid is DivisionByZero and isinstance(exc, gmpy2.InvalidOperationError)
        if zero_div or isinstance(exc, (gmpy2.DivisionByZeroError, ZeroDivisionError)):
            return DivisionByZero(f"{op} division by zero at p={p}: {operands}")
        if isinstance(exc, gmpy2.OverflowResultError):
            cls = k.overflow if k else FpOverflow
            return cls(f"{op} overflow at p={p}: {operands} exceeds {self._range_text()}")
        if isinstance(exc, gmpy2.UnderflowResultError):
            return FpUnderflow(
                f"{op} underflow at p={p}: {operands} is non-zero and below {self._range_text()}"
            )
        if isinstance(exc, gmpy2.InvalidOperationError) and invalid is NegativeSqrt:
            return NegativeSqrt(f"{op} of a negative number at p={p}: {operands}")
        return FpArithmeticError(f"{op} failed at p={p}: {operands}: {exc}")

    def _operands(self, op: str, args: Sequence[Any]) -> str:
        k = KERNELS.get(op)
        if len(args) == 2 and k is not None and k.infix:
            return f"{show(args[0])} {k.infix} {show(args[1])}"
        return f"{op}({', '.join(show(a) for a in args)})"

    def _bound_kernel(self, name: str, reduction: bool) -> tuple[Kernel, Callable[..., Any]]:
        """Kernel ``name`` and its function bound to this format (bound on first use, and again
        if the kernel table has changed since); MissingKernelError without a kernel of that kind."""
        entry = self._bound.get(name)
        if entry is None or KERNELS.get(name) is not entry[0]:
            k = kernel_of(name, reduction)
            entry = self._bound[name] = (k, k.bind(self))
        elif (entry[0].arity is None) != reduction:
            raise MissingKernelError(name, "reduction" if reduction else "elementwise")
        return entry

    # --- conversion -------------------------------------------------------------------------

    def round(self, x: Any) -> Any:
        """round_p(x): exact conversion of x, then one rounding to nearest, ties to even.

        x may be an int, float, Fraction, Decimal, mpz/mpq/mpfr, numpy scalar, or a string
        (decimal "0.1", "-1e-3", or rational "3/7").  Non-finite or unparseable input raises
        NotRepresentableError; an out-of-range result raises FpOverflow / FpUnderflow.
        """
        if not TLS.widened:
            widen_range()
        v = self._exact(x)
        try:
            return mpfr(v, 0, self.context)
        except GMPY_ERRORS as exc:
            raise self._error("round", exc, f"round({x!r})") from None

    def _exact(self, x: Any) -> Any:
        """An exact gmpy2/Python value equal to x, accepted by mpfr()."""
        if isinstance(x, (MPFR, float)):
            if not gmpy2.is_finite(x):
                raise NotRepresentableError(f"round at p={self.p}: {x!r} is not a finite real number")
            return x
        if isinstance(x, (int, MPZ, MPQ)):
            return x
        if isinstance(x, Fraction):
            return gmpy2.mpq(x.numerator, x.denominator)
        if isinstance(x, np.integer):
            return int(x)
        if isinstance(x, np.floating):
            if not np.isfinite(x):
                raise NotRepresentableError(f"round at p={self.p}: {x!r} is not a finite real number")
            return gmpy2.mpq(*x.as_integer_ratio())
        if isinstance(x, (str, Decimal)):
            try:
                q = Fraction(x.strip() if isinstance(x, str) else x)
            except (ValueError, ZeroDivisionError, OverflowError) as exc:
                raise NotRepresentableError(
                    f"round at p={self.p}: {x!r} is not a finite real number ({exc})"
                ) from None
            return gmpy2.mpq(q.numerator, q.denominator)
        if isinstance(x, numbers.Rational):
            return gmpy2.mpq(int(x.numerator), int(x.denominator))
        raise NotRepresentableError(f"round at p={self.p}: cannot convert {type(x).__name__} {x!r}")

    def to_pair(self, x: Any) -> tuple[int, int]:
        """The canonical pair <m, e> of VAR Definition 3.3 (m == 0 gives (0, 0))."""
        if not isinstance(x, MPFR) or not x.is_finite():
            raise NotRepresentableError(f"to_pair at p={self.p}: {x!r} is not a finite mpfr")
        if x == 0:
            return (0, 0)
        m, e = x.as_mantissa_exp()
        p = self.p
        bl = m.bit_length()
        if bl > p:
            shift = bl - p
            if gmpy2.bit_scan1(m) < shift:
                raise NotRepresentableError(f"to_pair at p={p}: {show(x)} has more than {p} bits")
            m, e = m >> shift, e + shift
        elif bl < p:
            m, e = m << (p - bl), e - (p - bl)
        m, e = int(m), int(e)
        if not self._e_ok(e):
            raise NotRepresentableError(
                f"to_pair at p={p}: {show(x)} is outside {self._range_text()}"
            )
        return (m, e)

    def _e_ok(self, e: int) -> bool:
        """Whether a pair exponent e is in range (e + p is the MPFR exponent)."""
        return self.emin <= e + self.p <= self.emax

    def from_pair(self, m: int, e: int) -> Any:
        """The F_p value m * 2^e; NotRepresentableError unless <m, e> is a valid F_p pair.

        By Definition 3.3, <0, e> is valid for every e in range; it is the value 0.
        """
        if not TLS.widened:
            widen_range()
        try:
            m, e = operator.index(m), operator.index(e)
        except TypeError:
            raise NotRepresentableError(f"from_pair at p={self.p}: {m!r}, {e!r} are not integers") from None
        p = self.p
        am = abs(m)
        if not (am == 0 or (1 << (p - 1)) <= am < (1 << p)):
            raise NotRepresentableError(
                f"from_pair at p={p}: significand {m} is not 0 and not in 2^{p - 1} <= |m| < 2^{p}"
            )
        in_paper = self.e_lo is None or self.e_lo <= e <= self.e_hi
        if not in_paper or not self._e_ok(e):
            raise NotRepresentableError(f"from_pair at p={p}: exponent {e} is outside {self._range_text()}")
        if m == 0:
            return self.zero
        return self.context.mul_2exp(mpfr(m, p), e)

    def to_fraction(self, x: Any) -> Fraction:
        """The exact rational value of x."""
        if not isinstance(x, MPFR) or not x.is_finite():
            raise NotRepresentableError(f"to_fraction at p={self.p}: {x!r} is not a finite mpfr")
        n, d = x.as_integer_ratio()
        return Fraction(int(n), int(d))

    # --- scalar primitives (one rounding each) ------------------------------------------------

    def apply(self, name: str, *operands: Any) -> Any:
        """The elementwise kernel ``name`` on scalar F_p operands: one rounding (or none, if exact)."""
        if not TLS.widened:
            widen_range()
        k, fn = self._bound_kernel(name, reduction=False)
        if len(operands) != k.arity:
            raise ValueError(f"{name} takes {k.arity} operand(s), got {len(operands)}")
        try:
            r = fn(*operands)
        except GMPY_ERRORS as exc:
            raise self._error(name, exc, self._operands(name, operands)) from None
        return r if type(r) is MPFR else self.round(r)

    def add(self, a: Any, b: Any) -> Any:
        """round_p(a + b) (VAR Lemma 3.5 Part 1)."""
        return self.apply("add", a, b)

    def sub(self, a: Any, b: Any) -> Any:
        """round_p(a - b)."""
        return self.apply("sub", a, b)

    def mul(self, a: Any, b: Any) -> Any:
        """round_p(a * b)."""
        return self.apply("mul", a, b)

    def div(self, a: Any, b: Any) -> Any:
        """round_p(a / b); DivisionByZero when b == 0."""
        return self.apply("div", a, b)

    def max(self, a: Any, b: Any) -> Any:
        """max(a, b), exact."""
        return self.apply("max", a, b)

    def min(self, a: Any, b: Any) -> Any:
        """min(a, b), exact."""
        return self.apply("min", a, b)

    def relu(self, a: Any) -> Any:
        """max(a, 0), exact."""
        return self.apply("relu", a)

    def neg(self, a: Any) -> Any:
        """-a, exact."""
        return self.apply("neg", a)

    def sqrt(self, a: Any) -> Any:
        """round_p(sqrt(a)); NegativeSqrt when a < 0."""
        return self.apply("sqrt", a)

    def erf(self, a: Any) -> Any:
        """round_p(erf(a)), correctly rounded by MPFR."""
        return self.apply("erf", a)

    def exp(self, a: Any) -> Any:
        """round_p(e^a), correctly rounded (within the 2^-p of VAR Lemma 3.6)."""
        return self.apply("exp", a)

    def compare(self, a: Any, b: Any) -> Any:
        """The compare gate: the F_p value 1 if a < b, else 0 (exact)."""
        return self.apply("compare", a, b)

    def sum(self, values: Iterable[Any]) -> Any:
        """round_p(exact sum): one rounding after the whole sum (VAR Lemma 3.5 Part 3)."""
        if not TLS.widened:
            widen_range()
        return self._sum_row(list(values))

    def _sum_row(self, vals: list[Any]) -> Any:
        try:
            return self.context.fsum(vals)
        except GMPY_ERRORS as exc:
            raise self._error("sum", exc, "sum of " + show_terms(vals)) from None

    def prod(self, values: Iterable[Any]) -> Any:
        """round_p(exact product): one rounding after the whole product (Lemma 3.5 Part 2)."""
        if not TLS.widened:
            widen_range()
        vals = list(values)
        return self._prod_row(vals)

    def _prod_row(self, vals: list[Any]) -> Any:
        m, e = 1, 0
        for v in vals:
            if type(v) is not MPFR:
                v = self.round(v)
            elif not v.is_finite():
                raise NotRepresentableError(f"prod at p={self.p}: {v!r} is not a finite real number")
            mv, ev = v.as_mantissa_exp()
            m *= mv
            e += ev
        if m == 0:
            return self.zero
        r = mpfr(m, 0, self._wide)
        big_e = get_exp(r) + e
        if big_e > self.emax:
            exc: BaseException = gmpy2.OverflowResultError("overflow")
        elif big_e < self.emin:
            exc = gmpy2.UnderflowResultError("underflow")
        else:
            return self.context.mul_2exp(r, e)
        raise self._error("prod", exc, "product of " + show_terms(vals)) from None
