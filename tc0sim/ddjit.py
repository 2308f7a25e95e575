"""Fused one-pass kernels of F_p for 26 <= p <= 53 (numbers layer, compiled by numba).

Certified rounding of a double-double (Theorem 2 of docs/semantics.md §2.7), the certified
double-double exponential (after P. T. P. Tang, ACM TOMS 15(2), 1989), add/sub and the rounding
passes, each one loop over the elements; the certified ⊕ of a row is in tc0sim.ddsum.
Compiled with numba's defaults: IEEE binary64 arithmetic, no fast-math, so no contraction into
FMA and no reassociation; every operation rounds once, as the proofs assume. ``cache=True``
keeps the machine code on disk for the next process; ``nogil`` lets threads run blocks side by side.

Every loop over elements (or rows) exists twice, serial and parallel (numba ``prange``, the
workqueue layer): each element's value is computed from its own operands by the same code, so
the bits do not depend on the threads (docs/threads.md). ``_run`` takes the parallel loop for
arrays of at least ``PARALLEL_MIN`` elements when ``LAUNCH`` is free (one parallel kernel at a
time in the process; a caller that finds it taken runs the serial loop in its own thread).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import gmpy2
import numba
import numpy as np

__all__ = ["EXP_DD_RELATIVE_ERROR", "LAUNCH", "PARALLEL_MIN", "add_p", "certify", "dd_exp", "exp_p", "round_midpoints", "round_off_midpoints"]

jit = numba.njit(cache=True, nogil=True)
inline = numba.njit(cache=True, nogil=True, inline="always")
parallel = numba.njit(cache=True, nogil=True, parallel=True)

if numba.config.THREADING_LAYER == "default":
    numba.config.THREADING_LAYER = "workqueue"
"""numba's own thread pool, unless the user chose a layer: GNU OpenMP (numba's default choice
here) terminates a forked child that runs a parallel kernel its parent ran; workqueue does not.
workqueue must not be entered by two threads at once, hence ``LAUNCH``."""

LAUNCH = threading.Lock()
"""One parallel kernel at a time in this process (its threads do the work; every parallel
kernel of tc0sim, here and in tc0sim.engines.fast, runs under it)."""

PARALLEL_MIN = 1 << 22
"""Fewest elements (rows: elements of all rows) a kernel runs in parallel: below, the launch of
numba's threads costs more than the second core saves (measured: docs/threads.md)."""


def _run(serial: Callable[..., Any], parallel_loop: Callable[..., Any], n: int, *args: Any) -> Any:
    """``parallel_loop(*args)`` on every core for n >= PARALLEL_MIN when LAUNCH is free, else
    ``serial(*args)`` in this thread (the same values either way)."""
    if n >= PARALLEL_MIN and numba.get_num_threads() > 1 and LAUNCH.acquire(blocking=False):
        try:
            return parallel_loop(*args)
        finally:
            LAUNCH.release()
    return serial(*args)

U = 2.0**-53
_ABS = 0x7FFF_FFFF_FFFF_FFFF
_EXP_FIELD = 0x7FF0_0000_0000_0000
_FRACTION = 0x000F_FFFF_FFFF_FFFF
_LO_BITS = int(np.float64(2.0**-1022).view(np.int64)) + 1
_HI_BITS = int(np.float64(np.finfo(np.float64).max).view(np.int64))
_VELTKAMP = 134217729.0  # 2^27 + 1
_SHIFTER = 1.5 * 2.0**52  # fl(v + 1.5·2^52) − 1.5·2^52 = rint(v) (ties to even) for |v| < 2^51


def _truncated(v: float, bits: int) -> float:
    """v with its significand cut to ``bits`` bits."""
    return float(np.int64(np.float64(v).view(np.int64) & ~np.int64((1 << (53 - bits)) - 1)).view(np.float64))


def _exp_constants() -> tuple[float, tuple[float, float, float], np.ndarray, np.ndarray]:
    """64/ln 2; ln 2/64 = L1 + L2 + L3 (L1, L2 of 32 bits, so N·L1 and N·L2 are exact for
    |N| < 2^21); 2^(j/64) = TH[j] + TL[j] to 2^-105 relative (MPFR at 200 bits)."""
    ctx = gmpy2.context(precision=200)
    step = ctx.div(ctx.log(2), 64)
    l1 = _truncated(float(step), 32)
    l2 = _truncated(float(ctx.sub(step, l1)), 32)
    l3 = float(ctx.sub(ctx.sub(step, l1), l2))
    powers = [ctx.exp2(ctx.div(j, 64)) for j in range(64)]
    th = np.array([float(v) for v in powers])
    tl = np.array([float(ctx.sub(v, h)) for v, h in zip(powers, th)])
    return float(ctx.div(64, ctx.log(2))), (l1, l2, l3), th, tl


_INV_STEP, (_L1, _L2, _L3), _TH, _TL = _exp_constants()
_T7, _T6, _T5, _T4, _T3 = (1.0 / math.factorial(i) for i in range(7, 2, -1))  # Horner, 1/7! first
EXP_DD_RELATIVE_ERROR = 2.0**-71
"""Bound on dd_exp's relative error (the budget in docs/semantics.md §2.7 gives 2^-73.3)."""
EXP_MIN_X, EXP_MAX_X = -708.39, 709.78
"""dd_exp's arguments: N = 64k + j with −1022 <= k <= 1023 (|N| <= 65535), so 2^k is a normal
binary64, and e^x < 2^1024."""


@inline
def _bits(x: float) -> int:
    return np.float64(x).view(np.int64)


@inline
def _float(b: int) -> float:
    return np.int64(b).view(np.float64)


@inline
def _two_sum_error(a: float, b: float, s: float) -> float:
    """a + b − s exactly, for s = fl(a + b) (Knuth's TwoSum)."""
    bb = s - a
    return (a - (s - bb)) + (b - bb)


@inline
def _product_error(a: float, b: float, s: float) -> float:
    """a·b − s exactly, for s = fl(a·b) without over- or underflow (Dekker, Veltkamp's split)."""
    c = _VELTKAMP * a
    ah = c - (c - a)
    al = a - ah
    c = _VELTKAMP * b
    bh = c - (c - b)
    bl = b - bh
    return (((ah * bh - s) + ah * bl) + al * bh) + al * bl


@inline
def _square_error(a: float, s: float) -> float:
    """a² − s exactly, for s = fl(a²): Dekker's product with its two middle terms added at once."""
    c = _VELTKAMP * a
    ah = c - (c - a)
    al = a - ah
    return ((ah * ah - s) + 2.0 * (ah * al)) + al * al


@inline
def _round_p(s: float, residual: float, p: int) -> float:
    """round_p(x) for |x − s| <= ulp_53(s)/2, ``residual`` of the sign of x − s (Theorem 1 on the
    bit pattern: ties to even, except at a midpoint s with x != s, rounded to x's side)."""
    shift = 53 - p
    b = _bits(s)
    if shift:
        half = np.int64(1) << (shift - 1)
        low = (np.int64(1) << shift) - 1
        at_mid = ((b & low) == half) & (residual != 0.0)
        t = (half if (residual > 0.0) == (s > 0.0) else half - 1) if at_mid else ((b >> shift) & 1) + half - 1
        b = (b + t) & ~low
    return _float(b)


@jit
def _round_midpoints(s: np.ndarray, mid: np.ndarray, residual: np.ndarray, p: int) -> None:
    for j in range(mid.size):
        s[mid[j]] = _round_p(s[mid[j]], residual[j], p)


@parallel
def _round_midpoints_parallel(s: np.ndarray, mid: np.ndarray, residual: np.ndarray, p: int) -> None:
    for j in numba.prange(mid.size):
        s[mid[j]] = _round_p(s[mid[j]], residual[j], p)


def round_midpoints(s: np.ndarray, mid: np.ndarray, residual: np.ndarray, p: int) -> None:
    """Round s[mid[j]] (distinct indices), a p-bit midpoint, in place by Theorem 1 with
    residual[j] of the sign of x − s (0: a true tie, to even)."""
    _run(_round_midpoints, _round_midpoints_parallel, mid.size, s, mid, residual, p)


@inline
def _certify(hi: float, lo: float, bound: float, exact: bool, p: int) -> tuple[float, bool]:
    """(round_p(x), certain) for a real x within ``bound`` of hi + lo, |lo| <= ulp(hi)/2
    (``exact``: x = hi + lo). Theorem 1 rounds hi with lo's sign at a midpoint; Theorem 2
    certifies when no p-bit midpoint lies within bound of hi + lo; NaN where not certain.
    Branch-free (``&``, ``|`` and selects), so that loops over it vectorise."""
    r = _round_p(hi, lo, p)
    b = _bits(r)
    sign = math.copysign(1.0, r)
    away = ((hi - r) + lo) * sign > 0.0  # hi + lo lies beyond |r|, away from zero
    rb = b & _ABS
    delta = _float((rb & _EXP_FIELD) - (np.int64(p) << 52))
    toward = delta * 0.5 if (rb & _FRACTION) == 0 else delta
    offset = (abs(hi) - abs(r)) - (delta if away else -toward)  # |hi| − m, exact
    dist = abs(offset + lo * sign)
    certain = (dist > bound + bound * 2.0**-50) & (bound < toward * 0.25) & (rb >= (np.int64(p + 2) << 52))
    ok = ((rb >= _LO_BITS) & (rb <= _HI_BITS) & (certain | exact)) | (exact & (hi == 0.0))
    return (r if ok else np.nan), ok


@inline
def _round_off(x: float, shift: int, half: int, low: int) -> tuple[float, bool]:
    """x rounded to 53 − shift bits, ties to even, unless x is exactly a midpoint (then x, True)."""
    b = _bits(x)
    mid = (b & low) == half
    return (x if mid else _float((b + ((b >> shift) & 1) + half - 1) & ~low)), mid


@jit
def _round_off_midpoints(s: np.ndarray, p: int, at_mid: np.ndarray) -> int:
    shift = 53 - p
    half, low = np.int64(1) << (shift - 1), (np.int64(1) << shift) - 1
    count = 0
    for i in range(s.size):
        s[i], at_mid[i] = _round_off(s[i], shift, half, low)
        count += 1 if at_mid[i] else 0
    return count


@parallel
def _round_off_midpoints_parallel(s: np.ndarray, p: int, at_mid: np.ndarray) -> int:
    shift = 53 - p
    half, low = np.int64(1) << (shift - 1), (np.int64(1) << shift) - 1
    count = 0
    for i in numba.prange(s.size):
        s[i], at_mid[i] = _round_off(s[i], shift, half, low)
        count += 1 if at_mid[i] else 0
    return count


def round_off_midpoints(s: np.ndarray, p: int, at_mid: np.ndarray) -> int:
    """Round the flat float64 array s (p < 53) to p bits in place, ties to even on the bit
    pattern (docs §2.1), except where s is exactly a p-bit midpoint: those are left as they are,
    marked True in ``at_mid`` and counted (Theorem 1 needs their residual's sign)."""
    return _run(_round_off_midpoints, _round_off_midpoints_parallel, s.size, s, p, at_mid)


@inline
def _add(a: float, b: float, sign: float, p: int) -> tuple[float, bool]:
    """round_p(a + sign·b) and whether it is flagged (NaN: neither normal nor an exact zero)."""
    y = b * sign
    s = a + y
    r = _round_p(s, _two_sum_error(a, y, s), p)
    rb = _bits(r) & _ABS
    ok = ((rb >= _LO_BITS) & (rb <= _HI_BITS)) | (s == 0.0)
    return (r if ok else np.nan), not ok


@jit
def _add_p(a: np.ndarray, b: np.ndarray, sign: float, p: int, out: np.ndarray, flagged: np.ndarray) -> None:
    for i in range(out.size):
        out[i], flagged[i] = _add(a[i], b[i], sign, p)


@parallel
def _add_p_parallel(a: np.ndarray, b: np.ndarray, sign: float, p: int, out: np.ndarray, flagged: np.ndarray) -> None:
    for i in numba.prange(out.size):
        out[i], flagged[i] = _add(a[i], b[i], sign, p)


def add_p(a: np.ndarray, b: np.ndarray, sign: float, p: int, out: np.ndarray, flagged: np.ndarray) -> None:
    """round_p(a + sign·b) over flat arrays in one pass (sign ±1: add, sub): the binary64 sum s,
    rounded by Theorem 1 with TwoSum's exact residual; flagged (NaN) unless normal or an exact
    zero (a binary64 sum is 0 only when exact, with IEEE 754's sign, which is MPFR's)."""
    _run(_add_p, _add_p_parallel, out.size, a, b, sign, p, out, flagged)


@inline
def _certified(hi: float, lo: float, bound: float, exact: bool, p: int) -> tuple[float, bool]:
    r, ok = _certify(hi, lo, bound, exact, p)
    return r, not ok


@jit
def _certify_loop(hi: np.ndarray, lo: np.ndarray, bound: np.ndarray, exact: np.ndarray, p: int,
                  out: np.ndarray, flagged: np.ndarray) -> None:
    for i in range(hi.size):
        out[i], flagged[i] = _certified(hi[i], lo[i], bound[i], exact[i], p)


@parallel
def _certify_parallel(hi: np.ndarray, lo: np.ndarray, bound: np.ndarray, exact: np.ndarray, p: int,
                      out: np.ndarray, flagged: np.ndarray) -> None:
    for i in numba.prange(hi.size):
        out[i], flagged[i] = _certified(hi[i], lo[i], bound[i], exact[i], p)


def certify(hi: np.ndarray, lo: np.ndarray, bound: np.ndarray, exact: np.ndarray, p: int,
            out: np.ndarray, flagged: np.ndarray) -> None:
    """``_certify`` over flat arrays: values into ``out``, uncertain elements True in ``flagged``."""
    _run(_certify_loop, _certify_parallel, hi.size, hi, lo, bound, exact, p, out, flagged)


@inline
def _dd_exp(x: float) -> tuple[float, float, float]:
    """(hi, lo, bound), |e^x − (hi + lo)| <= bound = 2^-71·|hi| + 2^-1074, |lo| <= ulp(hi)/2;
    bound infinite outside [EXP_MIN_X, EXP_MAX_X] (and for NaN). Steps and error budget:
    docs/semantics.md §2.7 (Cody–Waite reduction in three parts, degree-7 Taylor, Tang's table)."""
    inside = (x >= EXP_MIN_X) & (x <= EXP_MAX_X)  # False for NaN
    x = x if inside else 0.0
    n = (x * _INV_STEP + _SHIFTER) - _SHIFTER
    r1 = x - n * _L1  # exact (docs)
    t2 = n * _L2
    rh = r1 - t2
    rl = _two_sum_error(r1, -t2, rh) - n * _L3
    s = rh + rl
    rl = _two_sum_error(rh, rl, s)
    rh = s
    h2 = rh * rh
    half = h2 * 0.5
    m = _square_error(rh, h2) * 0.5 + rh * rl
    q = _T3 + rh * (_T4 + rh * (_T5 + rh * (_T6 + rh * _T7)))
    tail = ((rh * rh) * rh) * q
    s1 = 1.0 + rh
    s2 = s1 + half
    small = (((_two_sum_error(1.0, rh, s1) + _two_sum_error(s1, half, s2)) + rl) + m) + tail
    eh = s2 + small
    el = _two_sum_error(s2, small, eh)
    ni = np.int64(n)
    th, tl = _TH[ni & 63], _TL[ni & 63]
    ph = th * eh
    pl = _product_error(th, eh, ph) + (th * el + tl * eh)
    hi = ph + pl
    lo = _two_sum_error(ph, pl, hi)
    scale = _float(((ni >> 6) + 1023) << 52)  # 2^k, normal
    hi, lo = hi * scale, lo * scale  # hi exact unless subnormal (then never certified); lo within 2^-1075
    return hi, lo, abs(hi) * EXP_DD_RELATIVE_ERROR + 2.0**-1074 if inside else np.inf


@jit
def _dd_exp_loop(x: np.ndarray, hi: np.ndarray, lo: np.ndarray, bound: np.ndarray) -> None:
    for i in range(x.size):
        hi[i], lo[i], bound[i] = _dd_exp(x[i])


@parallel
def _dd_exp_parallel(x: np.ndarray, hi: np.ndarray, lo: np.ndarray, bound: np.ndarray) -> None:
    for i in numba.prange(x.size):
        hi[i], lo[i], bound[i] = _dd_exp(x[i])


def dd_exp(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hi, lo, bound) of ``_dd_exp`` per element of a float64 array (for tests and callers
    that certify themselves); bound is infinite where no certificate is attempted."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    hi, lo, bound = np.empty(x.shape), np.empty(x.shape), np.empty(x.shape)
    _run(_dd_exp_loop, _dd_exp_parallel, x.size, x.reshape(-1), hi.reshape(-1), lo.reshape(-1), bound.reshape(-1))
    return hi, lo, bound


@inline
def _exp_one(x: float, p: int) -> tuple[float, bool]:
    hi, lo, bound = _dd_exp(x)
    r, ok = _certify(hi, lo, bound, x == 0.0, p)
    return r, not ok


@jit
def _exp_p(x: np.ndarray, p: int, out: np.ndarray, flagged: np.ndarray) -> None:
    for i in range(x.size):
        out[i], flagged[i] = _exp_one(x[i], p)


@parallel
def _exp_p_parallel(x: np.ndarray, p: int, out: np.ndarray, flagged: np.ndarray) -> None:
    for i in numba.prange(x.size):
        out[i], flagged[i] = _exp_one(x[i], p)


def exp_p(x: np.ndarray, p: int, out: np.ndarray, flagged: np.ndarray) -> None:
    """round_p(e^x) over a flat array in one pass: the double-double exp certified by Theorem 2
    (e^0 = 1 exact; e^x for x != 0 is transcendental, never a midpoint)."""
    _run(_exp_p, _exp_p_parallel, x.size, x, p, out, flagged)
