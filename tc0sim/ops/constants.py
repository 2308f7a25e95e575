"""Irrational constants of the released models, computed once with MPFR at 320 bits.

A circuit constant is an exact rational rounded to p bits on entry; an irrational one (√2, cos of a
rotary angle, ...) is held as its 320-bit MPFR value, so it enters correctly rounded for every p up
to about 300 except in the (unobserved) case that the true value lies within 2^-320 of a rounding
boundary.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction

import gmpy2

BITS = 320
"""Working precision of the constants."""


def real(fn: Callable[[gmpy2.mpfr], gmpy2.mpfr], x: Fraction | int) -> Fraction:
    """fn(x) evaluated by MPFR at BITS bits, as an exact Fraction."""
    with gmpy2.context(gmpy2.get_context(), precision=BITS):
        value = fn(gmpy2.mpq(Fraction(x).numerator, Fraction(x).denominator))
        n, d = gmpy2.mpfr(value).as_integer_ratio()
    return Fraction(int(n), int(d))


def power(base: int, exponent: Fraction) -> gmpy2.mpfr:
    """base^exponent at BITS bits (an mpfr, for further MPFR work)."""
    with gmpy2.context(gmpy2.get_context(), precision=BITS):
        return gmpy2.mpfr(base) ** (gmpy2.mpfr(exponent.numerator) / exponent.denominator)


def cos_sin(angles: list[gmpy2.mpfr | Fraction]) -> tuple[list[Fraction], list[Fraction]]:
    """cos and sin of each angle at BITS bits."""
    cos, sin = [], []
    with gmpy2.context(gmpy2.get_context(), precision=BITS):
        for a in angles:
            a = gmpy2.mpfr(a) if not isinstance(a, Fraction) else gmpy2.mpfr(a.numerator) / a.denominator
            for out, fn in ((cos, gmpy2.cos), (sin, gmpy2.sin)):
                n, d = fn(a).as_integer_ratio()
                out.append(Fraction(int(n), int(d)))
    return cos, sin


SQRT_HALF = real(lambda x: gmpy2.sqrt(x), Fraction(1, 2))
"""1/√2 (the exact GELU's M_SQRT1_2)."""
