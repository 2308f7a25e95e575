"""The exact p-bit floating-point format F_p (VAR Definition 3.3, after Chiang 2024).

A value of F_p is a pair <m, e> of integers with ``2^(p-1) <= |m| < 2^p`` or ``m == 0``
and ``e in [-2^p, 2^p)``; its value is ``m * 2^e``.  No subnormals, infinities or NaNs.
Every primitive rounds exactly once to nearest, ties to even (VAR Definition 3.4);
iterated sums and products round once after the exact result (VAR Lemma 3.5).

Values are ``gmpy2.mpfr`` objects of precision p, computed by MPFR in a context whose
exponent range is that of F_p (MPFR exponent ``E = e + p``), with traps turned on, so a
result that leaves the range is an error, never an infinity or a silent zero.

One module per part: ``errors`` (the errors and how messages show operands), ``mpfr`` (gmpy2's
types and MPFR's global exponent range), ``kernels`` (the F_p computation of every primitive, by
name), ``format`` (``Format``: rounding, pairs, scalar primitives) and ``arrays`` (its array path).
Everything public is importable from ``tc0sim.fp``.
"""

from __future__ import annotations

from tc0sim.fp.errors import (DivisionByZero, ExpOverflow, FpArithmeticError, FpOverflow, FpUnderflow, NegativeSqrt,
                              NotRepresentableError, PrecisionError, element_index)
from tc0sim.fp.format import Format
from tc0sim.fp.kernels import KERNELS, Kernel, kernel, kernel_names
from tc0sim.fp.mpfr import MPFR_EMAX, MPFR_EMIN

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


def __getattr__(name: str) -> tuple[str, ...]:
    """``MAP_OPS`` / ``REDUCE_OPS``: the names of the elementwise / reduction kernels."""
    if name in ("MAP_OPS", "REDUCE_OPS"):
        return kernel_names(reduction=name == "REDUCE_OPS")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
