"""gmpy2/MPFR plumbing of F_p: the value types, the errors MPFR traps, and MPFR's global exponent range
widened so that every F_p range (up to MPFR's limits) is computed in (docs/semantics.md)."""

from __future__ import annotations

import ctypes
import threading
from typing import Any

import gmpy2

MPFR = type(gmpy2.mpfr(0))
MPZ = type(gmpy2.mpz(0))
MPQ = type(gmpy2.mpq(0))
mpfr = gmpy2.mpfr
get_exp = gmpy2.get_exp
GMPY_ERROR = gmpy2.OverflowResultError.__mro__[2]
GMPY_ERRORS = (GMPY_ERROR, ZeroDivisionError)
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


TLS = _ThreadState()


def widen_range() -> None:
    """Set MPFR's global exponent range to its maximum in the calling thread (idempotent)."""
    if _LIB is not None:
        _LIB.mpfr_set_emin(_LIB.mpfr_get_emin_min())
        _LIB.mpfr_set_emax(_LIB.mpfr_get_emax_max())
    TLS.widened = True


def _probe_range() -> tuple[int, int]:
    """The exponent range MPFR really computes in, after widening."""
    widen_range()
    lo, hi = gmpy2.get_emin_min(), gmpy2.get_emax_max()
    probe = gmpy2.context(precision=2, emin=lo, emax=hi, trap_overflow=True)
    try:
        probe.mul_2exp(mpfr(1), 2**40)
    except GMPY_ERROR:
        return _DEFAULT_EMIN, _DEFAULT_EMAX
    return lo, hi


MPFR_EMIN, MPFR_EMAX = _probe_range()
