"""The compiled kernels (tc0sim.ddjit, through Kernels53) against MPFR: the double-double
exponential above all (exp_p through Kernels53.exp), and the signs of zero sums.

Oracles, none of them the code under test: the MPFR Format of tc0sim.fp on exactly converted
p-bit arguments, and MPFR at 300 bits for the distance of e^x to the nearest p-bit midpoint.
Hard cases are constructed: x = ±(2j + 1)·2^-p (resp. 2^-(p+1)) puts e^x = 1 + x + x²/2 + …
just above a p-bit midpoint 1 + x of [1, 2) (or 1 + x of [1/2, 1)), x²/2 away, and x = RN_p(ln m)
for random midpoints m puts e^x within ulp_p(x)/2 (relative) of m; then binary64's range limits,
the certification floor, F_p's underflow, tiny |x|, ±0 and huge negative arguments.
"""

from __future__ import annotations

import math

import gmpy2
import numpy as np
import pytest
from test_fastfp_dd import PRECISIONS, check, check_fast, mpfr_result, oracle_map, oracle_reduce, random_fp

from tc0sim.fastfp_dd import Kernels53
from tc0sim.fp import Format

N = 1_000_000


def to_p(x: np.ndarray, p: int) -> np.ndarray:
    """x rounded to p bits (round to nearest even), by MPFR."""
    return np.array([float(gmpy2.mpfr(v, p)) for v in np.ravel(x).tolist()])


@pytest.mark.parametrize("p", PRECISIONS)
def test_exp_on_a_million_random_arguments(p: int) -> None:
    """Half with |x| in [2^-30, 512) (random exponents and signs), half uniform over the whole
    certified range [−708.39, 709.78]; every certified value is MPFR's, almost all are certified
    above the certification floor, and none below it."""
    rng = np.random.default_rng([31, p])
    x = np.concatenate([
        random_fp(rng, p, rng.integers(-30, 9, N // 2)),
        np.ldexp(np.rint(np.ldexp(rng.uniform(-708.39, 709.78, N // 2), p - 10)), 10 - p),  # p-bit: multiples of 2^(10−p) below 2^10
    ])
    x = x[(x >= -708.39) & (x <= 709.78)]
    r, flagged = Kernels53(p).exp(x)
    check_fast(r, flagged, oracle_map(Format(p), "exp", x))
    floor = (p + 2 - 1023) * 0.6931471805599453  # e^floor = 2^(p+2−1023), the certification floor
    assert x.size > 0.99 * N and flagged[x > floor + 0.01].mean() < 1e-4 and flagged[x < floor - 0.01].all()


def near_midpoints(p: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(x, tiny): p-bit arguments whose e^x lies near a p-bit midpoint; ``tiny`` marks those
    within 2^-73 of one (relative): the double-double's error (at most 2^-73.3, docs) leaves hi + lo
    within its bound 2^-71 of the midpoint, so no certificate is possible. j is log-uniform."""
    j = np.floor(np.exp2(rng.uniform(0, min(20, p - 1), 4000)))
    above = np.ldexp(2.0 * j + 1.0, -p)  # 1 + x is a midpoint of [1, 2)
    below = -np.ldexp(2.0 * j + 1.0, -(p + 1))  # 1 + x is a midpoint of [1/2, 1)
    ctx = gmpy2.context(precision=300)
    mids = [ctx.mul(ctx.add(ctx.mul(2, int(m)), 1), ctx.exp2(int(e) - p)) for m, e in
            zip(rng.integers(2 ** (p - 1), 2**p, 4000).tolist(), rng.integers(-1000, 1000, 4000).tolist())]
    logs = to_p(np.array([float(ctx.log(m)) for m in mids]), p)  # RN_53 then RN_p: still within ulp_p(x) of ln m
    x = np.concatenate([above, below, logs])
    tiny = np.concatenate([above * above / 2 < 2.0**-73, below * below / 2 < 2.0**-73, np.zeros(logs.size, bool)])
    return x, tiny


@pytest.mark.parametrize("p", PRECISIONS)
def test_exp_next_to_midpoints(p: int) -> None:
    """Certified values are MPFR's; those too close to a midpoint for the bound are flagged
    (refused, then recomputed by MPFR), never guessed."""
    x, tiny = near_midpoints(p, np.random.default_rng([32, p]))
    r, flagged = Kernels53(p).exp(x)
    check_fast(r, flagged, oracle_map(Format(p), "exp", x))
    assert flagged[tiny].all()
    if p >= 40:
        assert tiny.sum() > 200
    assert flagged[-4000:].mean() < 0.05  # RN_p(ln m): certified but for the certification floor


@pytest.mark.parametrize("p", PRECISIONS)
def test_exp_range_limits(p: int) -> None:
    """Zeros, tiny and huge arguments, binary64's overflow and underflow, the certification floor
    (e^x >= 2^(p+2−1023)) and F_p's underflow (MPFR raises it; the kernel flags the element)."""
    floor = (p + 2 - 1023) * float(gmpy2.log(2))
    cases = np.array([
        0.0, -0.0, 2.0**-1074, -(2.0**-1074), 1e-300, -1e-300, 2.0**-60, -(2.0**-60), 2.0 ** -(p + 1), -(2.0 ** -(p + 2)),
        709.78, 709.782712893384, 709.7827128933841, 710.0, 746.0, 800.0, 1e300,
        -708.39, -708.4, -709.0, -745.13, -746.0, -1e5, -1e300, floor, floor - 1e-9, floor + 1e-9, floor - 1.0, floor + 1.0,
    ])
    x = to_p(cases, p)
    K, F = Kernels53(p), Format(p)
    r, flagged = K.exp(x)
    check(r, flagged, mpfr_result(F, "exp", x))
    assert not flagged[:10].any() and (r[:2] == 1.0).all()
    assert flagged[13:17].all() and flagged[19:24].all()  # beyond binary64: MPFR's value or error
    assert not flagged[-1] and flagged[-2]  # inside and below the certification floor


def test_exp_writes_into_out_and_broadcasts() -> None:
    K = Kernels53(53)
    out = np.empty((2, 3))
    r, flagged = K.exp(np.array([0.0, 1.0, -1.0]), out=out)
    assert r is out and not flagged.any()
    assert out.tolist() == [[1.0, float(gmpy2.exp(1)), float(gmpy2.exp(-1))]] * 2


@pytest.mark.parametrize("k", [1, 2, 3, 40])  # rows summed a column at a time (k <= 32) and one by one
def test_zero_sums_have_mpfr_sign(k: int) -> None:
    """An exact zero sum is −0 only when every term is −0 (MPFR's mpfr_sum, round to nearest)."""
    rows = np.array([[-0.0] * k, [0.0] * k, [-0.0] * (k - 1) + [0.0], [1.5] * (k - 1) + [-1.5 * (k - 1)]])
    for p in (26, 53):
        r, flagged = Kernels53(p).sum(rows, axis=1)
        expected = oracle_reduce(Format(p), "sum", rows)
        assert not flagged.any() and (r == 0).all()
        assert [math.copysign(1, v) for v in r] == [math.copysign(1, float(v)) for v in expected]
