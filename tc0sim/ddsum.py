"""The certified ⊕ of rows for 26 <= p <= 53 (numbers layer, compiled by numba;
docs/semantics.md §2.7, "⊕: certified double-double sums"): per row, the error-free extraction
of S. M. Rump, T. Ogita, S. Oishi ("Accurate floating-point summation part I: faithful rounding",
SIAM J. Sci. Comput. 31(1), 2008) or a compensated sum whose bound follows its own errors, each
ending with Theorem 2's certificate (tc0sim.ddjit); a row neither certifies is flagged. Compiled
with numba's defaults (no fast-math), each row's loop serial or, for large inputs, the rows
spread over the cores (tc0sim.ddjit's ``_run``): the same bits either way.
"""

from __future__ import annotations

import numba
import numpy as np

from tc0sim.ddjit import _ABS, _HI_BITS, U, _bits, _certify, _float, _run, _two_sum_error, inline, jit, parallel

__all__ = ["SMALL_ROW", "compensated_row", "extracted_row", "sum_rows"]


SMALL_ROW = 32
"""Rows of at most this many terms are summed by the compensated sum first, all rows at once
(the loop over rows vectorises); longer rows by the extraction first, a row at a time."""


@jit
def extracted_row(t: np.ndarray, p: int, c: int) -> tuple[float, bool]:
    """Rump–Ogita–Oishi extraction: σ = 2^(E + c) >= 2k·max|t| (2^E > max|t|, 2^c >= 2k), the
    q = (σ + t) − σ summed exactly in any order, the remainders t − q within 2·k²·u²·σ; four
    interleaved accumulators of each. No certificate for a zero or non-finite max|t|."""
    k = t.size
    top = 0
    for i in range(k):
        top = max(top, _bits(t[i]) & _ABS)  # the bits of max|t| (NaN and inf above _HI_BITS)
    field = (top >> 52) + 1 + c  # σ's biased exponent (for a subnormal max, σ = 2^(c − 1022))
    if top == 0 or top > _HI_BITS or field > 2046 or k * U > 2.0**-10:
        return np.nan, False
    sigma = _float(field << 52)
    q0 = q1 = q2 = q3 = r0 = r1 = r2 = r3 = 0.0
    body = k - k % 4
    for i in range(0, body, 4):
        a0 = (sigma + t[i]) - sigma
        a1 = (sigma + t[i + 1]) - sigma
        a2 = (sigma + t[i + 2]) - sigma
        a3 = (sigma + t[i + 3]) - sigma
        q0, q1, q2, q3 = q0 + a0, q1 + a1, q2 + a2, q3 + a3
        r0, r1, r2, r3 = r0 + (t[i] - a0), r1 + (t[i + 1] - a1), r2 + (t[i + 2] - a2), r3 + (t[i + 3] - a3)
    for i in range(body, k):
        a0 = (sigma + t[i]) - sigma
        q0 += a0
        r0 += t[i] - a0
    qs = (q0 + q1) + (q2 + q3)
    rs = (r0 + r1) + (r2 + r3)
    hi = qs + rs
    return _certify(hi, _two_sum_error(qs, rs, hi), sigma * (2.0 * k * k * U * U), False, p)


@inline
def _compensated_step(s: float, c: float, a: float, t: float) -> tuple[float, float, float]:
    """One term of the compensated sum: s + t = s' + e and c + e = c' + f exactly (TwoSums);
    a accumulates |f|."""
    s1 = s + t
    e = _two_sum_error(s, t, s1)
    c1 = c + e
    return s1, c1, a + abs(_two_sum_error(c, e, c1))


@inline
def _compensated_result(s: float, c: float, a: float, k: int, p: int) -> tuple[float, bool]:
    """Σt = s + c + Σf, |Σf| <= a·(1 + g) (docs), certified; exact when a = 0. An exact zero has
    MPFR's sign: −0 only when every term is −0, which is when the IEEE sum s is −0."""
    hi = s + c
    lo = _two_sum_error(s, c, hi)
    hi = s if (s == 0.0) & (c == 0.0) else hi
    g = 2.0**-40 if k <= 2048 else 4.0 * k * U
    return _certify(hi, lo, a + a * g, (a == 0.0) & (abs(hi) < np.inf), p)


@jit
def compensated_row(t: np.ndarray, p: int) -> tuple[float, bool]:
    """The compensated sum of one row, term after term."""
    s, c, a = t[0], 0.0, 0.0
    for i in range(1, t.size):
        s, c, a = _compensated_step(s, c, a, t[i])
    return _compensated_result(s, c, a, t.size, p)


@jit
def _compensated_columns(rows: np.ndarray, p: int, out: np.ndarray, flagged: np.ndarray) -> None:
    """The compensated sum of every row at once, a column at a time (vectorised over rows)."""
    n, k = rows.shape
    s, c, a = rows[:, 0].copy(), np.zeros(n), np.zeros(n)
    for j in range(1, k):
        for i in range(n):
            s[i], c[i], a[i] = _compensated_step(s[i], c[i], a[i], rows[i, j])
    for i in range(n):
        out[i], ok = _compensated_result(s[i], c[i], a[i], k, p)
        flagged[i] = not ok


@jit
def _sum_rows(rows: np.ndarray, p: int, out: np.ndarray, flagged: np.ndarray, start: int, stop: int) -> None:
    """``sum_rows`` of rows start..stop (each row's operations the same whatever the range)."""
    k = rows.shape[1]
    c = 0
    while (1 << c) < 2 * k:
        c += 1
    if k <= SMALL_ROW:
        _compensated_columns(rows[start:stop], p, out[start:stop], flagged[start:stop])
        for i in range(start, stop):
            if flagged[i]:
                out[i], ok = extracted_row(rows[i], p, c)
                flagged[i] = not ok
        return
    for i in range(start, stop):
        r, ok = extracted_row(rows[i], p, c)
        if not ok:
            r, ok = compensated_row(rows[i], p)
        out[i] = r
        flagged[i] = not ok


ROW_PARTS = 64
"""Ranges of rows the parallel ⊕ deals out to numba's threads."""


@jit
def _sum_rows_serial(rows: np.ndarray, p: int, out: np.ndarray, flagged: np.ndarray) -> None:
    _sum_rows(rows, p, out, flagged, 0, rows.shape[0])


@parallel
def _sum_rows_parallel(rows: np.ndarray, p: int, out: np.ndarray, flagged: np.ndarray) -> None:
    n = rows.shape[0]
    parts = min(n, ROW_PARTS)
    for t in numba.prange(parts):
        _sum_rows(rows, p, out, flagged, t * n // parts, (t + 1) * n // parts)


def sum_rows(rows: np.ndarray, p: int, out: np.ndarray, flagged: np.ndarray) -> None:
    """round_p(Σ row) of each row of a C-contiguous (n, k >= 1) array by the extraction and the
    compensated sum (the cheaper first, by SMALL_ROW); rows neither certifies are flagged (NaN)."""
    _run(_sum_rows_serial, _sum_rows_parallel, rows.size, rows, p, out, flagged)
