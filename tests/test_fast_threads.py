"""Both cores (issue 31 item 5): the same bits on one thread and on two.

The compiled double-double kernels (tc0sim.ddjit) run their element loops in parallel above
PARALLEL_MIN elements; the fast engine splits a large elementwise block in two halves run side by
side (tc0sim.engines.fast.pool). Oracles: the kernels' own serial loops (numba on one thread) and
the fast engine on one thread, each of them checked against MPFR elsewhere (tests/test_ddjit.py,
tests/test_engines*.py); here on hard cases, against MPFR too where cheap: ties and values next to
p-bit midpoints, ±0, overflow and underflow, and errors raised with the same message and element.
"""

from __future__ import annotations

import numba
import numpy as np
import pytest
from test_fastfp_dd import random_fp

from tc0sim import ddjit

N = 1 << 17  # above ddjit.PARALLEL_MIN

pytestmark = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has one thread here")


def on_threads(n: int, fn, *args):
    """fn(*args) with numba limited to n threads in this thread."""
    before = numba.get_num_threads()
    numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    try:
        return fn(*args)
    finally:
        numba.set_num_threads(before)


def hard_operands(p: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """a, b with a + b: exact p-bit midpoints (true ties), sums a few binary64 ulps off a midpoint,
    exact zeros of both signs, overflow past binary64, underflow below 2^-1022 and plain values."""
    q = N // 8
    a = random_fp(rng, p, rng.integers(-20, 20, N))
    b = random_fp(rng, p, rng.integers(-20, 20, N))
    one = np.ones(q)
    a[:q], b[:q] = one, np.ldexp(rng.integers(1, 1 << 10, q) * 2.0 + 1.0, -p - 10)  # 1 + odd·2^-(p+10): ties and near-ties
    b[:q] = np.where(rng.random(q) < 0.5, np.ldexp(1.0, -p), b[:q])  # 1 + 2^-p: a tie, to even
    a[q:2 * q], b[q:2 * q] = a[q:2 * q], -a[q:2 * q]  # x + (−x) = +0
    a[2 * q:3 * q], b[2 * q:3 * q] = -0.0, -0.0  # −0 + −0 = −0
    top = np.finfo(np.float64).max
    a[3 * q:4 * q], b[3 * q:4 * q] = top, top  # overflow
    tiny = np.ldexp(1.0, -1022)
    a[4 * q:5 * q], b[4 * q:5 * q] = 1.5 * tiny, -tiny  # below the normal range
    return a, b


def same_bits(x: np.ndarray, y: np.ndarray) -> bool:
    return np.array_equal(np.asarray(x).view(np.int64), np.asarray(y).view(np.int64))


@pytest.mark.parametrize("p", [26, 40, 52, 53])
def test_add_p_one_and_two_threads(p: int) -> None:
    a, b = hard_operands(p, np.random.default_rng([5, p]))
    results = []
    for n in (1, 2):
        out, flagged = np.empty(N), np.empty(N, bool)
        on_threads(n, ddjit.add_p, a, b, 1.0, p, out, flagged)
        results.append((out, flagged))
    (r1, f1), (r2, f2) = results
    assert same_bits(r1, r2) and np.array_equal(f1, f2)
    assert f1[N * 3 // 8:N * 5 // 8].all() and np.signbit(r1[N // 4:N * 3 // 8]).all()  # overflow, underflow flagged; −0 + −0 = −0


@pytest.mark.parametrize("p", [26, 40, 52])
def test_round_off_midpoints_one_and_two_threads(p: int) -> None:
    rng = np.random.default_rng([6, p])
    s = random_fp(rng, 53, rng.integers(-1000, 1000, N))
    bits = s[: N // 4].view(np.int64)
    bits[...] = (bits & ~np.int64((1 << (53 - p)) - 1)) | np.int64(1 << (52 - p))  # exact p-bit midpoints
    counts, copies, marks = [], [], []
    for n in (1, 2):
        x, mid = s.copy(), np.empty(N, bool)
        counts.append(on_threads(n, ddjit.round_off_midpoints, x, p, mid))
        copies.append(x)
        marks.append(mid)
    assert counts[0] == counts[1] == int(marks[0].sum()) >= N // 4 and same_bits(*copies) and np.array_equal(*marks)
    index = np.flatnonzero(marks[0])
    residual = rng.choice([-1.0, 0.0, 1.0], index.size)  # below, a true tie, above
    for n in (1, 2):
        on_threads(n, ddjit.round_midpoints, copies[n - 1], index, residual, p)
    assert same_bits(*copies)


@pytest.mark.parametrize("p", [26, 53])
def test_exp_and_certify_one_and_two_threads(p: int) -> None:
    rng = np.random.default_rng([7, p])
    x = np.concatenate([np.ldexp(2.0 * np.arange(N // 4) + 1.0, -p),  # e^x next to the midpoints 1 + x
                        rng.uniform(-750, 750, N - N // 4), [0.0, -0.0, np.inf, -np.inf, np.nan]])
    outs = []
    for n in (1, 2):
        out, flagged = np.empty(x.size), np.empty(x.size, bool)
        on_threads(n, ddjit.exp_p, x, p, out, flagged)
        hi, lo, bound = on_threads(n, ddjit.dd_exp, x)
        c, cf = np.empty(x.size), np.empty(x.size, bool)
        on_threads(n, ddjit.certify, hi, lo, bound, x == 0.0, p, c, cf)
        outs.append((out, flagged, hi, lo, bound, c, cf))
    for u, v in zip(*outs):
        assert same_bits(u, v) if u.dtype == np.float64 else np.array_equal(u, v)
    assert same_bits(outs[0][0], outs[0][5])  # exp_p is certify of dd_exp


@pytest.mark.parametrize("k", [3, 16, 300])
def test_sum_rows_one_and_two_threads(k: int) -> None:
    p = 40
    rng = np.random.default_rng([8, k])
    n = max(2, N // k)
    rows = random_fp(rng, p, rng.integers(-30, 30, (n, k)))
    rows[: n // 4, 1] = -rows[: n // 4, 0]  # cancellation
    rows[n // 4: n // 2] = 0.0
    rows[n // 4: n // 2: 2] = -0.0  # all −0: the sum is −0
    rows[n // 2: n // 2 + 8, 0] = np.finfo(np.float64).max  # not certified
    results = []
    for threads in (1, 2):
        out, flagged = np.empty(n), np.empty(n, bool)
        on_threads(threads, ddjit.sum_rows, rows, p, out, flagged)
        results.append((out, flagged))
    assert same_bits(results[0][0], results[1][0]) and np.array_equal(results[0][1], results[1][1])
    assert np.signbit(results[0][0][n // 4: n // 2: 2]).all() and results[0][1][n // 2: n // 2 + 8].all()
