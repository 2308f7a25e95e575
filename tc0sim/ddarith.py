"""Error-free transformations and double-double arithmetic on float64 arrays (numbers layer).

TwoSum (O. Møller, BIT 5, 1965; D. E. Knuth, TAOCP vol. 2, §4.2.2), Dekker's product with
Veltkamp's split (T. J. Dekker, Numerische Mathematik 18, 1971), and from them the double-double
sums, products and exponential of tc0sim.fastfp_dd, each with a rigorous error bound (proofs in
docs/semantics.md §2.7). Every function is vectorised over rows or elements.
"""

from __future__ import annotations

import math

import gmpy2
import numpy as np

__all__ = [
    "U", "two_sum_error", "split", "product_error", "square_error", "extracted_sum", "compensated_sum", "dd_product",
    "dd_exp",
]

U = 2.0**-53
"""Unit roundoff of binary64."""

_VELTKAMP = 134217729.0  # 2^27 + 1


def two_sum_error(a: np.ndarray, b: np.ndarray, s: np.ndarray) -> np.ndarray:
    """a + b − s exactly, for s = fl(a + b) (Knuth's TwoSum; exact in any range, also subnormal)."""
    bb = s - a
    return (a - (s - bb)) + (b - bb)


def split(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Veltkamp's split: a = hi + lo exactly, each with at most 26 significant bits."""
    c = _VELTKAMP * a
    hi = c - (c - a)
    return hi, a - hi


def product_error(a: np.ndarray, b: np.ndarray, s: np.ndarray) -> np.ndarray:
    """a·b − s exactly, for s = fl(a·b) with a, b in [1/4, 4) (Dekker: no step over- or underflows)."""
    ah, al = split(a)
    bh, bl = split(b)
    return (((ah * bh - s) + ah * bl) + al * bh) + al * bl


def square_error(a: np.ndarray, s: np.ndarray) -> np.ndarray:
    """a² − s exactly, for s = fl(a²): Dekker's product with b = a, whose two middle terms
    a_h·a_l are added at once (their sum 2·a_h·a_l is exact, and so is Dekker's partial sum)."""
    ah, al = split(a)
    return ((ah * ah - s) + 2.0 * (ah * al)) + al * al


def reducible(rows: np.ndarray) -> tuple[np.ndarray, int]:
    """Rows laid out for fast row reductions, and the axis to reduce: numpy reduces a short
    contiguous axis one row at a time, so short rows are transposed once (the sums here hold
    in any order of summation)."""
    return (np.ascontiguousarray(rows.T), 0) if rows.shape[1] <= 64 else (rows, 1)


def extracted_sum(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row of a 2-d array: (hi, lo, bound, exact) with hi + lo within bound of the exact sum.

    Error-free extraction (S. M. Rump, T. Ogita, S. Oishi, "Accurate floating-point summation
    part I: faithful rounding", SIAM J. Sci. Comput. 31(1), 2008, ExtractVector): with σ a power
    of two >= 2k·max|t|, q = (σ + t) − σ is exact, a multiple of u·σ, and t − q is exact with
    |t − q| <= u·σ; the q sum exactly in any order (partial sums are multiples of u·σ below σ).
    The remainders are summed in binary64, within γ_(k−1)·Σ|t − q| <= γ_(k−1)·k·u·σ <= 2·k²·u²·σ
    of their sum (k·u <= 2^-10). Exact ties are left to compensated_sum, which detects them."""
    n, k = rows.shape
    x, axis = reducible(rows)
    with np.errstate(all="ignore"):
        _, e = np.frexp(np.maximum(x.max(axis=axis), -x.min(axis=axis)))
        sigma = np.ldexp(1.0, e + math.ceil(math.log2(2 * k)))
        q = x + np.expand_dims(sigma, axis)
        q -= np.expand_dims(sigma, axis)
        exact_part = q.sum(axis=axis)
        rest = np.subtract(x, q, out=q)  # q is summed: its memory takes the remainders
        part = rest.sum(axis=axis)
        hi = exact_part + part
        lo = two_sum_error(exact_part, part, hi)
        bound = sigma * (2.0 * k * k * U * U) if k * U <= 2.0**-10 else np.full(n, np.inf)
    return hi, lo, bound, np.zeros(n, bool)


def compensated_sum(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row of a 2-d array: (hi, lo, bound, exact) with hi + lo within bound of the exact sum.

    A pairwise tree of TwoSums (each exact) leaves the root S and errors e_j with Σt = S + Σe_j.
    C sums the e_j along the same tree with TwoSums too, so Σe_j = C + Σf_j exactly, f_j the
    errors of C's own additions; A sums |f_j| along the tree (each through at most 3L additions,
    L levels), so |Σf_j| <= A/(1 − γ_3L) <= A·(1 + 2^-40) for L < 2^11. (hi, lo) = TwoSum(S, C).
    Exact when A = 0. Handles cancellation far beyond extracted_sum's reach."""
    s = rows
    c = np.zeros_like(rows)
    a = np.zeros_like(rows)
    with np.errstate(all="ignore"):
        while s.shape[1] > 1:
            h = s.shape[1] // 2
            s1, s2 = s[:, :h], s[:, h:2 * h]
            top = s1 + s2
            err = two_sum_error(s1, s2, top)
            c1, c2 = c[:, :h], c[:, h:2 * h]
            c12 = c1 + c2
            f1 = two_sum_error(c1, c2, c12)
            c_new = c12 + err
            f2 = two_sum_error(c12, err, c_new)
            a_new = ((a[:, :h] + a[:, h:2 * h]) + np.abs(f1)) + np.abs(f2)
            s = np.concatenate([top, s[:, 2 * h:]], axis=1)
            c = np.concatenate([c_new, c[:, 2 * h:]], axis=1)
            a = np.concatenate([a_new, a[:, 2 * h:]], axis=1)
        big_s, big_c, big_a = s[:, 0], c[:, 0], a[:, 0]
        hi = big_s + big_c
        lo = two_sum_error(big_s, big_c, hi)
        bound = big_a + big_a * 2.0**-40
    return hi, lo, bound, (big_a == 0) & np.isfinite(hi)


def dd_product(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row: (h, l, e, bound) with Π rows = (h + l)·2^e·(1 + θ), |θ·(h + l)| <= bound.

    Significands m_i in [1/2, 1) (frexp) are multiplied into a double-double kept in [1/2, 1):
    (ph, pl) = exact h·m (Dekker), (h, l) = TwoSum(ph, fl(pl + fl(l·m))), a relative error of
    at most 3.0001·u² per step; hence |θ| <= 3.0002·(k − 1)·u² for k·u² tiny (bound 4·k·u²·|h|)."""
    n, k = rows.shape
    mant, exps = np.frexp(rows)
    e = exps.sum(axis=1, dtype=np.int64)
    h = mant[:, 0].copy() if k else np.ones(n)
    l = np.zeros(n)
    for i in range(1, k):
        m = mant[:, i]
        ph = h * m
        pl = product_error(h, m, ph)
        v = pl + l * m
        h = ph + v
        l = two_sum_error(ph, v, h)
        h, shift = np.frexp(h)
        l = np.ldexp(l, -shift)
        e += shift
    return h, l, e, np.abs(h) * (4 * k * U * U)


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
_TAYLOR = [1.0 / math.factorial(i) for i in range(7, 2, -1)]  # 1/7!, ..., 1/3! for Horner
EXP_DD_RELATIVE_ERROR = 2.0**-71
"""Bound on dd_exp's relative error (the budget in docs/semantics.md §2.7 gives 2^-73.3)."""


def dd_exp(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hi, lo, bound) with |e^x − (hi + lo)| <= bound = 2^-71·|hi| + 2^-1074, |lo| <= ulp(hi)/2;
    bound is infinite where e^x is outside binary64's normal range.

    x = N·ln2/64 + r (Cody–Waite in three parts, r = rh + rl normalised, |r| <= 0.00542), then
    e^r = 1 + r + r²/2 + r³·Q(r) with r² exact (Dekker) and Q of degree 4 in binary64 (Horner),
    times 2^(j/64) in double-double (Tang's table, N = 64k + j), times 2^k."""
    x = np.asarray(x, dtype=np.float64)
    with np.errstate(all="ignore"):
        ok = np.abs(x) <= 746
        xs = np.where(ok, x, 0.0)
        n = np.rint(xs * _INV_STEP)
        r1 = xs - n * _L1  # exact (n·L1 has <= 49 bits; Sterbenz for |n| >= 2, docs for n = ±1)
        t2 = n * _L2
        rh = r1 - t2
        rl = two_sum_error(r1, -t2, rh) - n * _L3
        s = rh + rl
        rl = two_sum_error(rh, rl, s)
        rh = s
        h2 = rh * rh
        half = h2 * 0.5
        m = square_error(rh, h2) * 0.5 + rh * rl
        q = _TAYLOR[0] * rh + _TAYLOR[1]
        for c in _TAYLOR[2:]:
            q = c + rh * q
        tail = ((rh * rh) * rh) * q
        s1 = 1.0 + rh
        s2 = s1 + half
        small = (((two_sum_error(1.0, rh, s1) + two_sum_error(s1, half, s2)) + rl) + m) + tail
        eh = s2 + small
        el = two_sum_error(s2, small, eh)
        ni = n.astype(np.int64)
        j = ni & 63
        th, tl = _TH[j], _TL[j]
        ph = th * eh
        pl = product_error(th, eh, ph) + (th * el + tl * eh)
        hi = ph + pl
        lo = two_sum_error(ph, pl, hi)
        k = (ni >> 6).astype(np.int32)
        hi, lo = np.ldexp(hi, k), np.ldexp(lo, k)
        # + 2^-1074: lo may have been rounded to a subnormal by the scaling
        bound = np.where(ok & (np.abs(hi) >= 2.0**-1022), np.abs(hi) * EXP_DD_RELATIVE_ERROR + 2.0**-1074, np.inf)
    return hi, lo, bound
