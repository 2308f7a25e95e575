"""The double-double kernels of F_p (26 <= p <= 53) against MPFR and exact rationals.

Oracles, none of them the code under test: the MPFR Format of tc0sim.fp on exactly converted
operands (10^6 random tuples per primitive at p = 53, 2.5·10^5 at each other p), and Python
Fractions (tests/reference.py) on constructed hard cases: exact ties, results a hair off a p-bit
midpoint that binary64 rounds onto it, catastrophic cancellation, binary64's range limits.
Unflagged elements must equal MPFR's value; flagged ones are NaN, left to MPFR (the caller's
recomputation), and every element whose MPFR result is no normal binary64 must be flagged.
"""

from __future__ import annotations

import math
from fractions import Fraction

import gmpy2
import numpy as np
import pytest
from reference import round_fraction, sqrt_p

from tc0sim.ddjit import dd_exp
from tc0sim.fastfp_dd import MAX_P, MIN_P, Kernels53, supports
from tc0sim.fp import Format, FpArithmeticError

PRECISIONS = (26, 32, 40, 52, 53)
N_53, N_OTHER = 1_000_000, 250_000
MAX_FLOAT = float(np.finfo(np.float64).max)


def random_fp(rng: np.random.Generator, p: int, exps: np.ndarray) -> np.ndarray:
    """Random p-bit values with floor(log2|x|) = exps, random signs."""
    m = rng.integers(2 ** (p - 1), 2**p, size=exps.shape, dtype=np.int64).astype(np.float64)
    return np.ldexp(m * rng.choice([-1.0, 1.0], size=exps.shape), (exps - (p - 1)).astype(np.int32))


def mpfr_array(x: np.ndarray) -> np.ndarray:
    """Exact mpfr copies of binary64 values."""
    return np.array([gmpy2.mpfr(v, 53) for v in np.ravel(x).tolist()], dtype=object).reshape(np.shape(x))


def mpfr_result(F: Format, prim: str, *args: np.ndarray) -> list:
    """MPFR's value of each element (or its error), element by element."""
    shape = np.broadcast_shapes(*(a.shape for a in args))
    return [attempt(F.apply, prim, *ops) for ops in zip(*(mpfr_array(np.broadcast_to(a, shape)).ravel().tolist() for a in args))]


def attempt(fn, *args):
    """fn(*args), or the F_p error it raises."""
    try:
        return fn(*args)
    except FpArithmeticError as e:
        return e


def check(r: np.ndarray, flagged: np.ndarray, expected: list) -> None:
    """Non-flagged elements equal MPFR's (same value, +0 = −0); elements MPFR cannot give as a
    normal binary64 (or refuses) are flagged; flagged values are NaN."""
    r, flagged = r.ravel(), flagged.ravel()
    for i, v in enumerate(expected):
        if flagged[i]:
            assert math.isnan(r[i]), i
        else:
            assert not isinstance(v, Exception) and (v == 0 or 2.0**-1022 <= abs(float(v)) <= MAX_FLOAT), (i, v)
            assert r[i] == float(v), (i, r[i], v)


def check_fast(r: np.ndarray, flagged: np.ndarray, expected: np.ndarray) -> None:
    """Vectorised check against MPFR values that are all normal binary64 numbers."""
    ok = ~flagged.ravel()
    got, want = r.ravel()[ok], expected.ravel()[ok]
    bad = np.flatnonzero(got != want)
    assert bad.size == 0, f"{bad.size} differ, first {got[bad[0]]!r} vs {want[bad[0]]!r}"
    assert np.isnan(r.ravel()[~ok]).all()


def oracle_map(F: Format, prim: str, *args: np.ndarray) -> np.ndarray:
    """Format.map over exact mpfr copies, as float64 (all results normal by construction)."""
    out = F.map(prim, *(mpfr_array(a) for a in args))
    return np.array([float(v) for v in out.ravel().tolist()]).reshape(out.shape)


def random_operands(prim: str, p: int, n: int, seed: int) -> list[np.ndarray]:
    """Random tuples with results in binary64's normal range (± : close exponents, 5 % cancelling)."""
    rng = np.random.default_rng([seed, p, len(prim)])
    ea = rng.integers(-400, 400, n)
    if prim == "sqrt":
        return [np.abs(random_fp(rng, p, rng.integers(-1000, 1000, n)))]
    if prim == "exp":
        return [random_fp(rng, p, rng.integers(-30, 9, n))]
    if prim in ("add", "sub"):
        b = random_fp(rng, p, ea + rng.integers(-p - 6, p + 7, n))
        a = random_fp(rng, p, ea)
        return [a, np.where(rng.random(n) < 0.05, -a if prim == "add" else a, b)]
    return [random_fp(rng, p, ea), random_fp(rng, p, rng.integers(-400, 400, n))]


@pytest.mark.parametrize("p", PRECISIONS)
@pytest.mark.parametrize("prim", ["add", "sub", "mul", "div", "sqrt"])
def test_basic_primitives_match_mpfr_on_random_tuples(prim: str, p: int) -> None:
    n = N_53 if p == 53 else N_OTHER
    args = random_operands(prim, p, n, seed=1)
    r, flagged = Kernels53(p).map(prim, *args)
    check_fast(r, flagged, oracle_map(Format(p), prim, *args))
    assert flagged.sum() == 0  # every result is inside the range and every midpoint resolved


@pytest.mark.parametrize("p", PRECISIONS)
def test_exp_certified_or_flagged_matches_mpfr(p: int) -> None:
    n = N_53 if p == 53 else 200_000
    (x,) = random_operands("exp", p, n, seed=2)
    x[:10] = 0.0
    r, flagged = Kernels53(p).exp(x)
    check_fast(r, flagged, oracle_map(Format(p), "exp", x))
    assert not flagged[:10].any() and (r[:10] == 1).all()
    assert flagged.mean() < 1e-4  # about 2^(p−70) lie within the double-double's bound of a midpoint


def test_double_double_exp_error_is_inside_its_bound() -> None:
    """Against MPFR's e^x at 300 bits: random arguments over binary64's range, arguments next to
    multiples of ln2/64 (the reduction's worst cancellation), tiny and extreme ones."""
    rng = np.random.default_rng(14)
    near = np.rint(rng.uniform(-700, 700, 3000) * 64 / math.log(2)) * math.log(2) / 64
    x = np.concatenate([rng.uniform(-708, 709.7, 5000), near, np.nextafter(near, 0), [0.0, 2.0**-1074, -1e-300, 709.78, -708.39]])
    hi, lo, bound = dd_exp(x)
    ctx = gmpy2.context(precision=300)
    for v, h, l, b in zip(x.tolist(), hi.tolist(), lo.tolist(), bound.tolist()):
        e = ctx.exp(v)
        assert abs(ctx.sub(ctx.sub(e, h), l)) <= b, v
        assert abs(l) <= math.ulp(h) / 2 and b <= abs(h) * 2.0**-70 + 2.0**-1074
    assert np.isinf(dd_exp(np.array([710.0, -746.0, 800.0]))[2]).all()


@pytest.mark.parametrize("p", PRECISIONS)
def test_rounding_binary64_inputs(p: int) -> None:
    rng = np.random.default_rng(p)
    x = np.ldexp(rng.random(N_OTHER) + 1.0, rng.integers(-1000, 1000, N_OTHER)) * rng.choice([-1.0, 1.0], N_OTHER)
    r, flagged = Kernels53(p).round(x)
    F = Format(p)
    want = np.array([float(F.round(v)) for v in mpfr_array(x).tolist()])
    check_fast(r, flagged, want)
    assert not flagged.any()
    special = np.array([0.0, 2.0**-1074, -(2.0**-1030), MAX_FLOAT, math.inf, math.nan, 2.0**-1022 * 3])
    r, flagged = Kernels53(p).round(special)
    assert flagged.tolist() == [False, True, True, p < 53, True, True, False]
    assert r[0] == 0 and r[6] == 2.0**-1022 * 3


def midpoints(rng: np.random.Generator, p: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(r, half) with r a random p-bit value of exponent in [-300, 300] and half = ulp_p(r)/2,
    so that r + half is a p-bit midpoint (odd multiple of 2^(E−p))."""
    e = rng.integers(-300, 300, n)
    r = np.abs(random_fp(rng, p, e))
    return r, np.ldexp(1.0, (e - p).astype(np.int32))


def exact_check(p: int, prim: str, r: np.ndarray, flagged: np.ndarray, *args: np.ndarray) -> None:
    """Unflagged elements equal the Fraction oracle."""
    for i, ops in enumerate(zip(*(np.ravel(a).tolist() for a in args))):
        if not flagged.ravel()[i]:
            want = FRACTION_OPS[prim](p, *map(Fraction, ops))
            assert Fraction(float(r.ravel()[i])) == want, (prim, p, ops, r.ravel()[i], want)


FRACTION_OPS = {
    "add": lambda p, a, b: round_fraction(a + b, p), "sub": lambda p, a, b: round_fraction(a - b, p),
    "mul": lambda p, a, b: round_fraction(a * b, p), "div": lambda p, a, b: round_fraction(a / b, p),
    "sqrt": lambda p, a: sqrt_p(a, p),
}


@pytest.mark.parametrize("p", PRECISIONS)
def test_sums_on_and_one_binary64_ulp_off_a_midpoint(p: int) -> None:
    """r + ulp_p/2 is a tie (to even); r + ulp_p/2 ± 2^(E−60) rounds to that midpoint in binary64
    but away from it in F_p (double rounding would go to even)."""
    rng = np.random.default_rng([3, p])
    r, half = midpoints(rng, p, 4000)
    tiny = half * 2.0 ** (p - 60)
    b = np.concatenate([half, half + tiny, half - tiny, -(half + tiny)])
    a = np.concatenate([r, r, r, -r])
    K = Kernels53(p)
    for prim, bb in (("add", b), ("sub", -b)):
        out, flagged = K.map(prim, a, bb)
        assert not flagged.any()
        exact_check(p, prim, out, flagged, a, bb)
    if p < 53:  # binary64 lands on the midpoint itself in the three off-midpoint families
        assert (np.abs(a + b) == np.tile(r + half, 4)).all()


def near_midpoint_products(p: int, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """a·b = M + c·d with M a p-bit midpoint: a = 2^(p−1) + c, b = 3·2^(p−2) + d (c odd, small d;
    d = 0 is an exact tie), scaled by random powers of two and signs."""
    c = 2 * rng.integers(0, 4, n) + 1
    d = rng.integers(-40, 41, n)
    a = (2.0 ** (p - 1) + c) * rng.choice([-1.0, 1.0], n)
    b = 3 * 2.0 ** (p - 2) + d
    return np.ldexp(a, rng.integers(-300, 300, n).astype(np.int32)), np.ldexp(b, rng.integers(-300, 300, n).astype(np.int32))


def near_midpoint_quotients(p: int, rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """A/B = 2^-t·(M ± 1/(2B)) with M a p-bit midpoint: 2^(t+1)·A ≡ ±1 (mod B), A, B p-bit, B odd."""
    out_a, out_b = [], []
    while len(out_a) < n:
        B = int(rng.integers(2 ** (p - 1), 2**p)) | 1
        delta = int(rng.choice([-1, 1]))
        for t in (p - 1, p):
            A = delta * pow(2, -(t + 1), B) % B
            while A < 2 ** (p - 1):
                A += B
            if A < 2**p and (A >= B) == (t == p - 1):
                out_a, out_b = out_a + [A], out_b + [B]
                break
    scale = rng.integers(-300, 300, n).astype(np.int32)
    return np.ldexp(np.array(out_a, float), scale), np.ldexp(np.array(out_b, float), -scale)


NEAR_MIDPOINTS = {"mul": (near_midpoint_products, np.multiply, 4000), "div": (near_midpoint_quotients, np.divide, 2000)}


@pytest.mark.parametrize("p", PRECISIONS)
@pytest.mark.parametrize("prim", ["mul", "div"])
def test_products_and_quotients_on_and_near_midpoints(prim: str, p: int) -> None:
    """Exact ties (products only) and exact results a few units of 2^(−2p) off a midpoint,
    which binary64 rounds onto the midpoint itself (checked for 28 <= p < 53)."""
    make, numpy_op, n = NEAR_MIDPOINTS[prim]
    rng = np.random.default_rng([4, p, len(prim)])
    a, b = make(p, rng, n)
    out, flagged = Kernels53(p).map(prim, a, b)
    assert not flagged.any()
    exact_check(p, prim, out, flagged, a, b)
    if 28 <= p < 53:
        s = np.abs(numpy_op(a, b))
        assert ((s.view(np.int64) & ((1 << (53 - p)) - 1)) == 1 << (52 - p)).all()


@pytest.mark.parametrize("p", PRECISIONS)
def test_square_roots_just_below_midpoints(p: int) -> None:
    """√((2^(p−1) + 1)·2^(p−1)) and √((2^p − 1)·2^p) lie 2^(−p−2)-ish below the midpoints
    2^(p−1) + 1/2 and 2^p − 1/2: binary64 rounds them onto the midpoint for p >= 27."""
    rng = np.random.default_rng([6, p])
    base = np.array([(2.0 ** (p - 1) + 1) * 2.0 ** (p - 1), (2.0**p - 1) * 2.0**p] * 1000)
    a = np.ldexp(base, 2 * rng.integers(-400, 400, base.size).astype(np.int32))
    out, flagged = Kernels53(p).map("sqrt", a)
    assert not flagged.any()
    exact_check(p, "sqrt", out, flagged, a)


RANGE_CASES = [
    ("add", MAX_FLOAT, MAX_FLOAT), ("mul", 2.0**600, 2.0**500), ("mul", 2.0**-600, -(2.0**-500)),
    ("mul", 2.0**-511 * 1.5, 2.0**-511 * 1.5), ("div", 1.0, 0.0), ("div", 0.0, 0.0), ("div", 2.0**-1000, 2.0**100),
    ("sub", 2.0**-1022 * 1.5, 2.0**-1022), ("add", 2.0**-1021, -(2.0**-1022) * 1.25), ("mul", 0.0, -5.0),
    ("div", 0.0, 3.0), ("add", 7.0, -7.0), ("div", 2.0**1000, 2.0**-30), ("mul", 2.0**1023 * 1.5, 1.5),
    ("mul", 2.0**996, 2.0**20 * 1.5), ("div", 2.0**997, 2.0**-10 * 1.5),
]


@pytest.mark.parametrize("p", PRECISIONS)
def test_range_limits_are_flagged_and_recomputed(p: int) -> None:
    K, F = Kernels53(p), Format(p)
    for prim, a, b in RANGE_CASES:
        r, flagged = K.map(prim, np.array([a]), np.array([b]))
        check(r, flagged, mpfr_result(F, prim, np.array([a]), np.array([b])))
    x = np.array([-4.0, 0.0, -0.0, 2.0**-1020, 2.0**1020 * 1.75])
    r, flagged = K.map("sqrt", x)
    check(r, flagged, mpfr_result(F, "sqrt", x))
    assert flagged.tolist() == [True, False, False, False, False]
    x = np.array([710.0, -745.5, 700.0, 1e-300, -708.0, -685.0])
    r, flagged = K.exp(x)
    check(r, flagged, mpfr_result(F, "exp", x))
    assert flagged.tolist() == [True, True, False, False, True, p > 32]  # e^-685 < 2^(p+2−1023): flagged


@pytest.mark.parametrize("p", PRECISIONS)
def test_near_midpoint_products_at_the_range_limits(p: int) -> None:
    """Ties and near-ties with operands near 2^±996: resolved wherever MPFR's value is a normal
    binary64 above 2^-1022, flagged exactly where it is not (overflow, underflow)."""
    rng = np.random.default_rng([7, p])
    a, b = near_midpoint_products(p, rng, 400)
    a = np.ldexp(np.frexp(a)[0], rng.choice([-996, 996], 400) - rng.integers(0, 3, 400).astype(np.int32))
    b = np.ldexp(np.frexp(b)[0], rng.integers(-40, 40, 400).astype(np.int32))
    r, flagged = Kernels53(p).map("mul", a, b)
    want = mpfr_result(Format(p), "mul", a, b)
    check(r, flagged, want)
    assert flagged.tolist() == [not 2.0**-1022 < abs(float(v)) <= MAX_FLOAT for v in want]
    assert 0 < flagged.sum() < 400


def oracle_reduce(F: Format, prim: str, rows: np.ndarray) -> list:
    return [attempt(getattr(F, prim), row) for row in mpfr_array(rows).tolist()]


@pytest.mark.parametrize("p", PRECISIONS)
@pytest.mark.parametrize("k", [2, 3, 16, 257])
def test_random_sums_match_mpfr(p: int, k: int) -> None:
    rng = np.random.default_rng([8, p, k])
    n = (N_53 if p == 53 else N_OTHER // 4) // k  # 10^6 terms at p = 53
    rows = random_fp(rng, p, rng.integers(-20, 20, (n, k)))
    rows[: n // 4] = np.abs(rows[: n // 4])  # some rows of one sign
    r, flagged = Kernels53(p).sum(rows, axis=1)
    check(r, flagged, oracle_reduce(Format(p), "sum", rows))
    assert flagged.mean() < 0.01


@pytest.mark.parametrize("p", PRECISIONS)
@pytest.mark.parametrize("big_exps, max_flagged", [((20, 30), 0.01), ((50, 60), 1.0)])
@pytest.mark.parametrize("k", [16, 40])  # rows of 24 terms (summed a column at a time) and of 60
def test_sums_with_catastrophic_cancellation(p: int, big_exps: tuple[int, int], max_flagged: float, k: int) -> None:
    """Large terms that cancel exactly, shuffled among small ones: the plain binary64 sum is
    useless; the compensated sums certify a cancellation of 2^40, and what they leave is flagged."""
    rng, n = np.random.default_rng([9, p, big_exps[0], k]), 500
    big = random_fp(rng, p, rng.integers(*big_exps, (n, k // 2)))
    small = random_fp(rng, p, rng.integers(-20, 0, (n, k // 2)))
    rows = np.concatenate([big, -big[:, ::-1], small], axis=1)
    rows = np.take_along_axis(rows, rng.permuted(np.tile(np.arange(k + k // 2), (n, 1)), axis=1), axis=1)
    r, flagged = Kernels53(p).sum(rows, axis=1)
    check(r, flagged, oracle_reduce(Format(p), "sum", rows))
    for i in range(50):
        if not flagged[i]:
            assert Fraction(r[i]) == round_fraction(sum(map(Fraction, rows[i].tolist())), p)
    assert flagged.mean() <= max_flagged


@pytest.mark.parametrize("p", PRECISIONS)
def test_sums_on_and_near_midpoints(p: int) -> None:
    """Exact ties (r + ulp/4 + ulp/4), a third term 2^-40 of a half ulp pushing the sum off the
    midpoint (certified), and one 2^-70 off (beyond a double-double at p = 53: flagged there)."""
    rng = np.random.default_rng([10, p])
    r, half = midpoints(rng, p, 2000)
    q, tiny = half / 2, half * 2.0**-40
    rows = np.concatenate([
        np.stack([r, q, q], axis=1), np.stack([q, r, q], axis=1),
        np.stack([r, half, tiny], axis=1), np.stack([-r, -half, tiny], axis=1),
        np.stack([r, half, -tiny * 2.0**-30], axis=1),
    ])
    out, flagged = Kernels53(p).sum(rows, axis=1)
    assert not flagged[: 8000 if p == 53 else 10000].any()
    for i in range(0, rows.shape[0], 7):
        if not flagged[i]:
            assert Fraction(out[i]) == round_fraction(sum(map(Fraction, rows[i].tolist())), p)
    check(out, flagged, oracle_reduce(Format(p), "sum", rows))


@pytest.mark.parametrize("p", PRECISIONS)
def test_sums_at_the_range_limits(p: int) -> None:
    rows = np.array([
        [MAX_FLOAT, MAX_FLOAT, -MAX_FLOAT], [MAX_FLOAT, MAX_FLOAT, MAX_FLOAT], [2.0**-1022, -(2.0**-1023) * 1.5, 0.0],
        [0.0, 0.0, 0.0], [1.0, -1.0, 0.0], [2.0**-1000, 2.0**-1001, 2.0**-1030],
    ])
    r, flagged = Kernels53(p).sum(rows, axis=1)
    check(r, flagged, oracle_reduce(Format(p), "sum", rows))
    assert flagged.tolist()[:3] == [True, True, True] and r[3] == 0 and r[4] == 0


@pytest.mark.parametrize("p", PRECISIONS)
@pytest.mark.parametrize("k", [1, 2, 3, 8, 40])
def test_products_match_mpfr(p: int, k: int) -> None:
    rng = np.random.default_rng([11, p, k])
    rows = random_fp(rng, p, rng.integers(-20, 20, (2000, k)))
    rows[:5, 0] = 0.0
    if k >= 2:
        a, b = near_midpoint_products(p, rng, 500)
        rows[5:505, 0], rows[5:505, 1] = a, b
        rows[5:505, 2:] = 1.0
    r, flagged = Kernels53(p).prod(rows, axis=1)
    check(r, flagged, oracle_reduce(Format(p), "prod", rows))
    assert flagged[505:].mean() < 0.01 and (r[:5] == 0).all()
    big = np.array([[2.0**300] * 4, [2.0**-300] * 4, [0.0] + [2.0**300] * 3])
    r, flagged = Kernels53(p).prod(big, axis=1)
    check(r, flagged, oracle_reduce(Format(p), "prod", big))
    assert flagged.tolist() == [True, True, False]


def test_several_axes_empty_sums_and_the_precisions_served() -> None:
    p = 40
    rng = np.random.default_rng(12)
    x = random_fp(rng, p, rng.integers(-5, 5, (3, 4, 5)))
    F, K = Format(p), Kernels53(p)
    for prim in ("sum", "prod"):
        r, flagged = K.reduce(prim, x, (0, 2))
        want = F.reduce(prim, mpfr_array(x), (0, 2))
        assert r.shape == (4,) and not flagged.any()
        assert r.tolist() == [float(v) for v in want.tolist()]
    r, flagged = K.sum(np.zeros((2, 0)), axis=1)
    assert r.tolist() == [0.0, 0.0] and not flagged.any()
    assert [p for p in range(2, 70) if supports(p)] == list(range(MIN_P, MAX_P + 1))
    with pytest.raises(ValueError):
        Kernels53(25)


@pytest.mark.parametrize("p", [40, 52])
def test_broadcast_operands(p: int) -> None:
    """Operands broadcast against each other (a column times a row), as the engine passes them."""
    rng = np.random.default_rng([13, p])
    a, b = random_fp(rng, p, rng.integers(-5, 5, (300, 1))), random_fp(rng, p, rng.integers(-5, 5, (1, 200)))
    F, K = Format(p), Kernels53(p)
    for prim in ("add", "mul", "div"):
        r, flagged = K.map(prim, a, b)
        full = [np.ascontiguousarray(np.broadcast_to(x, (300, 200))) for x in (a, b)]
        check_fast(r, flagged, oracle_map(F, prim, *full))
        assert r.shape == (300, 200) and not flagged.any()
