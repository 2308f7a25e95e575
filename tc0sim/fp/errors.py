"""The errors of F_p and how their messages show operands (VAR Definition 3.3: no infinities, NaNs or
subnormals, so a primitive without an F_p result raises one of these instead)."""

from __future__ import annotations

from typing import Any, Sequence

import gmpy2
import numpy as np

from tc0sim.errors import Tc0simError
from tc0sim.fp.mpfr import MPFR

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


def show(x: Any) -> str:
    """Exact, compact text of an operand: ``m*2^e`` with m odd, or repr for non-mpfr."""
    if isinstance(x, MPFR):
        if not x.is_finite():
            return str(x)
        if x == 0:
            return "0"
        m, e = x.as_mantissa_exp()
        tz = gmpy2.bit_scan1(m)
        m, e = int(m >> tz), int(e + tz)
        return str(m) if e == 0 else f"{m}*2^{e}"
    return repr(x)


def show_terms(values: Sequence[Any], limit: int = 4) -> str:
    shown = ", ".join(show(v) for v in values[:limit])
    more = f", ... ({len(values)} terms)" if len(values) > limit else ""
    return f"[{shown}{more}]"


def element_index(flat: int, shape: tuple[int, ...], origin: Sequence[int] | None) -> tuple[int, ...]:
    """The index of element ``flat`` (row-major) of an array of ``shape`` lying at ``origin`` of a
    larger array (the index named in error messages)."""
    index = np.unravel_index(flat, shape) if shape else ()
    return tuple(int(i) + int(o) for i, o in zip(index, origin or (0,) * len(shape)))
