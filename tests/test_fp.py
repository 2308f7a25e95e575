"""Tests of tc0sim.fp against independent oracles (exact rationals, IEEE hardware, mpmath)."""

from __future__ import annotations

import math
import pickle
from fractions import Fraction

import gmpy2
import mpmath
import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tc0sim.errors import Tc0simError
from tc0sim.fp import (
    DivisionByZero,
    ExpOverflow,
    Format,
    FpArithmeticError,
    FpOverflow,
    FpUnderflow,
    NegativeSqrt,
    NotRepresentableError,
    PrecisionError,
)

PS = (2, 3, 5, 8, 11, 24, 53, 64, 113)
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# --- the exact-rational oracle ----------------------------------------------------------------


class OracleOverflow(Exception):
    pass


class OracleUnderflow(Exception):
    pass


def oracle_round(q: Fraction, p: int) -> Fraction:
    """Nearest p-bit float to q, ties to even significand; range e in [-2^p, 2^p)."""
    q = Fraction(q)
    if q == 0:
        return Fraction(0)
    sign = -1 if q < 0 else 1
    a = abs(q)
    big_e = a.numerator.bit_length() - a.denominator.bit_length()
    if a >= Fraction(2) ** big_e:
        big_e += 1
    while a < Fraction(2) ** (big_e - 1):
        big_e -= 1
    scaled = a * Fraction(2) ** (p - big_e)
    n = scaled.numerator // scaled.denominator
    rest = scaled - n
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and n % 2 == 1):
        n += 1
    e = big_e - p
    if n == 2**p:
        n, e = 2 ** (p - 1), e + 1
    assert 2 ** (p - 1) <= n < 2**p
    if e >= 2**p:
        raise OracleOverflow
    if e < -(2**p):
        raise OracleUnderflow
    return sign * n * Fraction(2) ** e


def oracle_sqrt(q: Fraction, p: int) -> Fraction:
    """round_p(sqrt(q)) by integer isqrt of a scaled integer (q = m * 2^e exactly)."""
    if q == 0:
        return Fraction(0)
    assert q > 0 and q.denominator & (q.denominator - 1) == 0
    e = -(q.denominator.bit_length() - 1)
    m = q.numerator
    if e % 2:
        m, e = 2 * m, e - 1
    t = max(0, p + 4 - m.bit_length() // 2)
    big = m << (2 * t)
    r = math.isqrt(big)
    scale = Fraction(2) ** (e // 2 - t)
    if r * r == big:
        return oracle_round(r * scale, p)
    return oracle_round(Fraction(2 * r + 1, 2) * scale, p)


def oracle_exp(q: Fraction, p: int) -> Fraction:
    """round_p(e^q) from mpmath at 4p + 64 bits."""
    with mpmath.workprec(4 * p + 64):
        v = mpmath.exp(mpmath.mpf(q.numerator) / q.denominator)
        man, exp = v.man_exp
    return oracle_round(Fraction(int(man)) * Fraction(2) ** int(exp), p)


def expect(F: Format, fn, oracle_fn):
    """Compare F's result with the oracle, including overflow/underflow outcomes."""
    try:
        want = oracle_fn()
    except OracleOverflow:
        with pytest.raises(FpOverflow):
            fn()
        return
    except OracleUnderflow:
        with pytest.raises(FpUnderflow):
            fn()
        return
    got = fn()
    assert isinstance(got, gmpy2.mpfr) and got.precision == F.p
    assert F.to_fraction(got) == want


# --- strategies ---------------------------------------------------------------------------------


def e_bounds(p: int) -> tuple[int, int]:
    """Pair-exponent range drawn from: the whole range at small p, a window otherwise."""
    if p <= 11:
        return -(2**p), 2**p - 1
    return -150, 150


@st.composite
def pairs(draw, p: int, near: int | None = None):
    """A valid F_p pair (m, e), optionally with e near a given exponent."""
    if draw(st.integers(0, 15)) == 0:
        return (0, 0)
    lo, hi = e_bounds(p)
    if near is not None and draw(st.booleans()):
        e = min(hi, max(lo, near + draw(st.integers(-p - 3, p + 3))))
    else:
        e = draw(st.integers(lo, hi))
    m = draw(st.integers(2 ** (p - 1), 2**p - 1))
    if draw(st.booleans()):
        m = -m
    return (m, e)


def frac(pair: tuple[int, int]) -> Fraction:
    m, e = pair
    return m * Fraction(2) ** e


def draw_two(data, p: int):
    a = data.draw(pairs(p))
    b = data.draw(pairs(p, near=a[1]))
    return a, b


# --- construction -------------------------------------------------------------------------------


@pytest.mark.parametrize("p", [1, 0, -3, 2.0, "8", True, None])
def test_bad_precision(p):
    with pytest.raises(PrecisionError):
        Format(p)


def test_format_basics():
    F = Format(8)
    assert (F.p, F.emin, F.emax) == (8, 8 - 256, 255 + 8)
    assert F.to_pair(F.zero) == (0, 0) and F.to_pair(F.one) == (128, -7)
    assert Format(8) == F and hash(Format(8)) == hash(F) and Format(9) != F
    assert pickle.loads(pickle.dumps(F)) == F
    assert Format(np.int64(5)).p == 5
    assert Format(2).round(3) == 3 and Format(2).round(5) == 4


def test_clamping_starts_at_62():
    for p in (2, 24, 53, 61):
        F = Format(p)
        assert (F.emin, F.emax, F.clamped) == (p - 2**p, 2**p - 1 + p, False)
    for p in (62, 64, 113):
        F = Format(p)
        assert F.clamped and F.emax == gmpy2.get_emax_max()
        assert F.emin == max(p - 2**p, gmpy2.get_emin_min())


def test_wide_exponents_work():
    """MPFR's global range is widened: exponents beyond MPFR's default 2^30 are computed."""
    F = Format(53)
    x = F.from_pair(2**52, 2**40)
    y = F.mul(x, x)
    assert F.to_pair(y) == (2**52, 2 * (2**40) + 52)
    assert F.exp(F.round(2**40)) > 0


def test_wide_exponents_in_new_thread():
    import threading

    F = Format(53)
    out = []
    t = threading.Thread(target=lambda: out.append(F.mul(F.from_pair(2**52, 2**40), F.one)))
    t.start()
    t.join()
    assert out and F.to_pair(out[0]) == (2**52, 2**40)
    arr = []
    t = threading.Thread(target=lambda: arr.append(F.map("add", F.asarray([out[0]]), F.asarray([out[0]]))))
    t.start()
    t.join()
    assert F.to_pair(arr[0][0]) == (2**52, 2**40 + 1)


# --- round --------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", PS)
@SETTINGS
@given(data=st.data())
def test_round_fraction(p, data):
    F = Format(p)
    lo, hi = e_bounds(p)
    num = data.draw(st.integers(-(2 ** (p + 8)), 2 ** (p + 8)))
    den = data.draw(st.integers(1, 2 ** (p + 8)))
    shift = data.draw(st.integers(lo, hi))
    q = Fraction(num, den) * Fraction(2) ** shift
    expect(F, lambda: F.round(q), lambda: oracle_round(q, p))
    expect(F, lambda: F.round(f"{q.numerator}/{q.denominator}"), lambda: oracle_round(q, p))


@pytest.mark.parametrize("p", PS)
@SETTINGS
@given(x=st.floats(allow_nan=False, allow_infinity=False),
       y=st.floats(allow_nan=False, allow_infinity=False, width=32))
def test_round_float(p, x, y):
    F = Format(p)
    expect(F, lambda: F.round(x), lambda: oracle_round(Fraction(x), p))
    expect(F, lambda: F.round(np.float32(y)), lambda: oracle_round(Fraction(y), p))


@pytest.mark.parametrize("p", PS)
@SETTINGS
@given(digits=st.integers(-(10**30), 10**30), exp10=st.integers(-40, 40))
def test_round_decimal_string(p, digits, exp10):
    F = Format(p)
    s = f"{digits}e{exp10}"
    expect(F, lambda: F.round(s), lambda: oracle_round(Fraction(digits) * Fraction(10) ** exp10, p))


def test_round_inputs():
    F = Format(24)
    assert F.round("0.1") == F.round(Fraction(1, 10)) == F.round(np.float32(0.1))
    assert F.round("-1e-3") == F.round(Fraction(-1, 1000))
    assert F.round("3/7") == F.round(Fraction(3, 7))
    assert F.round(" 2.5 ") == 2.5
    assert F.round(gmpy2.mpfr("0.1", 200)) == F.round(Fraction(1, 10))
    assert F.round(np.int64(7)) == 7 and F.round(gmpy2.mpz(7)) == 7
    assert F.round(np.longdouble(0.5)) == 0.5
    for bad in (float("inf"), float("-inf"), float("nan"), "nan", "inf", "abc", np.float64("inf"),
                gmpy2.mpfr("inf"), object(), 1 + 2j):
        with pytest.raises(NotRepresentableError):
            F.round(bad)


def test_ties_to_even_and_carry():
    F = Format(3)
    assert F.round(Fraction(9, 8)) == 1  # 1.125: 1.0 (m=4) vs 1.25 (m=5) -> even
    assert F.round(Fraction(11, 8)) == Fraction(3, 2)  # 1.375: m=5 vs m=6 -> 6
    assert F.round(Fraction(-11, 8)) == Fraction(-3, 2)
    two = F.round(Fraction(15, 8))  # 1.875: m=7 vs 2.0 -> carry into the next binade
    assert two == 2 and F.to_pair(two) == (4, -1)
    assert F.add(F.round(Fraction(7, 4)), F.round(Fraction(1, 8))) == 2
    G = Format(53)
    assert G.add(G.one, G.round(Fraction(1, 2**53))) == 1
    assert G.add(G.one, G.round(Fraction(3, 2**54))) == 1 + Fraction(1, 2**52)


# --- range edges --------------------------------------------------------------------------------


def test_range_edges_p2():
    F = Format(2)  # m in {2, 3}, e in [-4, 3]
    big = F.from_pair(3, 3)
    tiny = F.from_pair(2, -4)
    assert big == 24 and tiny == Fraction(1, 8)
    assert F.round(24) == 24 and F.round(27) == 24
    with pytest.raises(FpOverflow):
        F.round(28)  # tie 24 (m=3) / 32 (m=2): even is 32 = 2*2^4, out of range
    with pytest.raises(FpOverflow):
        F.mul(big, F.round(2))
    with pytest.raises(FpOverflow):
        F.add(big, F.round(4))
    assert F.add(big, F.round(3)) == 24
    assert F.round(Fraction(15, 128)) == Fraction(1, 8)  # rounds up into range: no underflow
    assert F.round(Fraction(7, 64)) == Fraction(1, 8)  # tie 3/32 (odd) / 4/32 (even)
    with pytest.raises(FpUnderflow):
        F.round(Fraction(13, 128))
    with pytest.raises(FpUnderflow):
        F.mul(tiny, F.round(Fraction(1, 2)))
    with pytest.raises(FpUnderflow):
        F.sub(F.from_pair(3, -4), tiny)
    assert F.sub(tiny, tiny) == 0
    with pytest.raises(NotRepresentableError):
        F.from_pair(2, 4)
    with pytest.raises(NotRepresentableError):
        F.from_pair(2, -5)


def test_range_edges_p3():
    F = Format(3)  # m in [4, 8), e in [-8, 7]
    big = F.from_pair(7, 7)
    tiny = F.from_pair(4, -8)
    assert big == 896 and tiny == Fraction(1, 64)
    assert F.round(959) == 896
    with pytest.raises(FpOverflow):
        F.round(960)
    with pytest.raises(FpOverflow):
        F.add(big, F.round(64))
    assert F.neg(big) == -896 and F.round(-959) == -896
    with pytest.raises(FpOverflow):
        F.sub(F.neg(big), F.round(64))
    assert F.mul(tiny, F.round(Fraction(15, 16))) == tiny
    with pytest.raises(FpUnderflow):
        F.mul(tiny, F.round(Fraction(7, 8)))
    with pytest.raises(FpUnderflow):
        F.div(tiny, F.round(4))
    with pytest.raises(FpUnderflow):
        F.round(Fraction(7, 512))
    with pytest.raises(ExpOverflow):
        F.exp(F.round(7))
    with pytest.raises(FpUnderflow):
        F.exp(F.round(-8))
    assert F.to_fraction(F.exp(F.round(6))) == oracle_round(oracle_exp(Fraction(6), 60), 3)


# --- binary primitives --------------------------------------------------------------------------


@pytest.mark.parametrize("p", PS)
@SETTINGS
@given(data=st.data())
def test_add_sub_mul_div(p, data):
    F = Format(p)
    a, b = draw_two(data, p)
    x, y = F.from_pair(*a), F.from_pair(*b)
    qa, qb = frac(a), frac(b)
    expect(F, lambda: F.add(x, y), lambda: oracle_round(qa + qb, p))
    expect(F, lambda: F.sub(x, y), lambda: oracle_round(qa - qb, p))
    expect(F, lambda: F.mul(x, y), lambda: oracle_round(qa * qb, p))
    if qb == 0:
        with pytest.raises(DivisionByZero):
            F.div(x, y)
    else:
        expect(F, lambda: F.div(x, y), lambda: oracle_round(qa / qb, p))


@pytest.mark.parametrize("p", PS)
@SETTINGS
@given(data=st.data())
def test_exact_primitives(p, data):
    F = Format(p)
    a, b = draw_two(data, p)
    x, y = F.from_pair(*a), F.from_pair(*b)
    qa, qb = frac(a), frac(b)
    assert F.to_fraction(F.max(x, y)) == max(qa, qb)
    assert F.to_fraction(F.min(x, y)) == min(qa, qb)
    assert F.to_fraction(F.relu(x)) == max(qa, 0)
    assert F.to_fraction(F.neg(x)) == -qa
    assert F.to_fraction(F.compare(x, y)) == (1 if qa < qb else 0)
    for r in (F.max(x, y), F.min(x, y), F.relu(x), F.neg(x)):
        assert r.precision == p


@pytest.mark.parametrize("p", PS)
@SETTINGS
@given(data=st.data())
def test_sqrt(p, data):
    F = Format(p)
    a = data.draw(pairs(p))
    x = F.from_pair(*a)
    qa = frac(a)
    if qa < 0:
        with pytest.raises(NegativeSqrt):
            F.sqrt(x)
    else:
        expect(F, lambda: F.sqrt(x), lambda: oracle_sqrt(qa, p))


@pytest.mark.parametrize("p", PS)
@SETTINGS
@given(data=st.data())
def test_exp(p, data):
    F = Format(p)
    m = data.draw(st.integers(2 ** (p - 1), 2**p - 1)) * data.draw(st.sampled_from([1, -1]))
    e = data.draw(st.integers(max(-(2**p), -p - 12), min(2**p - 1, 14 - p)))
    x = F.from_pair(m, e)
    q = frac((m, e))
    try:
        want = oracle_exp(q, p)
    except OracleOverflow:
        with pytest.raises(ExpOverflow):
            F.exp(x)
        return
    except OracleUnderflow:
        with pytest.raises(FpUnderflow):
            F.exp(x)
        return
    assert F.to_fraction(F.exp(x)) == want


# --- iterated sum and product -------------------------------------------------------------------


@pytest.mark.parametrize("p", PS)
@SETTINGS
@given(data=st.data())
def test_sum(p, data):
    F = Format(p)
    first = data.draw(pairs(p))
    terms = [first] + data.draw(st.lists(pairs(p, near=first[1]), max_size=12))
    if data.draw(st.booleans()):
        terms.append((-terms[0][0], terms[0][1]))
    xs = [F.from_pair(*t) for t in terms]
    expect(F, lambda: F.sum(xs), lambda: oracle_round(sum(map(frac, terms), Fraction(0)), p))


@pytest.mark.parametrize("p", PS)
@SETTINGS
@given(data=st.data())
def test_prod(p, data):
    F = Format(p)
    lo, hi = e_bounds(p)
    k = data.draw(st.integers(0, 8))
    span = max(1, (hi - lo) // max(k, 1) // 2)
    terms = [
        (data.draw(st.integers(2 ** (p - 1), 2**p - 1)) * data.draw(st.sampled_from([1, -1])),
         data.draw(st.integers(max(lo, -span - p), min(hi, span - p))))
        for _ in range(k)
    ]
    if data.draw(st.integers(0, 9)) == 0:
        terms.append((0, 0))
    xs = [F.from_pair(*t) for t in terms]
    want = math.prod(map(frac, terms), start=Fraction(1))
    expect(F, lambda: F.prod(xs), lambda: oracle_round(want, p))


def test_empty_sum_prod():
    F = Format(5)
    assert F.sum([]) == 0 and F.prod([]) == 1
    assert F.sum([]).precision == 5 and F.prod([]).precision == 5


def test_cancellation_sum():
    for p in PS:
        F = Format(p)
        big = F.from_pair(2 ** (p - 1), min(2**p - 1, 60))
        one, third = F.one, F.round(Fraction(1, 3))
        terms = [big, one, F.neg(big), third]
        want = oracle_round(F.to_fraction(one) + F.to_fraction(third), p)
        assert F.to_fraction(F.sum(terms)) == want
        acc = F.zero
        for t in terms:
            acc = F.add(acc, t)
        assert acc == third != F.sum(terms)
        assert F.sum([big, F.neg(big)]) == 0
        assert F.sum([big, one, F.neg(big), F.neg(one)]) == 0


def test_fsum_correctly_rounded_many_terms():
    """gmpy2.fsum (MPFR 4 mpfr_sum) against the oracle on long, cancelling sums."""
    rng = np.random.default_rng(4)
    for p in (2, 3, 8, 24, 53):
        F = Format(p)
        for _ in range(30):
            n = int(rng.integers(2, 200))
            ms = rng.integers(2 ** (p - 1), 2**p, size=n) * rng.choice([-1, 1], size=n)
            es = rng.integers(-min(2**p, 40), min(2**p, 40) - 1, size=n)
            terms = [(int(m), int(e)) for m, e in zip(ms, es)]
            terms += [(-m, e) for m, e in terms[: n // 2]]
            xs = [F.from_pair(*t) for t in terms]
            expect(F, lambda: F.sum(xs), lambda: oracle_round(sum(map(frac, terms), Fraction(0)), p))


def test_long_product_once_rounded():
    F = Format(3)
    x = F.round(Fraction(5, 4))
    terms = [x] * 9
    want = oracle_round(Fraction(5, 4) ** 9, 3)
    assert F.to_fraction(F.prod(terms)) == want
    acc = F.one
    for t in terms:
        acc = F.mul(acc, t)
    assert F.to_fraction(acc) != want
    G = Format(24)
    y = G.round(Fraction(1, 3))
    exact = G.to_fraction(y) ** 40
    assert G.to_fraction(G.prod([y] * 40)) == oracle_round(exact, 24)
    with pytest.raises(FpOverflow):
        F.prod([F.from_pair(7, 7)] * 2)
    with pytest.raises(FpUnderflow):
        F.prod([F.from_pair(4, -8)] * 2)
    assert F.prod([F.from_pair(7, 7), F.from_pair(4, -8)]) == 14


# --- IEEE cross-checks --------------------------------------------------------------------------


def _normal_floats(rng, n, dtype):
    return (rng.standard_normal(n) * 10.0 ** rng.uniform(-6, 6, n)).astype(dtype)


@pytest.mark.parametrize("p, dtype", [(24, np.float32), (53, np.float64)])
def test_ieee_bit_for_bit(p, dtype):
    F = Format(p)
    rng = np.random.default_rng(p)
    a, b = _normal_floats(rng, 2000, dtype), _normal_floats(rng, 2000, dtype)
    with np.errstate(all="ignore"):
        refs = {"add": a + b, "sub": a - b, "mul": a * b, "div": a / b, "sqrt": np.sqrt(np.abs(a))}
    for i in range(len(a)):
        x, y = F.round(a[i]), F.round(b[i])
        assert float(F.add(x, y)) == float(refs["add"][i])
        assert float(F.sub(x, y)) == float(refs["sub"][i])
        assert float(F.mul(x, y)) == float(refs["mul"][i])
        assert float(F.div(x, y)) == float(refs["div"][i])
        assert float(F.sqrt(F.round(abs(a[i])))) == float(refs["sqrt"][i])


def test_sum_equals_math_fsum():
    F = Format(53)
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 60))
        xs = _normal_floats(rng, n, np.float64).tolist()
        xs += [-v for v in xs[: n // 3]]
        assert float(F.sum([F.round(v) for v in xs])) == math.fsum(xs)


# --- pairs --------------------------------------------------------------------------------------


@pytest.mark.parametrize("p", PS)
@SETTINGS
@given(data=st.data())
def test_pair_round_trip(p, data):
    F = Format(p)
    m, e = data.draw(pairs(p))
    x = F.from_pair(m, e)
    assert F.to_pair(x) == (m, e)
    assert F.to_fraction(x) == frac((m, e))
    assert F.from_pair(*F.to_pair(x)) == x


def test_invalid_pairs():
    F = Format(4)
    for m, e in [(7, 0), (16, 0), (-7, 0), (8, 16), (8, -17), (1, 0), (8.0, 0), ("8", 0)]:
        with pytest.raises(NotRepresentableError):
            F.from_pair(m, e)
    assert F.from_pair(0, 5) == 0 and F.to_pair(F.from_pair(0, 5)) == (0, 0)
    assert F.from_pair(8, 15) == 8 * 2**15 and F.from_pair(-15, -16) == Fraction(-15, 2**16)
    with pytest.raises(NotRepresentableError):
        F.to_pair(gmpy2.mpfr(17))  # 5 significant bits
    with pytest.raises(NotRepresentableError):
        F.to_pair(gmpy2.mpfr(2) ** 40)  # exponent out of F_4's range
    with pytest.raises(NotRepresentableError):
        F.to_pair(1.0)
    assert F.to_pair(gmpy2.mpfr(24, 200)) == (12, 1)


# --- errors -------------------------------------------------------------------------------------


def test_error_classes():
    for cls in (FpArithmeticError, FpOverflow, FpUnderflow, ExpOverflow, NegativeSqrt,
                DivisionByZero, PrecisionError, NotRepresentableError):
        err = cls("node X in scope Y: boom")
        assert isinstance(err, Tc0simError) and str(err) == "node X in scope Y: boom"
    for cls in (FpOverflow, FpUnderflow, NegativeSqrt, DivisionByZero):
        assert issubclass(cls, FpArithmeticError) and issubclass(cls, ArithmeticError)
    assert issubclass(ExpOverflow, FpOverflow)
    assert issubclass(PrecisionError, ValueError) and issubclass(NotRepresentableError, ValueError)


def test_error_messages_name_op_and_operands():
    F = Format(8)
    big = F.from_pair(255, 255)
    cases = [
        (lambda: F.mul(big, big), FpOverflow, "mul overflow at p=8"),
        (lambda: F.add(big, big), FpOverflow, "add overflow"),
        (lambda: F.sub(big, F.neg(big)), FpOverflow, "sub overflow"),
        (lambda: F.div(big, F.from_pair(128, -200)), FpOverflow, "div overflow"),
        (lambda: F.div(F.from_pair(128, -250), big), FpUnderflow, "div underflow"),
        (lambda: F.div(F.one, F.zero), DivisionByZero, "div division by zero"),
        (lambda: F.div(F.zero, F.zero), DivisionByZero, "div division by zero"),
        (lambda: F.sqrt(F.neg(F.one)), NegativeSqrt, "sqrt of a negative number"),
        (lambda: F.exp(F.round(1000)), ExpOverflow, "exp overflow"),
        (lambda: F.exp(F.round(-1000)), FpUnderflow, "exp underflow"),
        (lambda: F.sum([big, big]), FpOverflow, "sum overflow"),
        (lambda: F.prod([big, big]), FpOverflow, "prod overflow"),
        (lambda: F.round(2**300), FpOverflow, "round overflow"),
        (lambda: F.round(Fraction(1, 2**300)), FpUnderflow, "round underflow"),
    ]
    for fn, cls, text in cases:
        with pytest.raises(cls) as info:
            fn()
        assert text in str(info.value), str(info.value)
    with pytest.raises(FpOverflow) as info:
        F.mul(big, big)
    assert "255*2^255 * 255*2^255" in str(info.value) and "F_8 exponent range" in str(info.value)


# --- arrays -------------------------------------------------------------------------------------


def _bits(arr):
    return [(x.precision, Format(x.precision).to_pair(x)) for x in np.asarray(arr).ravel()]


@pytest.mark.parametrize("p", (5, 8, 24, 53, 113))
def test_array_path_equals_scalar_path(p):
    F = Format(p)
    rng = np.random.default_rng(p)
    shape = (3, 4, 5)
    raw_a = rng.uniform(0.5, 2, shape) * rng.choice([-1, 1], shape)
    raw_b = rng.uniform(0.5, 2, shape) * rng.choice([-1, 1], shape)
    a, b = F.asarray(raw_a), F.asarray(raw_b)
    assert a.shape == shape and a.dtype == object
    assert _bits(a) == _bits([F.round(v) for v in raw_a.ravel()])
    pos = F.map("relu", a)
    for name in ("add", "sub", "mul", "div", "max", "min", "compare"):
        got = F.map(name, a, b)
        scalar = getattr(F, name)
        want = [(F.one if x < y else F.zero) if name == "compare" else scalar(x, y)
                for x, y in zip(a.ravel(), b.ravel())]
        assert got.shape == shape and _bits(got) == _bits(want), name
    for name, src in (("relu", a), ("neg", a), ("sqrt", pos), ("exp", a)):
        got = F.map(name, src)
        want = [getattr(F, name)(x) for x in src.ravel()]
        assert got.shape == shape and _bits(got) == _bits(want), name
    for axis in (0, 1, 2, -1, (0, 2), (1, 0), (0, 1, 2)):
        for name in ("sum", "prod"):
            got = F.reduce(name, a, axis)
            axes = (axis,) if isinstance(axis, int) else axis
            axes = tuple(ax % 3 for ax in axes)
            keep = [i for i in range(3) if i not in axes]
            rows = np.transpose(a, keep + list(axes)).reshape(-1, math.prod(shape[i] for i in axes))
            want = [getattr(F, name)(list(r)) for r in rows]
            assert got.shape == tuple(shape[i] for i in keep)
            assert _bits(got) == _bits(want), (name, axis)


def test_asarray_inputs():
    F = Format(24)
    nested = [[1, "0.1", Fraction(1, 3)], [gmpy2.mpfr("0.1", 100), 2.5, np.float32(0.1)]]
    arr = F.asarray(nested)
    assert arr.shape == (2, 3)
    assert arr[0, 1] == arr[1, 0] == arr[1, 2] == F.round(Fraction(1, 10))
    assert F.asarray(np.arange(6, dtype=np.int32).reshape(2, 3))[1, 2] == 5
    assert F.asarray(np.array([0.1], dtype=np.float32))[0] == F.round("0.1")
    assert F.asarray(np.array([True, False]))[0] == 1
    assert F.asarray(np.array(["0.5", "3/7"]))[1] == F.round(Fraction(3, 7))
    assert F.asarray(3).shape == ()
    assert F.asarray(np.zeros((2, 0))).shape == (2, 0)
    with pytest.raises(NotRepresentableError):
        F.asarray(np.array([1.0, np.nan]))
    with pytest.raises(FpOverflow):
        Format(3).asarray(np.array([1.0, 1e6]))


def test_array_errors_name_element():
    F = Format(3)
    a = F.asarray([[1, 2], [3, 896]])
    with pytest.raises(FpOverflow) as info:
        F.map("mul", a, a)
    assert "mul overflow" in str(info.value) and "(1, 1)" in str(info.value)
    with pytest.raises(NegativeSqrt):
        F.map("sqrt", F.asarray([1, -1]))
    with pytest.raises(DivisionByZero):
        F.map("div", F.asarray([1, 1]), F.asarray([1, 0]))
    with pytest.raises(FpOverflow) as info:
        F.reduce("sum", F.asarray([[64, 896], [2, 896]]), 1)
    assert "sum overflow" in str(info.value) and "(0,)" in str(info.value)
    with pytest.raises(FpOverflow):
        F.reduce("prod", a, (0, 1))
    with pytest.raises(ValueError):
        F.map("pow", a, a)
    with pytest.raises(ValueError):
        F.map("add", a, a[0])
    with pytest.raises(ValueError):
        F.reduce("sum", a, 2)


def test_array_path_p2():
    F = Format(2)
    vals = [0.125, 0.1875, 0.25, 1, 1.5, 2, 3, 16, 24, -0.125, -3, -24, 0]
    pairs_ab = [(x, y) for x in vals for y in vals]
    a = F.asarray([x for x, _ in pairs_ab])
    b = F.asarray([y for _, y in pairs_ab])
    for name in ("add", "sub", "mul", "div", "max", "min"):
        for i, (x, y) in enumerate(zip(a, b)):
            try:
                want = getattr(F, name)(x, y)
            except FpArithmeticError as err:
                with pytest.raises(type(err)):
                    F.map(name, a[i:i + 1], b[i:i + 1])
                continue
            assert _bits(F.map(name, a[i:i + 1], b[i:i + 1])) == _bits([want])


def test_reduce_empty_axes():
    F = Format(8)
    z = F.asarray(np.zeros((3, 0)))
    assert list(F.reduce("sum", z, 1)) == [0, 0, 0]
    assert list(F.reduce("prod", z, 1)) == [1, 1, 1]
    assert F.reduce("sum", z, 0).shape == (0,)


def test_pairs_arrays_round_trip():
    F = Format(11)
    a = F.asarray(np.random.default_rng(1).standard_normal((2, 3, 2)))
    nested = F.to_pairs(a)
    assert len(nested) == 2 and len(nested[0]) == 3 and len(nested[0][0]) == 2
    assert all(isinstance(v, int) for v in nested[1][2][1])
    back = F.from_pairs(nested, a.shape)
    assert _bits(back) == _bits(a)
    assert F.to_pairs(F.asarray(3)) == [1536, -9]
    assert F.from_pairs([1536, -9], ()) == 3
    with pytest.raises(NotRepresentableError):
        F.from_pairs([[1, 0]], (1,))
    with pytest.raises(NotRepresentableError):
        F.from_pairs([[1024, 0]], (2,))


def test_to_float64_array():
    F = Format(24)
    a = F.asarray([[0.5, -3.25], [1e30, 0]])
    out = F.to_float64_array(a)
    assert out.dtype == np.float64 and out.tolist() == [[0.5, -3.25], [float(np.float32(1e30)), 0.0]]
    G = Format(113)
    with pytest.raises(NotRepresentableError):
        G.to_float64_array(G.asarray([1, Fraction(1, 3)]))
    H = Format(11)
    with pytest.raises(NotRepresentableError):
        H.to_float64_array(np.array([H.from_pair(1024, 2000)], dtype=object))
    with pytest.raises(NotRepresentableError):
        H.to_float64_array(np.array([H.from_pair(1024, -1100)], dtype=object))
    assert Format(53).to_float64_array(Format(53).asarray([5e-324]))[0] == 5e-324


# --- command line -------------------------------------------------------------------------------


def test_cli_demo_and_version():
    from tc0sim.cli.main import main

    runner = CliRunner()
    result = runner.invoke(main, ["demo"])
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "yes" in line]
    assert len(rows) == 4
    assert "0.334" in result.output and "1.336" in result.output
    version = runner.invoke(main, ["--version"])
    assert version.exit_code == 0 and "0.1.0" in version.output
