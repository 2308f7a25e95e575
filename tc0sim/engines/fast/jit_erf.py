"""binary64 erf as a numpy ufunc (numba's ``math.erf``, which calls the C library's ``erf``) for the
fast engine's certified erf (docs/fuseddot.md, "erf"). Imported on first use only."""

from __future__ import annotations

import math

import numba


@numba.vectorize(["float64(float64)"], nopython=True, cache=True)
def erf(x: float) -> float:
    """The C library's binary64 erf(x) (glibc: within 1 ulp; docs/fuseddot.md)."""
    return math.erf(x)
