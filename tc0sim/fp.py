"""The exact p-bit floating-point format F_p (VAR Definition 3.3, after Chiang 2024).

A value of F_p is a pair <m, e> of integers with ``2^(p-1) <= |m| < 2^p`` or ``m == 0``
and ``e in [-2^p, 2^p)``; its value is ``m * 2^e``.  No subnormals, infinities or NaNs.
Every primitive rounds exactly once to nearest, ties to even (VAR Definition 3.4);
iterated sums and products round once after the exact result (VAR Lemma 3.5).

Values are ``gmpy2.mpfr`` objects of precision p, computed by MPFR in a context whose
exponent range is that of F_p (MPFR exponent ``E = e + p``), with traps turned on, so a
result that leaves the range is an error, never an infinity or a silent zero.
"""

from __future__ import annotations

import ctypes
import math
import numbers
import operator
import threading
from decimal import Decimal
from fractions import Fraction
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Sequence

import gmpy2
import numpy as np

from tc0sim.errors import MissingKernelError, Tc0simError

__all__ = [
    "Format",
    "FpArithmeticError",
    "FpOverflow",
    "FpUnderflow",
    "ExpOverflow",
    "NegativeSqrt",
    "DivisionByZero",
    "PrecisionError",
    "NotRepresentableError",
    "Kernel",
    "element_index",
    "KERNELS",
    "kernel",
    "MAP_OPS",
    "REDUCE_OPS",
]


class FpArithmeticError(Tc0simError, ArithmeticError):
    """An F_p primitive has no F_p result (base of the arithmetic errors)."""


class FpOverflow(FpArithmeticError):
    """The rounded result's exponent is above the F_p range (e >= 2^p)."""


class FpUnderflow(FpArithmeticError):
    """The rounded, non-zero result's exponent is below the F_p range (e < -2^p)."""


class ExpOverflow(FpOverflow):
    """exp(x) overflows the F_p range."""


class NegativeSqrt(FpArithmeticError):
    """sqrt of a negative number."""


class DivisionByZero(FpArithmeticError, ZeroDivisionError):
    """Division by zero."""


class PrecisionError(Tc0simError, ValueError):
    """The precision p is not an integer >= 2 (or exceeds MPFR's maximum precision)."""


class NotRepresentableError(Tc0simError, ValueError):
    """A value or pair is not an element of F_p (or of the requested target format)."""


_MPFR = type(gmpy2.mpfr(0))
_MPZ = type(gmpy2.mpz(0))
_MPQ = type(gmpy2.mpq(0))
_mpfr = gmpy2.mpfr
_get_exp = gmpy2.get_exp
_GMPY_ERROR = gmpy2.OverflowResultError.__mro__[2]
_GMPY_ERRORS = (_GMPY_ERROR, ZeroDivisionError)

# --- MPFR's global exponent range -----------------------------------------------------------
# gmpy2 computes every operation in MPFR's *global* (thread-local) exponent range, which is
# MPFR's default [1 - 2^30, 2^30 - 1], and only then checks the context's emin/emax.  To use
# the full range up to get_emin_min()/get_emax_max() the global range is widened once per
# thread through the libmpfr that gmpy2 itself loaded.  If that is impossible the formats are
# clamped to MPFR's default range instead (never a silent wrong result).

_DEFAULT_EMIN, _DEFAULT_EMAX = 1 - 2**30, 2**30 - 1


def _load_libmpfr() -> Any:
    paths: list[str] = []
    try:
        with open("/proc/self/maps", encoding="ascii", errors="replace") as maps:
            for line in maps:
                if "libmpfr" in line:
                    path = line.split()[-1]
                    if path not in paths:
                        paths.append(path)
    except OSError:
        return None
    for path in paths:
        try:
            lib = ctypes.CDLL(path)
            for name in ("mpfr_get_emin_min", "mpfr_get_emax_max", "mpfr_get_emin", "mpfr_get_emax"):
                getattr(lib, name).restype = ctypes.c_long
            lib.mpfr_set_emin.argtypes = [ctypes.c_long]
            lib.mpfr_set_emax.argtypes = [ctypes.c_long]
            return lib
        except (OSError, AttributeError):
            continue
    return None


_LIB = _load_libmpfr()


class _ThreadState(threading.local):
    widened = False


_TLS = _ThreadState()


def _widen_range() -> None:
    """Set MPFR's global exponent range to its maximum in the calling thread (idempotent)."""
    if _LIB is not None:
        _LIB.mpfr_set_emin(_LIB.mpfr_get_emin_min())
        _LIB.mpfr_set_emax(_LIB.mpfr_get_emax_max())
    _TLS.widened = True


def _probe_range() -> tuple[int, int]:
    """The exponent range MPFR really computes in, after widening."""
    _widen_range()
    lo, hi = gmpy2.get_emin_min(), gmpy2.get_emax_max()
    probe = gmpy2.context(precision=2, emin=lo, emax=hi, trap_overflow=True)
    try:
        probe.mul_2exp(_mpfr(1), 2**40)
    except _GMPY_ERROR:
        return _DEFAULT_EMIN, _DEFAULT_EMAX
    return lo, hi


MPFR_EMIN, MPFR_EMAX = _probe_range()

# --- formatting operands in messages ---------------------------------------------------------


def _show(x: Any) -> str:
    """Exact, compact text of an operand: ``m*2^e`` with m odd, or repr for non-mpfr."""
    if isinstance(x, _MPFR):
        if not x.is_finite():
            return str(x)
        if x == 0:
            return "0"
        m, e = x.as_mantissa_exp()
        tz = gmpy2.bit_scan1(m)
        m, e = int(m >> tz), int(e + tz)
        return str(m) if e == 0 else f"{m}*2^{e}"
    return repr(x)


def _show_terms(values: Sequence[Any], limit: int = 4) -> str:
    shown = ", ".join(_show(v) for v in values[:limit])
    more = f", ... ({len(values)} terms)" if len(values) > limit else ""
    return f"[{shown}{more}]"


# --- kernels: the F_p computation of every primitive, by the primitive's name ----------------


@dataclass(frozen=True)
class Kernel:
    """The F_p computation of one primitive, under the name the primitive table gives it.

    ``bind(F)`` returns the trapping scalar function of format F: it takes ``arity`` operands
    (a reduction, ``arity`` None, takes one list) and raises gmpy2's errors, which the Format turns
    into tc0sim's. ``fast`` is an optional array-path version that computes in the current gmpy2
    context (see ``Format.map``). ``infix`` spells the operation in error messages ("a + b");
    ``overflow`` and ``invalid`` are the errors raised on overflow and on an invalid operation.
    """

    name: str
    arity: int | None
    bind: Callable[["Format"], Callable[..., Any]]
    fast: Callable[..., Any] | None = None
    infix: str = ""
    overflow: type[FpArithmeticError] = FpOverflow
    invalid: type[FpArithmeticError] = FpArithmeticError


KERNELS: dict[str, Kernel] = {}
"""Every F_p kernel by primitive name (one name per primitive across the IR and F_p)."""


def kernel(name: str, arity: int | None, bind: Callable[["Format"], Callable[..., Any]], **options: Any) -> Kernel:
    """Define the F_p kernel of primitive ``name`` (see ``Kernel``); a name is defined once."""
    if name in KERNELS:
        raise ValueError(f"F_p kernel {name!r} is already defined")
    KERNELS[name] = Kernel(name, arity, bind, **options)
    return KERNELS[name]


def _kernel_of(name: str, reduction: bool) -> Kernel:
    k = KERNELS.get(name)
    if k is None or (k.arity is None) != reduction:
        raise MissingKernelError(name, "reduction" if reduction else "elementwise")
    return k


def __getattr__(name: str) -> tuple[str, ...]:
    """``MAP_OPS`` / ``REDUCE_OPS``: the names of the elementwise / reduction kernels."""
    if name in ("MAP_OPS", "REDUCE_OPS"):
        return tuple(k.name for k in KERNELS.values() if (k.arity is None) == (name == "REDUCE_OPS"))
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def element_index(flat: int, shape: tuple[int, ...], origin: Sequence[int] | None) -> tuple[int, ...]:
    """The index of element ``flat`` (row-major) of an array of ``shape`` lying at ``origin`` of a
    larger array (the index named in error messages)."""
    index = np.unravel_index(flat, shape) if shape else ()
    return tuple(int(i) + int(o) for i, o in zip(index, origin or (0,) * len(shape)))


class Format:
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
        if not _TLS.widened:
            _widen_range()
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
        self.zero = _mpfr(0, p)
        self.one = _mpfr(1, p)
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
            return f"{_show(args[0])} {k.infix} {_show(args[1])}"
        return f"{op}({', '.join(_show(a) for a in args)})"

    def _bound_kernel(self, name: str, reduction: bool) -> tuple[Kernel, Callable[..., Any]]:
        """Kernel ``name`` and its function bound to this format (bound on first use, and again
        if the kernel table has changed since); MissingKernelError without a kernel of that kind."""
        entry = self._bound.get(name)
        if entry is None or KERNELS.get(name) is not entry[0]:
            k = _kernel_of(name, reduction)
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
        if not _TLS.widened:
            _widen_range()
        v = self._exact(x)
        try:
            return _mpfr(v, 0, self.context)
        except _GMPY_ERRORS as exc:
            raise self._error("round", exc, f"round({x!r})") from None

    def _exact(self, x: Any) -> Any:
        """An exact gmpy2/Python value equal to x, accepted by mpfr()."""
        if isinstance(x, (_MPFR, float)):
            if not gmpy2.is_finite(x):
                raise NotRepresentableError(f"round at p={self.p}: {x!r} is not a finite real number")
            return x
        if isinstance(x, (int, _MPZ, _MPQ)):
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
        if not isinstance(x, _MPFR) or not x.is_finite():
            raise NotRepresentableError(f"to_pair at p={self.p}: {x!r} is not a finite mpfr")
        if x == 0:
            return (0, 0)
        m, e = x.as_mantissa_exp()
        p = self.p
        bl = m.bit_length()
        if bl > p:
            shift = bl - p
            if gmpy2.bit_scan1(m) < shift:
                raise NotRepresentableError(f"to_pair at p={p}: {_show(x)} has more than {p} bits")
            m, e = m >> shift, e + shift
        elif bl < p:
            m, e = m << (p - bl), e - (p - bl)
        m, e = int(m), int(e)
        if not self._e_ok(e):
            raise NotRepresentableError(
                f"to_pair at p={p}: {_show(x)} is outside {self._range_text()}"
            )
        return (m, e)

    def _e_ok(self, e: int) -> bool:
        """Whether a pair exponent e is in range (e + p is the MPFR exponent)."""
        return self.emin <= e + self.p <= self.emax

    def from_pair(self, m: int, e: int) -> Any:
        """The F_p value m * 2^e; NotRepresentableError unless <m, e> is a valid F_p pair.

        By Definition 3.3, <0, e> is valid for every e in range; it is the value 0.
        """
        if not _TLS.widened:
            _widen_range()
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
        return self.context.mul_2exp(_mpfr(m, p), e)

    def to_fraction(self, x: Any) -> Fraction:
        """The exact rational value of x."""
        if not isinstance(x, _MPFR) or not x.is_finite():
            raise NotRepresentableError(f"to_fraction at p={self.p}: {x!r} is not a finite mpfr")
        n, d = x.as_integer_ratio()
        return Fraction(int(n), int(d))

    # --- scalar primitives (one rounding each) ------------------------------------------------

    def apply(self, name: str, *operands: Any) -> Any:
        """The elementwise kernel ``name`` on scalar F_p operands: one rounding (or none, if exact)."""
        if not _TLS.widened:
            _widen_range()
        k, fn = self._bound_kernel(name, reduction=False)
        if len(operands) != k.arity:
            raise ValueError(f"{name} takes {k.arity} operand(s), got {len(operands)}")
        try:
            r = fn(*operands)
        except _GMPY_ERRORS as exc:
            raise self._error(name, exc, self._operands(name, operands)) from None
        return r if type(r) is _MPFR else self.round(r)

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
        if not _TLS.widened:
            _widen_range()
        return self._sum_row(list(values))

    def _sum_row(self, vals: list[Any]) -> Any:
        try:
            return self.context.fsum(vals)
        except _GMPY_ERRORS as exc:
            raise self._error("sum", exc, "sum of " + _show_terms(vals)) from None

    def prod(self, values: Iterable[Any]) -> Any:
        """round_p(exact product): one rounding after the whole product (Lemma 3.5 Part 2)."""
        if not _TLS.widened:
            _widen_range()
        vals = list(values)
        return self._prod_row(vals)

    def _prod_row(self, vals: list[Any]) -> Any:
        m, e = 1, 0
        for v in vals:
            if type(v) is not _MPFR:
                v = self.round(v)
            elif not v.is_finite():
                raise NotRepresentableError(f"prod at p={self.p}: {v!r} is not a finite real number")
            mv, ev = v.as_mantissa_exp()
            m *= mv
            e += ev
        if m == 0:
            return self.zero
        r = _mpfr(m, 0, self._wide)
        big_e = _get_exp(r) + e
        if big_e > self.emax:
            exc: BaseException = gmpy2.OverflowResultError("overflow")
        elif big_e < self.emin:
            exc = gmpy2.UnderflowResultError("underflow")
        else:
            return self.context.mul_2exp(r, e)
        raise self._error("prod", exc, "product of " + _show_terms(vals)) from None

    # --- arrays -----------------------------------------------------------------------------

    def _wrap(self, flat: list[Any], shape: tuple[int, ...]) -> np.ndarray:
        return np.fromiter(flat, dtype=object, count=len(flat)).reshape(shape)

    def asarray(self, x: Any) -> np.ndarray:
        """An object ndarray of F_p values; every element is rounded (round_p) on entry."""
        if not _TLS.widened:
            _widen_range()
        arr = x if isinstance(x, np.ndarray) else np.array(x, dtype=object)
        kind = arr.dtype.kind
        flat = arr.ravel().tolist() if kind in "biuf" and arr.dtype.itemsize <= 8 else list(arr.ravel())
        ctx = self.context
        if kind == "f" and arr.dtype.itemsize <= 8:
            if not np.all(np.isfinite(arr)):
                raise NotRepresentableError(f"asarray at p={self.p}: the array has non-finite values")
        if kind in "biuf" and arr.dtype.itemsize <= 8:
            try:
                out = [_mpfr(v, 0, ctx) for v in flat]
            except _GMPY_ERRORS:
                out = [self.round(v) for v in flat]
        else:
            rnd = self.round
            out = [rnd(v) for v in flat]
        return self._wrap(out, arr.shape)

    def _locate(
        self, op: str, fn: Callable[..., Any], shape: tuple[int, ...], cols: list[list[Any]], origin: Sequence[int] | None
    ) -> None:
        """Re-run an array op element by element to raise the error of the first bad element."""
        for i, args in enumerate(zip(*cols)):
            try:
                fn(*args)
            except _GMPY_ERRORS as exc:
                err = self._error(op, exc, self._operands(op, args))
                raise type(err)(f"{err} (element {element_index(i, shape, origin)})") from None

    def map(self, name: str, *arrays: np.ndarray, origin: Sequence[int] | None = None) -> np.ndarray:
        """Apply a primitive elementwise to same-shape F_p arrays; one rounding per element.

        ``name`` is a kernel of ``KERNELS`` ("compare" gives the F_p values 1 or 0); a name without
        an elementwise kernel is a MissingKernelError. An error names its element's index, plus
        ``origin`` (where the arrays lie in a larger one).
        """
        if not _TLS.widened:
            _widen_range()
        k, fn = self._bound_kernel(name, reduction=False)
        arity = k.arity
        if len(arrays) != arity:
            raise ValueError(f"map {name!r} takes {arity} array(s), got {len(arrays)}")
        shape = np.shape(arrays[0])
        for a in arrays[1:]:
            if np.shape(a) != shape:
                raise ValueError(f"map {name!r}: shapes {shape} and {np.shape(a)} differ")
        cols = [np.asarray(a, dtype=object).ravel().tolist() for a in arrays]
        fast = self._fast.copy()
        fast.clear_flags()
        old = gmpy2.get_context()
        gmpy2.set_context(fast)
        try:
            out = list(map(k.fast or fn, *cols))
        except _GMPY_ERRORS:
            out = []
        finally:
            gmpy2.set_context(old)
        if len(out) != len(cols[0]) or fast.overflow or fast.underflow or fast.invalid or fast.divzero:
            self._locate(name, fn, shape, cols, origin)
            raise FpArithmeticError(f"{name} failed at p={self.p} in the array path")
        return self._wrap(out, shape)

    def reduce(
        self, name: str, array: np.ndarray, axis: int | Sequence[int], origin: Sequence[int] | None = None
    ) -> np.ndarray:
        """Exact sum or product over ``axis`` (int or tuple), rounded once per output element. An
        error names its output element's index, plus ``origin`` (as in ``map``)."""
        if not _TLS.widened:
            _widen_range()
        _, row_fn = self._bound_kernel(name, reduction=True)
        arr = np.asarray(array, dtype=object)
        nd = arr.ndim
        axes_in = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
        axes = []
        for a in axes_in:
            a = operator.index(a)
            if not -nd <= a < nd:
                raise ValueError(f"reduce {name!r}: axis {a} out of range for {nd}-d array")
            axes.append(a % nd)
        if len(set(axes)) != len(axes):
            raise ValueError(f"reduce {name!r}: repeated axis in {axes_in}")
        keep = [i for i in range(nd) if i not in axes]
        out_shape = tuple(arr.shape[i] for i in keep)
        k = math.prod(arr.shape[i] for i in axes)
        n_out = math.prod(out_shape)
        rows = np.transpose(arr, keep + axes).reshape(n_out, k).tolist()
        out = []
        for i, r in enumerate(rows):
            try:
                out.append(row_fn(r))
            except FpArithmeticError as err:
                raise type(err)(f"{err} (element {element_index(i, out_shape, origin)})") from None
        return self._wrap(out, out_shape)

    def to_pairs(self, array: np.ndarray) -> Any:
        """Nested lists (shape of the array) of [m, e] pairs; a 0-d array gives one [m, e].
        The array holds mpfr values, or float64 values that are F_p values (vectorised)."""
        if isinstance(array, np.ndarray) and array.dtype == np.float64:
            return self._float_pairs(array)
        arr = np.asarray(array, dtype=object)
        tp = self.to_pair
        flat = [list(tp(x)) for x in arr.ravel().tolist()]
        return _nest(flat, arr.shape)

    def _float_pairs(self, x: np.ndarray) -> Any:
        """to_pairs of a float64 array: m = significand·2^p, e = exponent − p (frexp), checked."""
        finite = np.isfinite(x)
        mant, ex = np.frexp(np.where(finite, x, 0.0))
        m_float = np.ldexp(mant, min(self.p, 53))
        m = m_float.astype(np.int64)
        e = np.where(m != 0, ex.astype(np.int64) - self.p, 0)
        bad = ~finite | (m != m_float) | ((m != 0) & ((e + self.p < self.emin) | (e + self.p > self.emax)))
        if bad.any():
            i = int(np.flatnonzero(bad.ravel())[0])
            index = tuple(int(j) for j in np.unravel_index(i, x.shape)) if x.shape else ()
            raise NotRepresentableError(f"to_pairs at p={self.p}: element {index} = {x.ravel()[i]!r} is not an F_p value")
        if self.p > 53:  # a float64 significand has 53 bits: widen it to p bits (Python integers)
            m = m.astype(object) * (1 << (self.p - 53))
        return np.stack([m, e], axis=-1).tolist()

    def from_pairs(self, nested: Any, shape: Sequence[int]) -> np.ndarray:
        """Inverse of to_pairs: an object ndarray of the given shape; every pair is validated."""
        shape = tuple(int(s) for s in shape)
        flat: list[Any] = []
        _flatten(nested, len(shape), flat)
        if len(flat) != math.prod(shape):
            raise NotRepresentableError(
                f"from_pairs at p={self.p}: {len(flat)} pairs do not fill shape {shape}"
            )
        fp = self.from_pair
        out = []
        for pair in flat:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise NotRepresentableError(f"from_pairs at p={self.p}: {pair!r} is not an [m, e] pair")
            out.append(fp(pair[0], pair[1]))
        return self._wrap(out, shape)

    def to_float64_array(self, array: np.ndarray) -> np.ndarray:
        """A float64 array with exactly the same values; NotRepresentableError otherwise."""
        if isinstance(array, np.ndarray) and array.dtype == np.float64 and np.isfinite(array).all():
            return array
        arr = np.asarray(array, dtype=object)
        flat = arr.ravel().tolist()
        floats = [float(x) for x in flat]
        for i, (x, f) in enumerate(zip(flat, floats)):
            if not (math.isfinite(f) and x == f):
                index = tuple(int(j) for j in np.unravel_index(i, arr.shape)) if arr.shape else ()
                raise NotRepresentableError(
                    f"to_float64_array at p={self.p}: element {index} = {_show(x)} is not exactly a float64"
                )
        return np.array(floats, dtype=np.float64).reshape(arr.shape)


def _nest(flat: list[Any], shape: tuple[int, ...]) -> Any:
    if not shape:
        return flat[0]
    if len(shape) == 1:
        return flat
    step = math.prod(shape[1:])
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def _flatten(nested: Any, depth: int, out: list[Any]) -> None:
    if depth == 0:
        out.append(nested)
        return
    if not isinstance(nested, (list, tuple)):
        raise NotRepresentableError(f"from_pairs: expected a nested list, got {nested!r}")
    for item in nested:
        _flatten(item, depth - 1, out)


# The kernels of the primitive table (tc0sim.ir.primitives), one per compute primitive. The
# Python operators of the fast versions avoid the argument parsing of context methods.
kernel("add", 2, lambda F: F.context.add, fast=operator.add, infix="+")
kernel("sub", 2, lambda F: F.context.sub, fast=operator.sub, infix="-")
kernel("mul", 2, lambda F: F.context.mul, fast=operator.mul, infix="*")
kernel("div", 2, lambda F: F.context.div, fast=operator.truediv, infix="/", invalid=DivisionByZero)
kernel("max", 2, lambda F: F.context.maxnum)
kernel("min", 2, lambda F: F.context.minnum)
kernel("compare", 2, lambda F: (lambda a, b, one=F.one, zero=F.zero: one if a < b else zero))
kernel("relu", 1, lambda F: (lambda a, ctx=F.context, zero=F.zero: ctx.maxnum(a, zero)))
kernel("neg", 1, lambda F: F.context.minus)
kernel("exp", 1, lambda F: F.context.exp, fast=gmpy2.exp, overflow=ExpOverflow)
kernel("sqrt", 1, lambda F: F.context.sqrt, fast=gmpy2.sqrt, invalid=NegativeSqrt)
kernel("erf", 1, lambda F: F.context.erf, fast=gmpy2.erf)
kernel("log", 1, lambda F: F.context.log, fast=gmpy2.log)
kernel("sin", 1, lambda F: F.context.sin, fast=gmpy2.sin)
kernel("cos", 1, lambda F: F.context.cos, fast=gmpy2.cos)
kernel("sum", None, lambda F: F._sum_row)
kernel("prod", None, lambda F: F._prod_row)
