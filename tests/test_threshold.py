"""Threshold circuits for the F_p primitives, checked against independent oracles.

Oracles: an exact integer oracle written here (values scaled to a common power of two, rounded to
nearest-even with integer shifts, vectorised with numpy), exact rationals (``round_fraction``), and
``tc0sim.fp`` (MPFR).  Exhaustive: all operand pairs for p ≤ 4 (compare, add, mul), all triples for
sum at p = 3; seeded samples with cancellation, ties and range errors at larger p.
"""

from __future__ import annotations

import json
import math
import random
from fractions import Fraction
from pathlib import Path

import mpmath
import numpy as np
import pytest

from reference import exp_p, round_fraction, sqrt_p
from tc0sim.fp import Format, FpArithmeticError
from tc0sim.threshold import fp_circuits as F
from tc0sim.threshold.builder import Builder
from tc0sim.threshold.circuit import Circuit, CircuitFormatError
from tc0sim.threshold.fp_exp import EXP_GUARD_BITS


# --- the exact integer oracle ----------------------------------------------------------------


def round_scaled(s: np.ndarray, e0: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """round_p(s·2^e0) for int64 arrays: (m, e, range error) with m = 0, e = 0 for zero."""
    s = np.asarray(s, dtype=np.int64)
    mag = np.abs(s)
    lead = np.full(s.shape, -1, dtype=np.int64)
    for bit in range(63):
        lead[(mag >> bit) > 0] = bit
    shift = np.maximum(lead - (p - 1), 0)
    kept = mag >> shift
    rem = mag - (kept << shift)
    half = np.where(shift > 0, np.int64(1) << np.maximum(shift - 1, 0), 0)
    up = (shift > 0) & ((rem > half) | ((rem == half) & (kept % 2 == 1)))
    kept = kept + up
    carry = kept >= (1 << p)
    kept = np.where(carry, kept >> 1, kept)
    shift = shift + carry
    small = lead < p - 1
    kept = np.where(small, mag << np.maximum(p - 1 - lead, 0), kept)
    e = np.where(small, e0 + lead - (p - 1), e0 + shift)
    zero = mag == 0
    m = np.where(zero, 0, np.where(s < 0, -kept, kept))
    e = np.where(zero, 0, e)
    bad = ~zero & ((e < -(1 << p)) | (e >= (1 << p)))
    return m, e, bad


def table(p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    vals = F.values(p)
    enc = np.array([F.encode(m, e, p) for m, e in vals], dtype=np.uint8)
    return enc, np.array([m for m, _ in vals]), np.array([e for _, e in vals])


def decode_outputs(out: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    out = out.astype(np.int64)
    mag = sum(out[:, 2 + i] << (p - 1 - i) for i in range(p))
    e = sum(out[:, 2 + p + i] << (p - i) for i in range(p + 1))
    e = np.where(e >= (1 << p), e - (1 << (p + 1)), e)
    m = np.where(out[:, 1] == 1, -mag, mag)
    zero = out[:, 0] == 1
    return np.where(zero, 0, m), np.where(zero, 0, e), out[:, -1] == 1


def check(out: np.ndarray, p: int, m: np.ndarray, e: np.ndarray, bad: np.ndarray) -> None:
    """Range-error bit exactly where the oracle errs; elsewhere the full encoding is the oracle's."""
    gm, ge, gbad = decode_outputs(out, p)
    np.testing.assert_array_equal(gbad, bad)
    ok = ~bad
    np.testing.assert_array_equal(gm[ok], m[ok])
    np.testing.assert_array_equal(ge[ok], e[ok])
    expected = np.array([F.encode(int(a), int(b), p) for a, b in zip(m[ok][:2000], e[ok][:2000])])
    np.testing.assert_array_equal(out[ok][:2000, :-1].astype(np.uint8), expected)


def pair_oracle(prim: str, ma, ea, mb, eb, p: int):
    if prim == "mul":
        return round_scaled(ma * mb, ea + eb, p)
    lo = np.minimum(ea, eb)
    return round_scaled((ma << (ea - lo)) + (mb << (eb - lo)), lo, p)


def test_round_scaled_agrees_with_exact_rationals():
    rng = random.Random(5)
    for _ in range(3000):
        p = rng.randrange(2, 9)
        s, e0 = rng.randrange(-(1 << 40), 1 << 40) >> rng.randrange(40), rng.randrange(-300, 300)
        m, e, bad = round_scaled(np.array([s]), np.array([e0]), p)
        r = round_fraction(Fraction(s) * Fraction(2) ** e0, p)
        assert Fraction(int(m[0])) * Fraction(2) ** int(e[0]) == r
        assert (int(m[0]) == 0) == (s == 0) and (s == 0 or 1 << (p - 1) <= abs(int(m[0])) < 1 << p)


# --- encoding, IR, JSON ----------------------------------------------------------------------


def test_encoding_examples_from_the_issue():
    assert "".join(map(str, F.encode(-6, 0, 3))) == "011100000"
    assert "".join(map(str, F.encode(6, -3, 3))) == "001101101"
    assert F.encode(0, 0, 3) == [1] + [0] * 8
    assert F.decode(F.encode(-6, 0, 3), 3) == (-6, 0)


def test_json_round_trip_and_format(tmp_path):
    c = F.build("add", 3)
    path = tmp_path / "c.json"
    c.write(path)
    data = json.loads(path.read_text())
    assert set(data) == {"inputs", "gates", "outputs"} and data["inputs"] == 18
    assert all(len(g) == 3 and len(g[0]) == len(g[1]) and isinstance(g[2], int) for g in data["gates"])
    assert all(w < 18 + j for j, g in enumerate(data["gates"]) for w in g[1])
    back = Circuit.read(path)
    assert back.stats() == c.stats()
    enc, _, _ = table(3)
    x = np.concatenate([enc[::7][:18], enc[::5][:18]], axis=1)
    np.testing.assert_array_equal(back.simulate(x), c.simulate(x))


@pytest.mark.parametrize("bad", [
    {"inputs": 2, "gates": [[[1], [2], 1]], "outputs": [0]},
    {"inputs": 2, "gates": [[[1, 1], [0], 1]], "outputs": [0]},
    {"inputs": 2, "gates": [], "outputs": [5]},
    {"inputs": 2, "gates": [[[1.5], [0], 1]], "outputs": [2]},
    {"inputs": 2, "gates": []},
])
def test_malformed_circuits_are_refused(bad):
    with pytest.raises(CircuitFormatError):
        Circuit.from_json(bad)


def test_simulator_depth_and_big_weights():
    # x0 ∧ x1 (depth 1), then [2^70·g − 2^70·x2 ≥ 2^70] = g ∧ ¬x2 with weights beyond int64
    c = Circuit(inputs=3, gates=[([1, 1], [0, 1], 2), ([2**70, -2**70], [3, 2], 2**70)], outputs=[4, 3])
    x = np.array([[a, b, d] for a in (0, 1) for b in (0, 1) for d in (0, 1)])
    out = c.simulate(x)
    np.testing.assert_array_equal(out[:, 0], (x[:, 0] & x[:, 1] & (1 - x[:, 2])).astype(bool))
    assert c.stats().depth == 2 and c.stats().gates == 2 and c.stats().wires == 4
    assert c.stats().max_weight_bits == 71


def test_library_adders_and_multiplier_exhaustive():
    n = 4
    b = Builder()
    x = b.inputs(n)
    y = b.inputs(n)
    outs = b.add_two(x, y) + b.add_rows([x, y, x], 5, n + 2) + b.multiply(x, y)
    outs += b.decode(x[:2], 4) + b.encode(b.decode(y[:3], 8), 3) + b.mux(y[0], x, y)
    c = b.circuit(outs)
    grid = np.array([[v >> i & 1 for i in range(2 * n)] for v in range(1 << (2 * n))], dtype=np.uint8)
    out = c.simulate(grid).astype(np.int64)
    xv = sum(grid[:, i].astype(np.int64) << i for i in range(n))
    yv = sum(grid[:, n + i].astype(np.int64) << i for i in range(n))

    def val(cols):
        return sum(out[:, c0] << i for i, c0 in enumerate(cols))

    k = 0
    np.testing.assert_array_equal(val(range(k, k + n)), (xv + yv) % 16); k += n
    np.testing.assert_array_equal(val(range(k, k + n + 2)), (2 * xv + yv + 5) % 64); k += n + 2
    np.testing.assert_array_equal(val(range(k, k + 2 * n)), xv * yv); k += 2 * n
    np.testing.assert_array_equal(val(range(k, k + 4)), 1 << (xv % 4)); k += 4
    np.testing.assert_array_equal(val(range(k, k + 3)), yv % 8); k += 3
    np.testing.assert_array_equal(val(range(k, k + n)), np.where(yv % 2 == 1, xv, yv))


# --- exhaustive F_p circuits -----------------------------------------------------------------


@pytest.mark.parametrize("prim", ["compare", "add", "mul"])
@pytest.mark.parametrize("p", [2, 3, 4])
def test_binary_primitives_exhaustive(prim, p):
    c = F.build(prim, p)
    enc, ms, es = table(p)
    n = len(ms)
    ia, ib = np.divmod(np.arange(n * n), n)
    out = c.simulate(np.concatenate([enc[ia], enc[ib]], axis=1))
    if prim == "compare":
        va = ms[ia].astype(float) * 2.0 ** es[ia]
        vb = ms[ib].astype(float) * 2.0 ** es[ib]
        np.testing.assert_array_equal(out[:, 0], va < vb)
        return
    m, e, bad = pair_oracle(prim, ms[ia], es[ia], ms[ib], es[ib], p)
    check(out, p, m, e, bad)
    assert bad.any() and (m == 0).any()


@pytest.mark.parametrize("prim,p", [("sub", 3), ("sub", 4), ("max", 3), ("min", 3)])
def test_sub_max_min_exhaustive(prim, p):
    c = F.build(prim, p)
    enc, ms, es = table(p)
    n = len(ms)
    ia, ib = np.divmod(np.arange(n * n), n)
    out = c.simulate(np.concatenate([enc[ia], enc[ib]], axis=1))
    if prim == "sub":
        check(out, p, *pair_oracle("add", ms[ia], es[ia], -ms[ib], es[ib], p))
        return
    va, vb = ms[ia] * 2.0 ** es[ia], ms[ib] * 2.0 ** es[ib]
    pick_b = (vb > va) if prim == "max" else (vb < va)
    want = np.where(pick_b[:, None], enc[ib], enc[ia])
    np.testing.assert_array_equal(out[:, :-1], want.astype(bool))
    assert not out[:, -1].any()


@pytest.mark.parametrize("p", [2, 4])
def test_relu_neg_and_one_term_sum_exhaustive(p):
    enc, ms, es = table(p)
    for prim, want_m in (("relu", np.maximum(ms, 0)), ("neg", -ms), ("sum", ms)):
        out = F.build(prim, p, 1).simulate(enc)
        check(out, p, want_m, np.where(want_m == 0, 0, es), np.zeros(len(ms), dtype=bool))


@pytest.mark.parametrize("prim", ["add", "mul"])
def test_exhaustive_oracle_agrees_with_mpfr_at_p4(prim):
    fmt = Format(4)
    enc, ms, es = table(4)
    rng = np.random.default_rng(11)
    ia, ib = rng.integers(0, len(ms), 4000), rng.integers(0, len(ms), 4000)
    m, e, bad = pair_oracle(prim, ms[ia], es[ia], ms[ib], es[ib], 4)
    for i in range(len(ia)):
        a, b = fmt.from_pair(int(ms[ia[i]]), int(es[ia[i]])), fmt.from_pair(int(ms[ib[i]]), int(es[ib[i]]))
        try:
            got = fmt.to_pair(getattr(fmt, prim)(a, b))
        except FpArithmeticError:
            assert bad[i]
            continue
        assert not bad[i] and got == (int(m[i]), int(e[i]))


def test_sum_of_three_exhaustive_p3():
    p = 3
    c = F.build("sum", p, 3)
    enc, ms, es = table(p)
    n = len(ms)
    idx = np.arange(n ** 3)
    ia, ib, ic = idx // (n * n), (idx // n) % n, idx % n
    out = c.simulate(np.concatenate([enc[ia], enc[ib], enc[ic]], axis=1))
    scale = 1 << p
    s = sum(ms[i].astype(np.int64) << (es[i] + scale) for i in (ia, ib, ic))
    m, e, bad = round_scaled(s, np.full(s.shape, -scale), p)
    check(out, p, m, e, bad)


# --- seeded samples at larger p ---------------------------------------------------------------


def sample_terms(rng: random.Random, p: int, k: int) -> list[tuple[int, int]]:
    """k terms with frequent cancellation (a term's negation, or one ulp away), near ties, zeros
    and exponents at both ends of the range."""
    hi = 1 << p
    base = rng.choice([rng.randrange(-hi, hi), hi - 1 - rng.randrange(3), -hi + rng.randrange(3 * p)])
    terms: list[tuple[int, int]] = []
    for _ in range(k):
        u = rng.random()
        if u < 0.08:
            terms.append((0, 0))
            continue
        if u < 0.35 and terms and terms[-1][0]:
            m, e = terms[rng.randrange(len(terms))]
            if m:
                step = rng.choice([0, 0, 1, -1])
                mm = -m + step if (1 << (p - 1)) <= abs(-m + step) < hi else -m
                terms.append((mm, e))
                continue
        spread = rng.choice([2, p + 3, 3 * p, hi])
        e = min(hi - 1, max(-hi, base + rng.randrange(-spread, spread + 1)))
        terms.append((rng.randrange(1 << (p - 1), hi) * rng.choice([1, -1]), e))
    return terms


def sample_product(rng: random.Random, p: int) -> list[tuple[int, int]]:
    """Two factors whose exponent sum is often near the range ends; sparse significands make
    exact ties (product bits 10…0 below the kept p bits) frequent."""
    hi = 1 << p
    target = rng.choice([rng.randrange(-2 * hi, 2 * hi), hi - p + rng.randrange(-2, 3) - 2 * p,
                         -hi - rng.randrange(-2, 3) - 2 * p + 2])
    ea = rng.randrange(max(-hi, target - hi + 1), min(hi, target + hi))
    terms = []
    for e in (ea, target - ea):
        if rng.random() < 0.5:
            m = (hi >> 1) | sum(1 << rng.randrange(p - 1) for _ in range(2))
        else:
            m = rng.randrange(hi >> 1, hi)
        terms.append((m * rng.choice([1, -1]), min(hi - 1, max(-hi, e))))
    return terms


def exact_oracle(prim: str, terms: list[tuple[int, int]], p: int, fmt: Format) -> tuple[int, int] | None:
    """round_fraction of the exact result, cross-checked with tc0sim.fp; None for a range error."""
    vals = [Fraction(m) * Fraction(2) ** e for m, e in terms]
    exact = vals[0] * vals[1] if prim == "mul" else sum(vals)
    r = round_fraction(exact, p)
    xs = [fmt.from_pair(m, e) for m, e in terms]
    try:
        got = fmt.to_pair({"add": fmt.add, "mul": fmt.mul}[prim](*xs) if prim != "sum" else fmt.sum(xs))
    except FpArithmeticError:
        got = None
    if r == 0:
        want: tuple[int, int] | None = (0, 0)
    else:
        m, e = r, 0
        while abs(m) >= 1 << p:
            m, e = m / 2, e + 1
        while abs(m) < 1 << (p - 1):
            m, e = m * 2, e - 1
        want = (int(m), e) if -(1 << p) <= e < 1 << p else None
    assert got == want, (prim, terms, got, want)
    return want


@pytest.mark.parametrize("prim,p,k,count", [
    ("add", 7, 2, 1500), ("mul", 9, 2, 1000), ("add", 12, 2, 300),
    ("sum", 5, 4, 1000), ("sum", 6, 7, 500), ("sum", 8, 3, 500),
])
def test_seeded_samples(prim, p, k, count):
    rng = random.Random(1000 * p + k)
    fmt = Format(p)
    c = F.build(prim, p, k)
    cases = [sample_product(rng, p) if prim == "mul" else sample_terms(rng, p, k) for _ in range(count)]
    wants = [exact_oracle(prim, t, p, fmt) for t in cases]
    x = np.array([[bit for m, e in t for bit in F.encode(m, e, p)] for t in cases], dtype=np.uint8)
    out = c.simulate(x)
    kinds = {"error": 0, "zero": 0, "tie": 0}
    for t, want, o in zip(cases, wants, out):
        if want is None:
            assert o[-1], t
            kinds["error"] += 1
            continue
        assert not o[-1] and F.decode(o[:-1].astype(int), p) == want, (t, want)
        vals = [Fraction(m) * Fraction(2) ** e for m, e in t]
        exact = vals[0] * vals[1] if prim == "mul" else sum(vals)
        kinds["zero"] += want == (0, 0)
        if want != (0, 0):
            ulp = Fraction(2) ** want[1]
            kinds["tie"] += abs(exact - want[0] * ulp) == ulp / 2
    assert kinds["error"] > 0 and kinds["tie"] > 0
    if prim != "mul":
        assert kinds["zero"] > 0


# --- div and sqrt -----------------------------------------------------------------------------


def quotient_oracle(ma, ea, mb, eb, p: int):
    """round_p(a / b) with integer division: 2·floor(|m_a|·2^(2p+2) / |m_b|) + [remainder ≠ 0] keeps a
    sticky bit far below the rounding position; division by zero is an error."""
    num = np.abs(ma).astype(np.int64) << (2 * p + 2)
    den = np.maximum(np.abs(mb), 1).astype(np.int64)
    q, r = np.divmod(num, den)
    signed = np.where((ma < 0) != (mb < 0), -1, 1) * (2 * q + (r != 0))
    m, e, bad = round_scaled(signed, ea - eb - (2 * p + 3), p)
    return np.where(mb == 0, 0, m), e, bad | (mb == 0)


def root_oracle(m: int, e: int, p: int) -> tuple[int, int] | None:
    """round_p(√(m·2^e)) with math.isqrt: m·2^(e − t) for an even t ≤ e − 2p − 2, sticky as above."""
    if m < 0:
        return None
    if m == 0:
        return (0, 0)
    t = e - 2 * p - 2 - ((e - 2 * p - 2) % 2)
    n = m << (e - t)
    r = math.isqrt(n)
    got_m, got_e, bad = round_scaled(np.array([2 * r + (r * r != n)]), np.array([t // 2 - 1]), p)
    assert not bad[0]
    return int(got_m[0]), int(got_e[0])


@pytest.mark.parametrize("p", [2, 3, 4])
def test_div_exhaustive(p):
    c = F.build("div", p)
    enc, ms, es = table(p)
    n = len(ms)
    ia, ib = np.divmod(np.arange(n * n), n)
    out = c.simulate(np.concatenate([enc[ia], enc[ib]], axis=1))
    m, e, bad = quotient_oracle(ms[ia], es[ia], ms[ib], es[ib], p)
    check(out, p, m, e, bad)
    assert (bad & (ms[ib] != 0)).any() and bad[ms[ib] == 0].all()  # range errors, and every x / 0


def test_div_and_sqrt_oracles_agree_with_rationals_and_mpfr():
    rng = random.Random(14)
    for p in (3, 4, 7, 10):
        fmt = Format(p)
        hi = 1 << p
        for _ in range(300):
            ma, mb = (rng.randrange(hi // 2, hi) * rng.choice([1, -1]) for _ in range(2))
            ea, eb = rng.randrange(-hi, hi), rng.randrange(-hi, hi)
            m, e, bad = quotient_oracle(np.array([ma]), np.array([ea]), np.array([mb]), np.array([eb]), p)
            exact = Fraction(ma, mb) * Fraction(2) ** (ea - eb)
            try:
                got = fmt.to_pair(fmt.div(fmt.from_pair(ma, ea), fmt.from_pair(mb, eb)))
            except FpArithmeticError:
                assert bad[0]
                continue
            assert not bad[0] and got == (int(m[0]), int(e[0]))
            assert Fraction(got[0]) * Fraction(2) ** got[1] == round_fraction(exact, p)
            root = root_oracle(abs(ma), ea, p)
            assert root == fmt.to_pair(fmt.sqrt(fmt.from_pair(abs(ma), ea)))
            assert Fraction(root[0]) * Fraction(2) ** root[1] == sqrt_p(Fraction(abs(ma)) * Fraction(2) ** ea, p)


@pytest.mark.parametrize("p", [2, 3, 4, 5])
def test_sqrt_exhaustive(p):
    c = F.build("sqrt", p)
    vals = F.values(p)
    out = c.simulate(np.array([F.encode(m, e, p) for m, e in vals], dtype=np.uint8)).astype(int)
    for (m, e), o in zip(vals, out):
        want = root_oracle(m, e, p)
        assert (o[-1] == 1) if want is None else (o[-1] == 0 and F.decode(o[:-1], p) == want), (m, e)


def test_sqrt_every_significand_at_p12():
    """The significand and the parity of e decide the root's significand: every significand with
    both parities, at exponents at both ends of the range and near 0 (the exponent path)."""
    p = 12
    hi = 1 << p
    cases = [(m, e) for m in range(hi // 2, hi) for e in (-hi, -hi + 1, -1, 0, 1, hi - 2, hi - 1)]
    cases += [(-hi // 2, 0), (-(hi - 1), 5), (0, 0)]
    out = F.build("sqrt", p).simulate(np.array([F.encode(m, e, p) for m, e in cases], dtype=np.uint8)).astype(int)
    near = 0
    for (m, e), o in zip(cases, out):
        want = root_oracle(m, e, p)
        assert (o[-1] == 1) if want is None else (o[-1] == 0 and F.decode(o[:-1], p) == want), (m, e)
        if want and want[0]:
            n = m << (e - 2 * want[1])  # the root in units of the result's ulp is √n
            near += abs(4 * n - (2 * math.isqrt(n) + 1) ** 2) < 1 << (p - 5)  # within ~2^-8 of a midpoint
    assert near > 0


def near_midpoint_quotient(rng: random.Random, p: int) -> tuple[int, int]:
    """Significands (m_a, m_b) whose quotient is within r/m_b units of a rounding midpoint, |r| ≤ 3:
    m_a·2^t ≡ r (mod m_b) with t the scale that puts the rounding position at the units."""
    hi = 1 << p
    while True:
        mb = rng.randrange(hi // 2, hi) | 1
        r = rng.choice([1, -1, 2, -2, 3, -3])
        for t in (p, p + 1):
            ma = r * pow(2, -t, mb) % mb
            while ma < hi // 2:
                ma += mb
            if ma < hi and (ma >= mb) == (t == p) and ((ma << t) - r) // mb % 2 == 1:
                return ma, mb


@pytest.mark.parametrize("p,count", [(6, 1500), (9, 800), (12, 400)])
def test_div_seeded_samples(p, count):
    """Near-midpoint quotients, exact quotients, division by zero, zero dividends, overflow and underflow."""
    rng = random.Random(140 + p)
    fmt = Format(p)
    hi = 1 << p
    cases = []
    for i in range(count):
        kind = i % 5
        if kind in (0, 1):
            ma, mb = near_midpoint_quotient(rng, p)
        elif kind == 2:
            mb = hi // 2
            ma = rng.randrange(hi // 2, hi)
        else:
            ma, mb = rng.randrange(hi // 2, hi), rng.randrange(hi // 2, hi)
        ea = rng.choice([rng.randrange(-hi, hi), hi - 1 - rng.randrange(3), -hi + rng.randrange(3)])
        eb = rng.choice([rng.randrange(-hi, hi), -ea + rng.randrange(-2, 3), ea - rng.randrange(-p, p)])
        eb = min(hi - 1, max(-hi, eb))
        a, b = (ma * rng.choice([1, -1]), ea), (mb * rng.choice([1, -1]), eb)
        if rng.random() < 0.04:
            a = (0, 0)
        if rng.random() < 0.04:
            b = (0, 0)
        cases.append([a, b])
    x = np.array([[bit for m, e in t for bit in F.encode(m, e, p)] for t in cases], dtype=np.uint8)
    out = F.build("div", p).simulate(x).astype(int)
    kinds = {"error": 0, "by zero": 0, "exact": 0, "near": 0}
    for (a, b), o in zip(cases, out):
        exact = None if b[0] == 0 else Fraction(a[0], b[0]) * Fraction(2) ** (a[1] - b[1])
        try:
            want = fmt.to_pair(fmt.div(fmt.from_pair(*a), fmt.from_pair(*b)))
        except FpArithmeticError:
            want = None
        if want is None:
            assert o[-1] == 1, (a, b)
            kinds["error" if exact is not None else "by zero"] += 1
            continue
        assert Fraction(want[0]) * Fraction(2) ** want[1] == round_fraction(exact, p)
        assert o[-1] == 0 and F.decode(o[:-1], p) == want, (a, b, want)
        if want[0]:
            units = exact / Fraction(2) ** want[1]
            kinds["exact"] += units == want[0]
            kinds["near"] += abs(abs(units - want[0]) - Fraction(1, 2)) * hi < 4
    assert all(kinds.values()), kinds


# --- exp --------------------------------------------------------------------------------------


def exp_case_kinds(cases, out, p: int, fmt: Format, use_mpmath: bool) -> dict[str, int]:
    """Check each case against round_p(e^x) — reference.exp_p (mpmath, refined until the rounding is
    certain) or tc0sim.fp — and count range errors and results within 2^-6 ulp of a midpoint."""
    kinds = {"overflow": 0, "underflow": 0, "near": 0, "one": 0}
    for (m, e), o in zip(cases, out):
        x = Fraction(m) * Fraction(2) ** e
        try:
            want = fmt.to_pair(fmt.exp(fmt.from_pair(m, e)))
        except FpArithmeticError:
            want = None
        if use_mpmath and want is not None:
            assert Fraction(want[0]) * Fraction(2) ** want[1] == exp_p(x, p)
        if want is None:
            assert o[-1] == 1, (m, e)
            kinds["overflow" if m > 0 else "underflow"] += 1
            continue
        assert o[-1] == 0 and F.decode(o[:-1], p) == want, (m, e, want, F.decode(o[:-1], p))
        kinds["one"] += want == (1 << (p - 1), 1 - p)
        with mpmath.workprec(4 * p + 40):
            units = mpmath.exp(mpmath.mpf(m) * mpmath.mpf(2) ** e) / mpmath.mpf(2) ** want[1]
            kinds["near"] += abs(abs(units - want[0]) - 0.5) < 2.0 ** -6
    return kinds


@pytest.mark.parametrize("p", [2, 3, 4, 5, 6])
def test_exp_exhaustive(p):
    """Every element of F_p (p ≤ 6), against mpmath (p ≤ 4) and MPFR."""
    vals = F.values(p)
    out = F.build("exp", p).simulate(np.array([F.encode(m, e, p) for m, e in vals], dtype=np.uint8)).astype(int)
    kinds = exp_case_kinds(vals, out, p, Format(p), use_mpmath=p <= 4)
    assert kinds["overflow"] and kinds["underflow"] and kinds["one"]


def test_exp_window_at_p8():
    """At p = 8 every input whose exponent lies where e^x is neither 1 nor out of range, a margin
    around it, and the ends of the range."""
    p, hi = 8, 1 << 8
    w = p + EXP_GUARD_BITS[p]
    cases = [(sg * m, e) for e in list(range(-(w + p) - 2, 3)) + [-hi, -hi + 1, hi - 2, hi - 1]
             for m in range(hi // 2, hi) for sg in (1, -1)] + [(0, 0)]
    out = F.build("exp", p).simulate(np.array([F.encode(m, e, p) for m, e in cases], dtype=np.uint8)).astype(int)
    kinds = exp_case_kinds(cases, out, p, Format(p), use_mpmath=False)
    assert all(kinds.values()), kinds


def test_exp_is_refused_where_not_certified():
    with pytest.raises(F.NotCertified):
        F.build("exp", max(EXP_GUARD_BITS) + 1)


# --- prod -------------------------------------------------------------------------------------


@pytest.mark.parametrize("p,k", [(2, 3), (3, 2)])
def test_prod_exhaustive(p, k):
    """All operand tuples, against the integer oracle (product of significands, sum of exponents)."""
    c = F.build("prod", p, k)
    enc, ms, es = table(p)
    n = len(ms)
    idx = [np.arange(n ** k) // n ** (k - 1 - i) % n for i in range(k)]
    out = c.simulate(np.concatenate([enc[i] for i in idx], axis=1))
    m, e, bad = round_scaled(np.prod([ms[i] for i in idx], axis=0), sum(es[i] for i in idx), p)
    check(out, p, m, e, bad)
    assert bad.any() and (m == 0).any()


@pytest.mark.parametrize("p,k,count", [(5, 4, 600), (8, 3, 400), (12, 2, 300)])
def test_prod_seeded_samples(p, k, count):
    """Sparse significands (exact ties are frequent), exponent sums near both range ends, zeros."""
    rng = random.Random(77 * p + k)
    fmt = Format(p)
    hi = 1 << p
    cases = []
    for _ in range(count):
        target = rng.choice([rng.randrange(-hi, hi), hi - rng.randrange(k * p), -hi - k * p + rng.randrange(k * p)])
        terms = []
        for i in range(k):
            m = (hi >> 1) | sum(1 << rng.randrange(p - 1) for _ in range(2)) if rng.random() < 0.6 else rng.randrange(hi >> 1, hi)
            e = min(hi - 1, max(-hi, (target - sum(t[1] for t in terms)) // (k - i) + rng.randrange(-2, 3)))
            terms.append((m * rng.choice([1, -1]), e))
        if rng.random() < 0.05:
            terms[rng.randrange(k)] = (0, 0)
        cases.append(terms)
    x = np.array([[bit for m, e in t for bit in F.encode(m, e, p)] for t in cases], dtype=np.uint8)
    out = F.build("prod", p, k).simulate(x).astype(int)
    kinds = {"error": 0, "zero": 0, "tie": 0}
    for t, o in zip(cases, out):
        exact = math.prod(Fraction(m) * Fraction(2) ** e for m, e in t)
        try:
            want = fmt.to_pair(fmt.prod([fmt.from_pair(m, e) for m, e in t]))
        except FpArithmeticError:
            assert o[-1] == 1, t
            kinds["error"] += 1
            continue
        assert Fraction(want[0]) * Fraction(2) ** want[1] == round_fraction(exact, p)
        assert o[-1] == 0 and F.decode(o[:-1], p) == want, (t, want)
        kinds["zero"] += want == (0, 0)
        kinds["tie"] += want != (0, 0) and abs(exact - want[0] * Fraction(2) ** want[1]) == Fraction(2) ** want[1] / 2
    assert all(kinds.values()), kinds


# --- models: symbols replaced by circuit depths, and one circuit for a whole model ----------------

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_depth_gates_threshold_for_mlp():
    from tc0sim.reports import depth_report

    data = depth_report(EXAMPLES / "mlp.yaml", threshold=True).as_dict()["threshold"]
    p = data["precision"]
    add_depth, sum_depth = F.build("add", p).stats().depth, F.build("sum", p, 2).stats().depth
    assert data["symbol_values"] == {"d_std": add_depth, "d_sum": sum_depth}
    assert data["depth"] == 2 * add_depth + sum_depth  # the claimed 2 d_std + d_sum of the mlp


def test_audit_names_the_threshold_depth():
    from tc0sim.reports import audit_report

    report = audit_report([EXAMPLES / "mlp.yaml"], gates_p=5)
    assert not report.violated
    depth = 2 * F.build("add", 5).stats().depth + F.build("sum", 5, 2).stats().depth
    notes = [n for v in report.as_dict()["claims"] for n in v["notes"] if "these circuits" in n]
    assert notes and all(f"depth = {depth} gates at p = 5" in n for n in notes)


def test_audit_gives_layernorm_a_number_with_div_and_sqrt():
    """Layer norm (5 d_std + 2 d_sum + d_sqrt, with div in d_std): every symbol now has a circuit."""
    from tc0sim.reports import audit_report

    report = audit_report([EXAMPLES / "layernorm.yaml"], gates_p=5)
    assert not report.violated
    d_std = max(F.build(prim, 5).stats().depth for prim in ("sub", "mul", "div"))
    depth = 5 * d_std + 2 * F.build("sum", 5, 2).stats().depth + F.build("sqrt", 5).stats().depth
    notes = [n for v in report.as_dict()["claims"] for n in v["notes"] if "these circuits" in n]
    assert notes and all(f"depth = {depth} gates at p = 5" in n and "symbolic" not in n for n in notes)



def check_draws_against_evaluate(graph, compiled, p, scale, seeds) -> list:
    """Draw inputs with each seed, simulate the compiled circuit on all of them at once and assert,
    draw by draw, equal outputs or the range-error bit exactly where evaluate raises; the wanted
    [m, e] pairs per draw (None where evaluate raised)."""
    from tc0sim.interp.evaluate import evaluate, random_inputs

    fmt, width = Format(p), F.operand_bits(p)
    rows, wants = [], []
    for seed in seeds:
        vals = {k: fmt.asarray(v) for k, v in random_inputs(graph, seed, scale).items()}
        rows.append(compiled.input_bits(vals))
        try:
            out = evaluate(graph, p, inputs=vals)
            wants.append([fmt.to_pair(x) for name, _ in compiled.outputs for x in out[name].reshape(-1)])
        except FpArithmeticError:
            wants.append(None)
    for want_row, row in zip(wants, compiled.circuit.simulate(np.array(rows)).astype(int)):
        assert bool(row[-1]) == (want_row is None)
        if want_row is not None:
            assert [F.decode(row[i * width:(i + 1) * width], p) for i in range(len(want_row))] == want_row
    return wants


def test_whole_mlp_compiled_to_one_circuit_equals_eval(tmp_path):
    from click.testing import CliRunner

    from tc0sim.cli.main import main
    from tc0sim.interp.evaluate import random_inputs
    from tc0sim.interp.threshold import account
    from tc0sim.interp.depth import depth
    from tc0sim.interp.threshold_compile import compile_graph
    from tc0sim.modelfile import load_model

    p = 4
    spec = load_model(EXAMPLES / "mlp.yaml")
    graph = spec.build(None)
    compiled = compile_graph(graph, p)
    fmt = Format(p)
    width = F.operand_bits(p)
    # the file's own inputs, against the pairs `tc0sim eval` writes
    out_path = tmp_path / "out.json"
    result = CliRunner().invoke(main, ["eval", str(EXAMPLES / "mlp.yaml"), "--precision", "4", "--output", str(out_path)])
    assert result.exit_code == 0, result.output
    evaluated = json.loads(out_path.read_text())["outputs"]
    drawn = {k: fmt.asarray(v) for k, v in random_inputs(graph, spec.seed, spec.scale).items()}
    bits = compiled.circuit.simulate(compiled.input_bits(drawn)[None, :])[0].astype(int)
    want = [tuple(pair) for name, _ in compiled.outputs for pair in np.array(evaluated[name]["pairs"]).reshape(-1, 2).tolist()]
    got = [F.decode(bits[i * width:(i + 1) * width], p) for i in range(len(want))]
    assert got == want and not bits[-1]
    # more input draws: equal outputs, or the range-error bit exactly where evaluate raises
    check_draws_against_evaluate(graph, compiled, p, spec.scale, range(100, 140))
    # composing the circuits is never deeper than counting every primitive at its full depth
    assert compiled.circuit.stats().depth <= account(graph, depth(graph), p).depth


@pytest.mark.parametrize("model,p,prims", [("attention.yaml", 4, {"exp", "div"}), ("layernorm.yaml", 5, {"div", "sqrt"})])
def test_models_with_div_sqrt_exp_compiled_to_one_circuit_equal_eval(model, p, prims):
    """Softmax attention (exp, div, sums, products) and layer norm (div, sqrt) at n = 4: one circuit,
    equal to evaluate bit for bit on 20 input draws (or its error bit set exactly where evaluate raises)."""
    from tc0sim.interp.threshold_compile import compile_graph
    from tc0sim.modelfile import load_model

    spec = load_model(EXAMPLES / model)
    graph = spec.build(4)
    assert prims <= {node.prim.name for node in graph.live()}
    compiled = compile_graph(graph, p)
    wants = check_draws_against_evaluate(graph, compiled, p, spec.scale, range(300, 320))
    assert any(w is not None for w in wants)


def test_audit_gives_attention_a_number_with_exp():
    """FlowAR Lemma 4.6 (6 d_std + 6 d_sum + d_exp) at p = 4, where the exp circuit is certified: the
    note's number is the critical depth vectors evaluated at the depths of the circuits built here."""
    from click.testing import CliRunner

    from tc0sim.cli.main import main
    from tc0sim.interp.depth import depth
    from tc0sim.interp.threshold import node_arity
    from tc0sim.ir.primitives import SYMBOLS
    from tc0sim.modelfile import load_model

    result = CliRunner().invoke(main, ["audit", str(EXAMPLES / "attention.yaml"), "--gates-precision", "4", "--format", "json"])
    assert result.exit_code == 0, result.output
    notes = [n for v in json.loads(result.output)["claims"] for n in v["notes"] if "these circuits" in n]
    assert len(notes) == 1 and "symbolic" not in notes[0]
    n = int(notes[0].split("(n = ")[1].split(")")[0])
    graph = load_model(EXAMPLES / "attention.yaml").build(n)
    values: dict[str, int] = {}
    for node in graph.live():
        row = node.prim
        if row.is_wiring or row.role == "source":
            continue
        d = F.build(node.prim.name, 4, node_arity(graph, node)).stats().depth
        values[row.symbol] = max(values.get(row.symbol, 0), d)
    assert "d_exp" in values
    want = max(sum(c * values.get(s, 0) for s, c in zip(SYMBOLS, v)) for v in depth(graph).critical)
    assert f"depth = {want} gates at p = 4" in notes[0]


def test_sum_gap_needs_2p_plus_log_k():
    """A top cluster that cancels to one unit, and six terms far below whose compressed copies would
    cross the half-ulp below 2^6 if gaps were capped at W + 1 with W = p + ⌈log2 k⌉ + 2 = 8
    (that W rounds this sum to 56); with W = 2p + ⌈log2 k⌉ the circuit gives round_p(exact) = 64."""
    p, k = 3, 8
    terms = [(4, 7), (-7, 6)] + [(-7, -8)] * 6
    exact = sum(Fraction(m) * Fraction(2) ** e for m, e in terms)
    assert round_fraction(exact, p) == 64
    x = np.array([[b for t in terms for b in F.encode(*t, p)]], dtype=np.uint8)
    assert F.decode(F.build("sum", p, k).simulate(x)[0].astype(int), p) == (4, 4)


def test_threshold_command_writes_and_verifies(tmp_path):
    from click.testing import CliRunner

    from tc0sim.cli.main import main

    out = tmp_path / "sum.json"
    result = CliRunner().invoke(main, ["threshold", "sum", "--precision", "3", "--arity", "2", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "exhaustive over all 16641 operand tuples" in result.output and "all equal" in result.output
    circuit = Circuit.read(out)
    assert f"│ {circuit.stats().depth} " in result.output and circuit.inputs == 18
    for args in (["erf", "--precision", "3"], ["exp", "--precision", "20"], ["prod", "--precision", "24", "--arity", "8"], ["add", "--precision", "1"], ["add", "--precision", "3", "--arity", "3"],
                 ["sum", "--precision", "3", "--arity", "0"], ["sum", "--precision", "24", "--arity", "64"]):
        bad = CliRunner().invoke(main, ["threshold", *args, "--output", str(out)])
        assert bad.exit_code == 2 and "error:" in bad.output


@pytest.mark.parametrize("prim", ["div", "sqrt", "exp"])
def test_threshold_report_says_depth_is_not_constant(tmp_path, prim):
    from tc0sim.reports import threshold_report

    out = tmp_path / f"{prim}.json"
    report = threshold_report(prim, 3, str(out))
    assert report.mismatches == 0
    data = report.as_dict()
    assert data["verification"]["mismatches"] == 0 and data["verification"]["method"].startswith("exhaustive")
    assert "not constant" in data["depth_note"] and "Hesse" in data["depth_note"]
    assert data["depth"] == Circuit.read(out).stats().depth


def test_generated_size_tables_match_the_circuits():
    """docs/threshold_sizes.md (benchmarks/threshold_sizes.py) at a few cheap points."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "threshold_sizes.md").read_text()
    for prim in ("compare", "add", "mul"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {prim} |"))
        cells = [c.strip() for c in row.split("|")[1:-1]]
        gates = [F.build(prim, p).stats().gates for p in (2, 4)]
        assert cells[1] == str(F.build(prim, 3).stats().depth)
        assert cells[2].split(", ")[:2] == [str(g) for g in gates]
    row = next(line for line in text.splitlines() if line.startswith("| 3 | 27 /"))
    st = F.build("sum", 4, 3).stats()
    assert row.split("|")[4].strip() == f"{st.depth} / {st.gates}"  # columns: k, p = 2, 3, 4, …
    exp_section = text.split("## exp")[1].split("##")[0]
    st = F.build("exp", 4).stats()
    assert f"\n| 4 | {EXP_GUARD_BITS[4]} | {st.depth} | {st.gates} | {st.wires} |" in exp_section
    recurrence = text.split("## div and sqrt")[1].split("##")[0]
    d, r = F.build("div", 5).stats(), F.build("sqrt", 5).stats()
    assert f"\n| 5 | {d.depth} | {d.gates} | {d.wires} | {r.depth} | {r.gates} | {r.wires} |" in recurrence


@pytest.mark.parametrize("bits", [20, 50, 60, 130])
def test_simulator_exact_against_python_integers(bits):
    """Random layered circuits with weights of the given width (float32, float64 and 26-bit limb
    paths) against a plain Python-integer evaluation, gate by gate."""
    rng = random.Random(bits)
    n_in, gates = 12, []
    for j in range(60):
        wires = rng.sample(range(n_in + j), min(n_in + j, rng.randrange(1, 9)))
        weights = [rng.randrange(-(1 << bits), 1 << bits) for _ in wires]
        threshold = sum(w for w in weights if rng.random() < 0.5)
        gates.append((weights, wires, threshold))
    c = Circuit(inputs=n_in, gates=gates, outputs=list(range(n_in + 60)))
    x = np.random.default_rng(bits).integers(0, 2, (300, n_in))
    out = c.simulate(x)
    for row, got in zip(x.tolist(), out):
        vals = list(row)
        for weights, wires, threshold in gates:
            vals.append(int(sum(w * vals[i] for w, i in zip(weights, wires)) >= threshold))
        assert got.astype(int).tolist() == vals


# --- counting mode: the same construction run without storing gates -------------------------------


@pytest.mark.parametrize("prim", sorted(F.PRIMS))
def test_counting_mode_equals_the_full_build(prim):
    """Depth, gates, wires and weight bits of a counting-mode run equal those read off the stored circuit."""
    arity = 3 if prim in F.REDUCTIONS else 2
    for p in (3, 6) if prim == "exp" else (3, 6, 9):
        assert F.count(prim, p, arity) == F.build(prim, p, arity).stats(), (prim, p)


def test_counting_mode_equals_the_full_build_for_sum_of_2_to_16_terms():
    points = [(2, k) for k in range(2, 17)] + [(5, 5), (8, 3), (12, 2)]
    for p, k in points:
        assert F.count("sum", p, k) == F.build("sum", p, k).stats(), (p, k)


def test_counting_mode_stores_no_gate():
    from tc0sim.threshold.builder import counting

    with counting():
        b = Builder()
        x, y = b.inputs(2)
        g = b.and_([x, y])
        counted = b.circuit([b.or_([g, x ^ 1])])
    assert b.gates == [] and counted.stats().gates == 2 and counted.stats().depth == 2
    full = Builder()
    x, y = full.inputs(2)
    assert full.circuit([full.or_([full.and_([x, y]), x ^ 1])]).stats() == counted.stats()


def test_count_refuses_sums_beyond_its_limit():
    k = next(k for k in range(16, 10_000, 16) if F.sum_wires_estimate(8, k) > F.MAX_COUNT_WIRES)
    with pytest.raises(F.CircuitTooLarge, match="counting the sum"):
        F.count("sum", 8, k)


def test_depth_gates_threshold_counts_a_sum_of_more_than_16_terms(tmp_path):
    """An MLP whose dot products have 17 terms: d_sum from the sum circuit of 17 terms (counted),
    equal to the built circuit's; and a sum beyond the count limit stays symbolic, named."""
    from tc0sim.interp.depth import depth
    from tc0sim.interp.threshold import MAX_PRECISION, account
    from tc0sim.modelfile import load_model

    path = tmp_path / "wide.yaml"
    path.write_text((EXAMPLES / "mlp.yaml").read_text().replace("c: 2", "c: 17"))
    graph = load_model(path).build(None)
    built = F.build("sum", 2, 17).stats()
    acc = account(graph, depth(graph), 2)
    assert acc.values["d_sum"] == built.depth and acc.circuits["sum", 17] == built
    assert acc.depth == 2 * F.build("add", 2).stats().depth + built.depth
    p = MAX_PRECISION
    k = next(k for k in range(16, 10_000, 16) if F.sum_wires_estimate(p, k) > F.MAX_COUNT_WIRES)
    path.write_text((EXAMPLES / "mlp.yaml").read_text().replace("c: 2", f"c: {k}").replace("n: 4", "n: 1"))
    graph = load_model(path).build(None)
    acc = account(graph, depth(graph), p)
    assert acc.depth is None and f"sum of {k} terms at p = {p}" in acc.unresolved["d_sum"]
