"""The fast engine (binary64 + certified single rounding) against independent oracles and MPFR.

Oracles, none of them tc0sim code:
* an integer oracle in numpy int64: exact significand arithmetic (products, aligned sums, long
  division and integer square roots with a sticky bit), rounded to p bits, ties to even;
* Python-integer products for ⊗; gmpy2/MPFR directly for exp;
* the exact-rational oracle of tests/reference.py on small whole operators;
* the MPFR engine (engine="mpfr") on the same graphs, for values and for errors.
"""

from __future__ import annotations

import dataclasses
import math
from fractions import Fraction
from pathlib import Path

import gmpy2
import numpy as np
import pytest
from click.testing import CliRunner
from reference import exact_attention, exact_layernorm, round_fraction

from tc0sim.interp.size import size
from tc0sim.cli.main import main
from tc0sim.fastfp import MAX_FAST_P, Kernels
from tc0sim.fp import ExpOverflow, Format, FpArithmeticError, FpOverflow, FpUnderflow, NotRepresentableError
from tc0sim.interp.evaluate import EvalStats, evaluate
from tc0sim.ir.graph import Builder
from tc0sim.ir.primitives import EXP, MIN
from tc0sim.kinds import build
from tc0sim.modelfile import load_model
from test_examples import RELEASED_SIZE

PRECISIONS = (2, 3, 8, 11, 24, MAX_FAST_P)
N = 1_000_000
EXAMPLES = [
    f
    for f in sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))
    if f.stem not in RELEASED_SIZE  # released-size models are far beyond an evaluation in a test
]


# --- the integer oracle -----------------------------------------------------------------------


def exponent_range(p: int) -> tuple[int, int]:
    """floor(log2|x|) of the non-zero F_p values that are normal binary64 numbers."""
    lo, hi = p - 1 - 2**p, 2**p + p - 2
    return max(lo, -1022), min(hi, 1023)


def random_fp(rng: np.random.Generator, p: int, exps: np.ndarray) -> np.ndarray:
    """Random F_p values with the given floor(log2|x|), random sign and significand."""
    m = rng.integers(2 ** (p - 1), 2**p, size=exps.shape)
    return np.ldexp(m * rng.choice([-1.0, 1.0], size=exps.shape), exps - (p - 1))


def split(x: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """x = m·2^e with |m| < 2^p an integer (int64)."""
    mant, ex = np.frexp(x)
    return np.ldexp(mant, p).astype(np.int64), ex.astype(np.int64) - p


def bit_length(a: np.ndarray) -> np.ndarray:
    """Bit length of non-negative int64 values (exact, also above 2^53)."""
    bl = np.frexp(a.astype(np.float64))[1].astype(np.int64)
    too_big = (bl > 0) & ((a >> np.maximum(bl - 1, 0)) == 0)
    return bl - too_big


def round_int(M: np.ndarray, E: np.ndarray, p: int) -> np.ndarray:
    """round_p(M·2^E), ties to even, as float64 (M int64, |M| < 2^62)."""
    sign = np.where(M < 0, -1.0, 1.0)
    a = np.abs(M)
    shift = np.maximum(bit_length(a) - p, 0)
    q = a >> shift
    rem = a - (q << shift)
    half = np.where(shift > 0, np.left_shift(1, np.maximum(shift - 1, 0)), 0)
    up = (shift > 0) & ((rem > half) | ((rem == half) & (q % 2 == 1)))
    return sign * np.ldexp((q + up).astype(np.float64), (E + shift).astype(np.int32))


def oracle(prim: str, p: int, a: np.ndarray, b: np.ndarray | None = None) -> np.ndarray:
    """The exact p-bit result of a primitive on F_p operands, by integer arithmetic."""
    ma, ea = split(a, p)
    if prim == "mul":
        mb, eb = split(b, p)
        return round_int(ma * mb, ea + eb, p)
    if prim in ("add", "sub"):
        mb, eb = split(-b if prim == "sub" else b, p)
        far = np.abs(ea - eb) > p + 4
        low = np.minimum(ea, eb)
        total = (ma << np.where(far, 0, ea - low)) + (mb << np.where(far, 0, eb - low))
        exact = round_int(total, low, p)
        bigger = np.where(np.abs(a) > np.abs(b), a, -b if prim == "sub" else b)
        return np.where(far & (ma != 0) & (mb != 0), bigger, np.where(ma == 0, -b if prim == "sub" else b, exact))
    if prim == "div":
        mb, eb = split(b, p)
        k = p + 3
        num = np.abs(ma) << k
        q, r = num // np.abs(mb), num % np.abs(mb)
        sign = np.sign(ma) * np.sign(mb)
        return round_int(sign * (2 * q + (r != 0)), ea - eb - k - 1, p)
    if prim == "sqrt":
        odd = ea % 2 != 0
        m, e = np.where(odd, ma << 1, ma), np.where(odd, ea - 1, ea)
        k = 16
        big = m << (2 * k)
        s = np.floor(np.sqrt(big.astype(np.float64))).astype(np.int64)
        for _ in range(2):
            s = np.where(s * s > big, s - 1, s)
            s = np.where((s + 1) * (s + 1) <= big, s + 1, s)
        return round_int(2 * s + (s * s != big), e // 2 - k - 1, p)
    raise ValueError(prim)


def sum_oracle(rows: np.ndarray, p: int) -> np.ndarray:
    """round_p of exact row sums, the terms aligned to the smallest exponent (window < 62 bits)."""
    m, e = split(rows, p)
    e = np.where(m == 0, e.max(), e)
    low = e.min(axis=1, keepdims=True)
    return round_int((m << (e - low)).sum(axis=1), low[:, 0], p)


# --- graphs ---------------------------------------------------------------------------------------


def run_map(prim: str, p: int, *operands: np.ndarray, engine: str = "fast", stats: EvalStats | None = None, **kw):
    b = Builder()
    xs = [b.input(f"x{i}", o.shape) for i, o in enumerate(operands)]
    b.output("y", getattr(b, prim)(*xs))
    inputs = {f"x{i}": o for i, o in enumerate(operands)}
    return evaluate(b.graph, p, inputs, engine=engine, stats=stats, values="float64", **kw)["y"]


def run_reduce(prim: str, p: int, rows: np.ndarray, engine: str = "fast", stats: EvalStats | None = None, **kw):
    b = Builder()
    x = b.input("x", rows.shape)
    b.output("y", getattr(b, prim)(x, axis=-1))
    return evaluate(b.graph, p, {"x": rows}, engine=engine, stats=stats, values="float64", **kw)["y"]


def bits_equal(got: np.ndarray, expected: np.ndarray) -> None:
    """Same F_p values (+0 and −0 are the same element)."""
    bad = np.flatnonzero(got.ravel() != expected.ravel())
    assert bad.size == 0, f"{bad.size} differ, first at {bad[0]}: {got.ravel()[bad[0]]!r} vs {expected.ravel()[bad[0]]!r}"


def operands(prim: str, p: int, n: int, seed: int) -> list[np.ndarray]:
    """Random operand tuples that keep the result inside F_p's and binary64's normal range."""
    rng = np.random.default_rng([seed, p, len(prim)])
    lo, hi = exponent_range(p)
    half_lo, half_hi = -((-lo) // 2) + 1, hi // 2 - 1
    ea = rng.integers(half_lo, half_hi + 1, n)
    if prim == "sqrt":
        return [np.abs(random_fp(rng, p, rng.integers(lo, hi + 1, n)))]
    if prim in ("add", "sub"):
        near = np.clip(ea + rng.integers(-p - 6, p + 7, n), half_lo, half_hi)
        eb = np.where(rng.random(n) < 0.8, near, rng.integers(half_lo, half_hi + 1, n))
        a, b = random_fp(rng, p, ea), random_fp(rng, p, eb)
        cancel = rng.random(n) < 0.05
        b = np.where(cancel, -a if prim == "add" else a, b)
        return [a, b]
    if prim == "div":
        return [random_fp(rng, p, ea), random_fp(rng, p, rng.integers(half_lo // 2, half_hi // 2 + 1, n))]
    return [random_fp(rng, p, ea), random_fp(rng, p, rng.integers(half_lo, half_hi + 1, n))]


# --- 10^6 tuples per primitive against the integer oracle ---------------------------------------


@pytest.mark.parametrize("p", PRECISIONS)
@pytest.mark.parametrize("prim", ["add", "sub", "mul", "div", "sqrt"])
def test_rounded_primitives_match_integer_oracle(prim: str, p: int) -> None:
    ops = operands(prim, p, N, seed=1)
    got = run_map(prim, p, *ops)
    bits_equal(got, oracle(prim, p, *ops))
    small = [o[:3000] for o in ops]
    bits_equal(run_map(prim, p, *small, engine="mpfr"), got[:3000])


@pytest.mark.parametrize("p", PRECISIONS)
def test_sums_match_integer_oracle_including_cancellation(p: int) -> None:
    rng = np.random.default_rng([2, p])
    lo, hi = exponent_range(p)
    rows, k = N // 4, 4
    window = min(61 - p - 3, (hi - lo) // 2)
    base = rng.integers(max(lo + 1, -900), max(min(hi, 900) - window - 3, lo + 2), rows)[:, None]
    exps = np.clip(base + rng.integers(0, window + 1, (rows, k)), lo + p + 1, hi - 3)
    x = random_fp(rng, p, exps)
    cancel = rng.random(rows) < 0.2
    x[cancel, 1] = -x[cancel, 0]
    stats = EvalStats()
    got = run_reduce("sum", p, x, stats=stats)
    bits_equal(got, sum_oracle(x, p))
    assert stats.recomputed < 0.01 * rows
    bits_equal(run_reduce("sum", p, x[:2000], engine="mpfr"), got[:2000])


@pytest.mark.parametrize("p", PRECISIONS)
def test_exp_certified_or_recomputed_matches_mpfr(p: int) -> None:
    rng = np.random.default_rng([3, p])
    lo, hi = exponent_range(p)
    top = min(hi * math.log(2), 700) * 0.95
    bottom = max(lo * math.log(2), -700) * 0.95
    x = Kernels(p).rounded(rng.uniform(bottom, top, N if p == 24 else N // 10))
    x[np.abs(x) < 2.0 ** (lo + 1)] = 1.0
    stats = EvalStats()
    got = run_map("exp", p, x, stats=stats)
    with gmpy2.context(precision=p, round=gmpy2.RoundToNearest, emin=-2000, emax=2000):
        expected = np.array([float(gmpy2.exp(gmpy2.mpfr(v, p))) for v in x.tolist()])
    bits_equal(got, expected)
    assert stats.certified + stats.recomputed == x.size
    assert stats.recomputed < 0.01 * x.size


def test_numpy_exp_error_is_far_inside_the_assumed_bound() -> None:
    """The certificate assumes a relative error <= 2^-40; measure numpy's against MPFR at 53 bits."""
    x = np.random.default_rng(4).uniform(-700, 700, 30_000)
    with gmpy2.context(precision=200):
        exact = [gmpy2.exp(gmpy2.mpfr(v)) for v in x.tolist()]
    y = np.exp(x)
    with gmpy2.context(precision=200):
        worst = max(abs(gmpy2.mpfr(float(a)) - b) / b for a, b in zip(y.tolist(), exact))
    assert worst < 2.0**-50


@pytest.mark.parametrize("p", [2, 3, 8, 11, 14])
def test_binary32_exp_certified_or_retried_matches_mpfr(p: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """|x| <= 80 at p <= 14: the engine starts from numpy's binary32 exp (a spy counts its
    elements), retries its uncertified elements in binary64, and gives MPFR's bits."""
    from tc0sim.engines.fast import FAST_RULES

    seen = []
    spy = lambda x, out: seen.append(x.size) or np.exp(x, out=out)  # noqa: E731
    monkeypatch.setitem(FAST_RULES, EXP, dataclasses.replace(FAST_RULES[EXP], single=spy))
    lo, hi = exponent_range(p)
    top, bottom = min(hi * math.log(2), 80) * 0.95, max(lo * math.log(2), -80) * 0.95
    x = Kernels(p).rounded(np.random.default_rng([8, p]).uniform(bottom, top, N if p in (8, 11) else N // 10))
    x[np.abs(x) < 2.0 ** max(lo + 1, -126)] = 0.0
    stats = EvalStats()
    got = run_map("exp", p, x, stats=stats)
    assert sum(seen) == x.size
    with gmpy2.context(precision=p, round=gmpy2.RoundToNearest, emin=-2000, emax=2000):
        expected = np.array([float(gmpy2.exp(gmpy2.mpfr(v, p))) for v in x.tolist()])
    bits_equal(got, expected)
    assert stats.certified + stats.recomputed == x.size
    assert stats.recomputed < 0.001 * x.size


def test_binary32_exp_is_not_used_where_its_certificate_is_too_wide(monkeypatch: pytest.MonkeyPatch) -> None:
    from tc0sim.engines.fast import FAST_RULES

    def fails(x, out):
        raise AssertionError("the binary32 exp was used")

    monkeypatch.setitem(FAST_RULES, EXP, dataclasses.replace(FAST_RULES[EXP], single=fails))
    x = Kernels(15).rounded(np.linspace(-80, 80, 1001))
    with gmpy2.context(precision=15, emin=-2000, emax=2000):
        bits_equal(run_map("exp", 15, x), np.array([float(gmpy2.exp(gmpy2.mpfr(v, 15))) for v in x.tolist()]))
    with gmpy2.context(precision=8):
        expected = np.array([float(gmpy2.exp(gmpy2.mpfr(v, 8))) for v in (-81.0, 3.0)])
    bits_equal(run_map("exp", 8, np.array([-81.0, 3.0])), expected)  # |x| > 80


def test_elements_uncertified_in_binary32_are_retried_in_binary64() -> None:
    """Arguments whose binary32 exp lies near an F_p midpoint: each gets MPFR's bits, and the
    binary64 retry (not MPFR) settles almost all of them."""
    p = 11
    K = Kernels(p)
    x = K.rounded(np.random.default_rng(9).uniform(-80, 80, 2_000_000))
    x = x[np.abs(x) >= 2.0**-126]
    y32 = np.exp(x.astype(np.float32)).astype(np.float64)
    near = x[~K.certify_exp(y32, threshold=K.exp_single_threshold)][:3000]
    assert near.size >= 1000
    stats = EvalStats()
    got = run_map("exp", p, near, stats=stats)
    with gmpy2.context(precision=p, emin=-2000, emax=2000):
        bits_equal(got, np.array([float(gmpy2.exp(gmpy2.mpfr(v, p))) for v in near.tolist()]))
    assert stats.recomputed < 0.01 * near.size


def test_numpy_binary32_exp_error_is_far_inside_the_assumed_bound() -> None:
    """The binary32 certificate assumes a relative error <= 2^-17; measure numpy's here."""
    x = np.random.default_rng(10).uniform(-80, 80, 200_000).astype(np.float32)
    y = np.exp(x).astype(np.float64).tolist()
    with gmpy2.context(precision=200):
        worst = max(abs(gmpy2.mpfr(b) - e) / e for b, e in zip(y, (gmpy2.exp(gmpy2.mpfr(float(a))) for a in x.tolist())))
    assert worst < 2.0**-21


@pytest.mark.parametrize("p", [2, 3, 8, 11, 17, 24, MAX_FAST_P])
def test_products_match_python_integers(p: int) -> None:
    rng = np.random.default_rng([5, p])
    lo, hi = exponent_range(p)
    rows, k = 100_000, 3
    low = -((-lo) // 3) + 1
    x = random_fp(rng, p, rng.integers(low, max(hi // 3 - 1, low + 1), (rows, k)))
    stats = EvalStats()
    got = run_reduce("prod", p, x, stats=stats)
    expected = [float(round_fraction(Fraction(a) * Fraction(b) * Fraction(c), p)) for a, b, c in x[:5000].tolist()]
    bits_equal(got[:5000], np.array(expected))
    bits_equal(run_reduce("prod", p, x[:3000], engine="mpfr"), got[:3000])


# --- hard cases ---------------------------------------------------------------------------------


@pytest.mark.parametrize("p", PRECISIONS)
def test_exact_ties_go_to_even(p: int) -> None:
    one = np.ones(4)
    half_ulp = np.ldexp(1.0, -p)
    ties = np.array([half_ulp, 3 * half_ulp, -half_ulp / 2, 5 * half_ulp])
    bits_equal(run_map("add", p, one, ties), oracle("add", p, one, ties))
    expected = np.array([1.0, 1 + 4 * half_ulp, 1.0, 1 + 4 * half_ulp])
    if p > 2:
        bits_equal(run_map("add", p, one, ties), expected)
    m = 2**p - 1
    a = np.array([np.ldexp(m, -p), 3.0])
    b = np.array([np.ldexp(m, -p), 2**p + 1.0 if p <= 3 else 3.0])
    bits_equal(run_map("mul", p, a, b), oracle("mul", p, a, b))
    rows = np.array([[1.0, half_ulp, 0.0], [1.0, 3 * half_ulp, 0.0], [2.0, -half_ulp, 0.0]])
    stats = EvalStats()
    bits_equal(run_reduce("sum", p, rows, stats=stats), sum_oracle(rows, p))
    bits_equal(run_reduce("sum", p, rows, engine="mpfr"), sum_oracle(rows, p))


@pytest.mark.parametrize("p", [8, 11, 24, MAX_FAST_P])
def test_binary64_sum_on_a_midpoint_that_is_not_exact_falls_back(p: int) -> None:
    """1 + 2^-p + 2^-(p+40): binary64 rounds it onto the midpoint 1 + 2^-p (which would tie down to
    1); the bound is not zero, so the row is recomputed and rounds up, as the exact sum does."""
    lo, _ = exponent_range(p)
    tiny = np.ldexp(1.0, max(-p - 40, lo + 1))
    rows = np.array([[1.0, np.ldexp(1.0, -p), tiny, 0.0], [1.0, np.ldexp(1.0, -p), -tiny, tiny]])
    stats = EvalStats()
    got = run_reduce("sum", p, rows, stats=stats)
    assert got[0] == 1 + np.ldexp(1.0, 1 - p) and got[1] == 1.0
    assert stats.recomputed >= 1
    bits_equal(run_reduce("sum", p, rows, engine="mpfr"), got)


@pytest.mark.parametrize("p", [8, 11, 24])
def test_catastrophic_cancellation_in_sums(p: int) -> None:
    rng = np.random.default_rng([6, p])
    big = random_fp(rng, p, rng.integers(20, 40, 5000))
    small = random_fp(rng, p, rng.integers(-30, -10, 5000))
    rows = np.stack([big, small, -big, small], axis=1)
    got = run_reduce("sum", p, rows)
    bits_equal(got, sum_oracle(rows, p))
    bits_equal(got, run_reduce("sum", p, rows, engine="mpfr"))


def test_near_midpoint_exp_elements_are_recomputed() -> None:
    p = 24
    x = Kernels(p).rounded(np.random.default_rng(7).uniform(-80, 80, 1_000_000))
    K = Kernels(p)
    near = ~K.certify_exp(np.exp(x))
    assert 0 < near.sum() < 1000
    stats = EvalStats()
    got = run_map("exp", p, x[near])
    with gmpy2.context(precision=p, emin=-2000, emax=2000):
        bits_equal(got, np.array([float(gmpy2.exp(gmpy2.mpfr(v, p))) for v in x[near].tolist()]))
    run_map("exp", p, x[near], stats=stats)
    assert stats.recomputed == near.sum()


# --- range: the same errors as the MPFR engine ------------------------------------------------


def same_outcome(graph_builder, p: int, inputs: dict, **kw) -> None:
    """Both engines give the same pairs, or raise the same error class with the same message."""
    outcomes = []
    for engine in ("fast", "mpfr"):
        try:
            out = evaluate(graph_builder(), p, inputs, engine=engine, **(kw if engine == "fast" else {}))
            outcomes.append(("ok", {k: Format(p).to_pairs(v) for k, v in out.items()}))
        except FpArithmeticError as e:
            outcomes.append((type(e), str(e)))
    assert outcomes[0] == outcomes[1]
    return outcomes[0]


def binary_graph(prim: str, shape: tuple[int, ...]):
    def make():
        b = Builder()
        with b.scope("op"):
            b.output("y", getattr(b, prim)(b.input("a", shape), b.input("b", shape)))
        return b.graph
    return make


@pytest.mark.parametrize(
    "p, prim, a, b, error",
    [
        (2, "mul", [1.0, 3.0, 24.0], [1.0, 3.0, 2.0], FpOverflow),
        (3, "add", [1.0, 896.0], [1.0, 64.0], FpOverflow),
        (3, "mul", [1.0, 2.0**-4], [1.0, 2.0**-3], FpUnderflow),
        (8, "div", [1.0, 2.0**-200], [3.0, 2.0**100], FpUnderflow),
        (9, "mul", [2.0**300, 1.0], [2.0**300, 1.0], FpOverflow),
        (10, "mul", [2.0**-600, 1.0], [2.0**-500, 1.0], FpUnderflow),
        (8, "div", [1.0, 1.0], [2.0, 0.0], FpArithmeticError),
    ],
)
def test_range_errors_are_the_mpfr_engines(p, prim, a, b, error) -> None:
    outcome = same_outcome(binary_graph(prim, (len(a),)), p, {"a": np.array(a), "b": np.array(b)})
    assert issubclass(outcome[0], error) and "node" in outcome[1] and "element" in outcome[1]


def test_exp_range_errors_and_excursions_beyond_binary64() -> None:
    def make():
        b = Builder()
        b.output("y", b.exp(b.input("a", (3,))))
        return b.graph
    assert same_outcome(make, 8, {"a": np.array([0.5, 200.0, 1.0])})[0] is ExpOverflow
    assert same_outcome(make, 8, {"a": np.array([0.5, -200.0, 1.0])})[0] is FpUnderflow
    assert same_outcome(make, 11, {"a": np.array([0.5, 1000.0, -1000.0])})[0] == "ok"


def test_values_beyond_binary64_at_p11_return_to_the_fast_path() -> None:
    def make():
        b = Builder()
        x, y = b.input("x", (4,)), b.input("y", (4,))
        huge = b.mul(b.mul(x, x), b.mul(x, x))
        b.output("y", b.sum(b.mul(b.reshape(b.div(huge, y), (4, 1)), b.reshape(y, (1, 4))), axis=0))
        return b.graph
    inputs = {"x": np.array([2.0**300, 1.5, -2.0**-300, 3.0]), "y": np.array([2.0**900, 2.0, 2.0**-900, 1.0])}
    assert same_outcome(make, 11, inputs)[0] == "ok"
    stats = EvalStats()
    evaluate(make(), 11, inputs, stats=stats)
    assert stats.gates.get("mpfr", 0) > 0 and stats.gates.get("fast", 0) > 0


@pytest.mark.parametrize("chunk", [5, 64, None])
def test_fused_matmul_errors_name_the_failing_node_and_element(chunk) -> None:
    def make():
        b = Builder()
        with b.scope("matmul"):
            x, y = b.input("X", (6, 5)), b.input("Y", (5, 7))
            b.output("out", b.sum(b.mul(b.reshape(x, (6, 5, 1)), b.reshape(y, (1, 5, 7))), axis=1))
        return b.graph
    rng = np.random.default_rng(8)
    x, y = rng.uniform(1, 2, (6, 5)), rng.uniform(1, 2, (5, 7))
    x[4, 2], y[2, 6] = 96.0, 64.0
    out = same_outcome(make, 3, {"X": x, "Y": y}, chunk_elements=chunk)
    assert out[0] is FpOverflow and "node mul" in out[1] and "(element (4, 2, 6))" in out[1]
    x[4, 2], y[2, 6] = 1.5, 1.5
    x[0, :], y[:, 3] = 28.0, 28.0
    out = same_outcome(make, 3, {"X": x, "Y": y}, chunk_elements=chunk)
    assert out[0] is FpOverflow and "node sum" in out[1] and "(element (0, 3))" in out[1]
    assert same_outcome(make, 8, {"X": x, "Y": y}, chunk_elements=chunk)[0] == "ok"


# --- whole operators, examples and models -------------------------------------------------------


@pytest.mark.parametrize("p", [8, 11, 24])
def test_operators_match_the_exact_rational_oracle(p: int) -> None:
    rng = np.random.default_rng([9, p])
    x = rng.standard_normal((4, 6))
    out = evaluate(build("layernorm", {"n": 4, "c": 6}), p, {"X": x}, engine="fast")["out"]
    expected = exact_layernorm(np.vectorize(lambda v: round_fraction(Fraction(v), p), otypes=[object])(x), p)
    F = Format(p)
    assert [F.to_fraction(v) for v in out.ravel()] == list(expected.ravel())
    ws = {name: rng.standard_normal((3, 3)) * 0.5 for name in ("W_Q", "W_K", "W_V")}
    xa = rng.standard_normal((4, 3)) * 0.5
    out = evaluate(build("attention", {"n": 4, "d": 3}), p, {"X": xa, **ws}, engine="fast")["out"]
    r = np.vectorize(lambda v: round_fraction(Fraction(v), p), otypes=[object])
    expected = exact_attention(r(xa), r(ws["W_Q"]), r(ws["W_K"]), r(ws["W_V"]), p)
    assert [F.to_fraction(v) for v in out.ravel()] == list(expected.ravel())


@pytest.mark.parametrize("path", EXAMPLES, ids=[f.stem for f in EXAMPLES])
def test_examples_are_bit_identical_across_engines(path: Path) -> None:
    spec = load_model(path)
    graph = spec.build(None)
    if size(graph).total > 10**7:
        pytest.skip("released-size model: too many gates to evaluate here")
    for p in sorted({8, 11, 24, spec.precision} & set(range(2, MAX_FAST_P + 1))):
        same_outcome(lambda: graph, p, {}, chunk_elements=257)


@pytest.mark.parametrize("kind, dims", [("matmul", {"n1": 40, "d": 50, "n2": 30}), ("attention", {"n": 24, "d": 16})])
def test_larger_graphs_bit_identical_and_rarely_recomputed(kind: str, dims: dict) -> None:
    graph = build(kind, dims)
    for p in (8, 11, 24):
        inputs = {name: np.random.default_rng(10).standard_normal(graph.node(i).shape) * 0.3 for name, i in graph.inputs.items()}
        assert same_outcome(lambda: graph, p, inputs, chunk_elements=1000)[0] == "ok"
        stats = EvalStats()
        evaluate(graph, p, inputs, stats=stats)
        assert stats.recomputed <= 0.01 * sum(stats.gates.values())


def test_engine_choice_and_errors() -> None:
    graph = build("matmul", {"n1": 2, "d": 2, "n2": 2})
    stats = EvalStats()
    evaluate(graph, 24, stats=stats)
    assert stats.engine == "fast" and set(stats.gates) == {"fast"}
    evaluate(graph, 54, stats=stats)
    assert stats.engine == "mpfr"
    from tc0sim.errors import ConfigError

    with pytest.raises(ConfigError, match="fast engine supports 2 <= p <= 53"):
        evaluate(graph, 54, engine="fast")
    with pytest.raises(ConfigError, match="unknown engine"):
        evaluate(graph, 8, engine="gpu")


def test_cli_engine_and_stats(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[1] / "examples" / "attention.yaml"
    outs = []
    for engine in ("auto", "mpfr", "fast"):
        out = tmp_path / f"{engine}.json"
        result = CliRunner().invoke(main, ["eval", str(example), "--output", str(out), "--engine", engine, "--stats"])
        assert result.exit_code == 0, result.output
        assert "gates by engine" in result.output and "time per operator" in result.output
        outs.append(out.read_text())
    assert outs[0] == outs[1] == outs[2]
    bad = CliRunner().invoke(main, ["eval", str(example), "--output", str(tmp_path / "x.json"), "--engine", "fast", "-p", "60"])
    assert bad.exit_code == 2 and "fast engine supports" in bad.output
    bad = CliRunner().invoke(main, ["eval", str(example), "--output", str(tmp_path / "x.json"), "--workers", "2"])
    assert bad.exit_code == 2 and "--workers applies to the MPFR engine" in bad.output
    bad = CliRunner().invoke(main, ["eval", str(example), "--output", str(tmp_path / "x.json"), "--scheduler", "tcp://127.0.0.1:1"])
    assert bad.exit_code == 2 and "--scheduler applies to the MPFR engine" in bad.output
    both = ["--engine", "mpfr", "--workers", "2", "--scheduler", "tcp://127.0.0.1:1"]
    bad = CliRunner().invoke(main, ["eval", str(example), "--output", str(tmp_path / "x.json"), *both])
    assert bad.exit_code == 2 and "give one of them" in bad.output


def test_fast_kernels_agree_with_the_primitive_table() -> None:
    from tc0sim.engines.fast.rules import CERTIFIED, EXACT, FAST_RULES, REDUCTIONS, ROUNDED
    for row, rule in FAST_RULES.items():
        if rule.family in {ROUNDED, CERTIFIED} | REDUCTIONS:
            assert "rounded" in row.properties, row.name
        if rule.family == EXACT:
            assert "exact" in row.properties, row.name
        if rule.family in REDUCTIONS:
            assert row.role == "reduction", row.name


def test_a_primitive_without_fast_kernel_is_evaluated_by_mpfr(monkeypatch: pytest.MonkeyPatch) -> None:
    b = Builder()
    x = b.input("x", (3,))
    b.output("y", b.min(b.exp(x), b.max(x, x)))
    stats = EvalStats()
    from tc0sim.engines.fast import FAST_RULES

    monkeypatch.delitem(FAST_RULES, MIN)
    out = evaluate(b.graph, 11, {"x": np.array([0.5, -1.0, 2.0])}, stats=stats)
    assert stats.gates["mpfr"] == 3 and stats.gates["fast"] == 6
    assert [float(v) for v in out["y"]] == [0.5, -1.0, 2.0]


# --- fast paths added for speed: each against an oracle and the MPFR engine on hard cases -------


def pair_graph(shape: tuple[int, ...], axis: int, fused: bool):
    """⊕ over an axis of length 2: of an input (unfused) or of the products a·b (fused)."""
    def make():
        b = Builder()
        with b.scope("op"):
            x = b.input("a", shape)
            terms = b.mul(x, b.input("b", shape)) if fused else x
            b.output("y", b.sum(terms, axis=axis))
        return b.graph
    return make


@pytest.mark.parametrize("p", PRECISIONS)
def test_sums_of_two_terms_are_one_add(p: int) -> None:
    """A ⊕ of fan-in 2 is computed as binary64 t0 + t1 rounded once more (no certificate):
    10^6 pairs with near exponents, exact cancellation and constructed ties, against the
    integer oracle of add, on the axis in front of the other (2, n) and behind it (n, 2)."""
    a, b = operands("add", p, N, seed=11)
    half_ulp = np.ldexp(1.0, -p)
    a[:4], b[:4] = 1.0, np.array([half_ulp, 3 * half_ulp, -half_ulp / 2, -a[4]])
    expected = oracle("add", p, a, b)
    stats = EvalStats()
    got = evaluate(pair_graph((2, N), 0, False)(), p, {"a": np.stack([a, b])},
                   engine="fast", values="float64", stats=stats)["y"]
    bits_equal(got, expected)
    assert stats.recomputed == 0
    got = evaluate(pair_graph((N, 2), 1, False)(), p, {"a": np.stack([a, b], axis=1)},
                   engine="fast", values="float64")["y"]
    bits_equal(got, expected)
    small = {"a": np.stack([a[:3000], b[:3000]], axis=1)}
    same_outcome(pair_graph((3000, 2), 1, False), p, small)
    if p >= 8:  # operands of modest size: the range is proved and nothing is checked per element
        rng = np.random.default_rng([11, p])
        a = random_fp(rng, p, rng.integers(-8, 9, N // 4))
        b = np.where(rng.random(a.size) < 0.1, -a, random_fp(rng, p, rng.integers(-8 - p, 9, a.size)))
        b[:3] = np.array([half_ulp, 3 * half_ulp, -half_ulp / 2]) * np.abs(a[:3])
        got = evaluate(pair_graph((2, a.size), 0, False)(), p, {"a": np.stack([a, b])}, engine="fast", values="float64")
        bits_equal(got["y"], oracle("add", p, a, b))


@pytest.mark.parametrize("p", [2, 3, 8, 11, 24, MAX_FAST_P])
def test_fused_products_summed_in_pairs_match_the_oracle(p: int) -> None:
    """mul feeding a ⊕ of fan-in 2 (a matmul with an inner dimension of 2): every product rounded,
    then their sum rounded, as the oracle's mul then add, with exact and near cancellation."""
    n = N // 4
    (x0, y0), (x1, y1) = operands("mul", p, n, seed=12), operands("mul", p, n, seed=13)
    cancel = np.arange(n) < n // 10
    x1[cancel], y1[cancel] = x0[cancel], -y0[cancel]
    near = (np.arange(n) >= n // 10) & (np.arange(n) < n // 5)
    x1[near], y1[near] = -x0[near], Kernels(p).rounded(y0[near] * (1 + 2.0 ** (1 - p)))
    x, y = np.stack([x0, x1]), np.stack([y0, y1])
    prods = [oracle("mul", p, x[i], y[i]) for i in (0, 1)]
    expected = oracle("add", p, *prods)
    K = Kernels(p)
    fits = lambda v: np.isfinite(v) & (np.abs(v) <= K.hi) & ((v == 0) | (np.abs(v) >= K.lo))  # noqa: E731
    keep = fits(prods[0]) & fits(prods[1]) & fits(expected)
    x, y, expected = x[:, keep], y[:, keep], expected[keep]
    assert keep.sum() > n // 2
    got = evaluate(pair_graph(x.shape, 0, True)(), p, {"a": x, "b": y}, engine="fast", values="float64")["y"]
    bits_equal(got, expected)
    small = {"a": x[:, :2000].T.copy(), "b": y[:, :2000].T.copy()}
    same_outcome(pair_graph((2000, 2), 1, True), p, small)


@pytest.mark.parametrize("p, a, b", [(3, [[512.0, 1.0], [448.0, 1.0]], None), (8, [[2.0**262, 1.0], [2.0**262, 1.0]], None),
                                     (3, [[1.0, 2.0**-6], [1.0, -2.0**-6 - 2.0**-8]], None)])
def test_pair_sum_range_errors_are_the_mpfr_engines(p, a, b) -> None:
    outcome = same_outcome(pair_graph((2, 2), 0, False), p, {"a": np.array(a)})
    assert outcome[0] in (FpOverflow, FpUnderflow) and "node sum" in outcome[1] and "element" in outcome[1]


@pytest.mark.parametrize("p", [3, 8, 24])
@pytest.mark.parametrize("chunk", [7, None])
def test_fused_reductions_with_a_short_innermost_axis(p: int, chunk) -> None:
    """Products of shape (n, k, 2) summed over the middle axis are laid out with the reduced axis
    last: same bits as MPFR, and an error names the same element as MPFR."""
    def make():
        b = Builder()
        with b.scope("mix"):
            x, y = b.input("X", (9, 1, 2)), b.input("Y", (1, 6, 2))
            b.output("out", b.sum(b.mul(b.broadcast(x, (9, 6, 2)), b.broadcast(y, (9, 6, 2))), axis=1))
        return b.graph
    rng = np.random.default_rng([13, p])
    x, y = rng.uniform(1, 1.9, (9, 1, 2)), rng.uniform(1, 1.9, (1, 6, 2))
    assert same_outcome(make, p, {"X": x, "Y": y}, chunk_elements=chunk)[0] == "ok"
    if p == 3:
        x[5, 0, 1], y[0, 4, 1] = 120.0, 64.0
        out = same_outcome(make, p, {"X": x, "Y": y}, chunk_elements=chunk)
        assert out[0] is FpOverflow and "node mul" in out[1] and "(element (5, 4, 1))" in out[1]


@pytest.mark.parametrize("p", [2, 3, 8, 11, 24, MAX_FAST_P])
def test_dyadic_constants_are_rounded_by_the_kernels(p: int) -> None:
    """Constants: ties to even, a non-dyadic value (MPFR rounds it), values beyond binary64 and
    beyond F_p's range give the MPFR engine's values or errors."""
    half_ulp = Fraction(1, 2**p)
    cases = [
        [1 + half_ulp, 1 + 3 * half_ulp, Fraction(-3, 8), Fraction(0)],
        [Fraction(1, 3), Fraction(5, 7), Fraction(1)],
        [Fraction(2) ** 1100, Fraction(1)],
        [Fraction(2**53 + 1), Fraction(2) ** -1070],
        [Fraction(3, 2**1100), Fraction(1)],  # below binary64's subnormals: not a zero
        [Fraction(2) ** 300, Fraction(2) ** -300],
    ]
    for values in cases:
        def make(values=values):
            b = Builder()
            with b.scope("c"):
                b.output("y", b.add(b.constant(np.array(values, dtype=object)), b.input("x", (len(values),))))
            return b.graph
        def make_lazy(values=values):
            b = Builder()
            with b.scope("c"):
                c = b.lazy_constant((len(values),), lambda: np.array(values, dtype=object))
                b.output("y", b.add(c, b.input("x", (len(values),))))
            return b.graph
        expected = [round_fraction(v, p) for v in values]
        for builder in (make, make_lazy):
            outcome = same_outcome(builder, p, {"x": np.zeros(len(values))})
            if outcome[0] == "ok":
                F = Format(p)
                got = evaluate(builder(), p, {"x": np.zeros(len(values))}, engine="fast")["y"]
                assert [F.to_fraction(v) for v in got] == expected


@pytest.mark.parametrize("p", [2, 3, 8, 11, 24, MAX_FAST_P])
def test_quotient_constants_are_rounded_by_the_kernels(p: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Constants n/d with integers |n|, d < 2^p (pooling and interpolation weights): the fast
    engine's binary64 quotient rounded once more equals round_p(n/d) (exact rationals), without
    the MPFR rule (a spy fails it); an integer of 2^p or more still goes to MPFR."""
    from tc0sim.engines.fast.engine import FastRun

    top = min(1 << p, 1 << 9)
    values = [Fraction(n, d) for d in range(1, top, 7) for n in range(-top + 1, top, 5) if Fraction(n, d) != 0]
    lo, hi = exponent_range(p)
    values = [v for v in values if 2.0 ** max(lo + 2, -1000) <= abs(v) < 2.0 ** min(hi - 2, 1000)]
    b = Builder()
    b.output("y", b.constant(np.array(values, dtype=object)))
    spy = []
    original = FastRun.rule
    monkeypatch.setattr(FastRun, "rule", lambda self, node, args: spy.append(node.prim.name) or original(self, node, args))
    got = evaluate(b.graph, p, {}, engine="fast")["y"]
    F = Format(p)
    assert [F.to_fraction(v) for v in got] == [round_fraction(v, p) for v in values]
    assert "constant" not in spy
    b = Builder()
    b.output("y", b.constant(np.array([Fraction(2**p + 1, 7)], dtype=object)))
    assert F.to_fraction(evaluate(b.graph, p, {}, engine="fast")["y"][0]) == round_fraction(Fraction(2**p + 1, 7), p)
    assert "constant" in spy


@pytest.mark.parametrize("p", [8, 11, 24])
def test_exp_on_a_range_proved_safe_matches_mpfr(p: int) -> None:
    """exp of inputs in [-40, 40]: the range proves every result in range, so values are rounded
    without a range check; certified elements and recomputed near-midpoints match MPFR."""
    x = Kernels(p).rounded(np.random.default_rng([14, p]).uniform(-40, 40, 50_000))
    stats = EvalStats()
    got = run_map("exp", p, x, stats=stats)
    with gmpy2.context(precision=p, emin=-2000, emax=2000):
        expected = np.array([float(gmpy2.exp(gmpy2.mpfr(v, p))) for v in x.tolist()])
    bits_equal(got, expected)
    assert stats.certified + stats.recomputed == x.size and stats.recomputed < 0.01 * x.size


@pytest.mark.parametrize("p", [3, 8, 11, 24, MAX_FAST_P])
def test_float64_inputs_are_rounded_once_on_entry(p: int) -> None:
    """Inputs: exact ties, the float64 neighbours of midpoints, random values; with a range that
    proves every rounding safe and, with one huge or tiny value added, the checked path."""
    half_ulp = 2.0**-p
    tie_cases = [1 + half_ulp, 1 + 3 * half_ulp, -(1 + half_ulp), np.nextafter(1 + half_ulp, 2), np.nextafter(1 + half_ulp, 0)]
    rng = np.random.default_rng([15, p])
    x = np.concatenate([tie_cases, rng.standard_normal(4000), [0.0, -0.0]])
    for extra in ([], [2.0**120], [2.0**-120]):
        values = np.concatenate([x, extra])
        def make(n=values.size):
            b = Builder()
            b.output("y", b.neg(b.input("x", (n,))))
            return b.graph
        outcome = same_outcome(make, p, {"x": values})
        if outcome[0] == "ok":
            got = evaluate(make(), p, {"x": values}, engine="fast", values="float64")["y"]
            expected = [-float(round_fraction(Fraction(v), p)) for v in values.tolist()]
            bits_equal(got, np.array(expected))
        else:
            assert p == 3 and issubclass(outcome[0], (FpOverflow, FpUnderflow)) and "input 'x'" in outcome[1]


@pytest.mark.parametrize("p", PRECISIONS + (10,))
@pytest.mark.parametrize("safe_part", [0, 5000])
def test_binary64_subnormal_inputs_are_not_zeros(p: int, safe_part: int) -> None:
    """A binary64 subnormal input is rounded from its exact value: at p >= 11 it is an F_p value
    (F_p's exponent range is wider than binary64's), at p <= 10 it underflows F_p. (The fast
    engine's bit rounding assumes normal numbers and used to turn them into 0 silently.)"""
    # 2^-1022 - 2^-1046 is an F_24 value and a tie of the bit rounding's fixed grid (2^-1045 at
    # p = 24), which carries it to 2^-1022: Kernels.in_range rejects that value for this reason
    tiny = [5e-324, -3e-320, 3 * 2.0**-1030, 1e-310, -(2.0**-1022 - 2.0**-1074), 2.0**-1022 - 2.0**-1046]
    rng = np.random.default_rng([17, p])
    values = np.concatenate([[1.0, 0.0, -2.5], tiny, rng.standard_normal(safe_part), [2.0**-1022]])

    def make(n=values.size):
        b = Builder()
        b.output("y", b.neg(b.input("x", (n,))))
        return b.graph

    outcome = same_outcome(make, p, {"x": values})
    if p <= 10:
        assert outcome[0] is FpUnderflow and "input 'x'" in outcome[1] and "round(5e-324)" in outcome[1]
        return
    got = evaluate(make(), p, {"x": values}, engine="fast")["y"]
    expected = [-round_fraction(Fraction(v), p) for v in values.tolist()]
    assert [Fraction(m) * Fraction(2) ** e for m, e in Format(p).to_pairs(got)] == expected


@pytest.mark.parametrize("dtype, big, p", [
    (np.int64, 843694788861, 5), (np.uint64, 2**40 + 1, 5), (np.float32, 1e30, 5), (np.float16, 1000, 3),
])
def test_integer_and_narrow_float_inputs_fail_with_the_mpfr_engines_error(dtype, big: float, p: int) -> None:
    """The first input element outside F_p's range is named by its value as the input gave it
    (843694788861, not 843694788861.0), as the MPFR engine names it."""
    values = np.array([1, 3, big, big + 8, 0], dtype=dtype)

    def make(n=values.size):
        b = Builder()
        b.output("y", b.neg(b.input("x", (n,))))
        return b.graph

    outcome = same_outcome(make, p, {"x": values})
    assert outcome[0] is FpOverflow and f"round({values[2].item()!r})" in outcome[1]


@pytest.mark.parametrize("p", [2, 8, 11, 24, MAX_FAST_P])
def test_native_outputs_and_their_pairs(p: int) -> None:
    """values="native": the fast engine's float64 arrays; Format.to_pairs of a float64 array (a
    vectorised path) equals to_pairs of the same values as mpfr, and refuses non-F_p values."""
    F = Format(p)
    lo, hi = exponent_range(p)
    rng = np.random.default_rng([16, p])
    x = np.concatenate([random_fp(rng, p, rng.integers(lo, hi + 1, 5000)), [0.0, -0.0, 2.0**lo, -(2.0**hi)]])
    assert F.to_pairs(x) == F.to_pairs(F.asarray(x))
    assert F.to_pairs(x.reshape(2, -1)) == F.to_pairs(F.asarray(x.reshape(2, -1)))
    assert F.to_pairs(np.array(1.5 if p > 1 else 1.0)) == F.to_pairs(F.asarray(np.array(1.5)))
    for bad in (1 + 2.0 ** (-p), math.inf, 2.0 ** (lo - 1)):
        if bad == 2.0 ** (lo - 1) and lo - 1 < -1022:
            continue
        with pytest.raises(NotRepresentableError, match="is not an F_p value"):
            F.to_pairs(np.array([1.0, bad]))
    for wide in (53, 64, 113):
        G = Format(wide)
        y = np.array([0.0, 5e-324, -1.7976931348623157e308, 0.1, 2.0**-1060])
        assert G.to_pairs(y) == G.to_pairs(G.asarray(y))
    b = Builder()
    b.output("y", b.mul(b.input("a", (3,)), b.input("b", (3,))))
    inputs = {"a": np.array([1.0, 2.0, 3.0]), "b": np.array([0.5, 0.25, 1.0])}
    native = evaluate(b.graph, p, inputs, engine="fast", values="native")["y"]
    assert native.dtype == np.float64
    assert F.to_pairs(native) == F.to_pairs(evaluate(b.graph, p, inputs, engine="mpfr", values="native")["y"])


@pytest.mark.parametrize("p", [3, 8, 11, 24, MAX_FAST_P])
@pytest.mark.parametrize("k", [3, 4, 64])
def test_sums_of_nonnegative_terms_certified_from_the_sum_match_the_oracle(p: int, k: int) -> None:
    """A ⊕ whose terms have no negatives takes Σ|t| from the binary64 sum itself: random rows over
    a wide exponent window, and rows 1 + 2^-p + tiny that binary64 rounds onto the midpoint."""
    rng = np.random.default_rng([11, p, k])
    lo, hi = exponent_range(p)
    top = hi - 2 - k.bit_length()  # a sum of k terms below 2^top stays in range
    rows = N // (4 * k)
    window = min(61 - p - 8, (top - lo) // 2)
    base = rng.integers(max(lo + 1, -900), max(min(top, 900) - window, lo + 2), rows)[:, None]
    exps = np.clip(base + rng.integers(0, window + 1, (rows, k)), lo + p + 1, top)
    x = np.abs(random_fp(rng, p, exps))
    midpoints = 50 if p >= 8 else 0  # 2^-(p+50) is an F_p value from p = 8 on
    x[:midpoints] = 0.0
    x[:midpoints, :3] = [1.0, np.ldexp(1.0, -p), np.ldexp(1.0, -p - 50)]
    x[50:60] = 0.0
    stats = EvalStats()
    got = run_reduce("sum", p, x, stats=stats)
    bits_equal(got[60:], sum_oracle(x[60:], p))  # the first rows span more than the oracle's 62 bits
    assert stats.recomputed >= midpoints and stats.recomputed < 0.01 * rows + midpoints
    assert (got[:midpoints] == 1 + np.ldexp(1.0, 1 - p)).all() and (got[50:60] == 0).all()


@pytest.mark.parametrize("p", [8, 24])
def test_fused_sums_of_squares_match_the_exact_oracle(p: int) -> None:
    """Σ_j x_ij² (a mul of a node with itself, fused with its ⊕): rows 1 + (2^-p/2)² + b² land
    beyond the midpoint 1 + 2^-p that binary64 rounds them onto, and random rows; against exact
    rationals (each square rounded once, then the exact sum rounded once)."""
    rng = np.random.default_rng([12, p])
    x = Kernels(p).rounded(rng.standard_normal((400, 33)))
    x[:40] = 0.0
    x[:40, :3] = [1.0, np.ldexp(1.0, -p // 2), np.ldexp(1.0, -30)]
    x[40:50] = 0.0
    b = Builder()
    xs = b.input("x", x.shape)
    b.output("y", b.sum(b.mul(xs, xs), axis=1))
    stats = EvalStats()
    got = evaluate(b.graph, p, {"x": x}, engine="fast", values="float64", stats=stats, chunk_elements=64)["y"]
    expected = [
        float(round_fraction(sum((round_fraction(Fraction(v) ** 2, p) for v in row.tolist()), Fraction(0)), p))
        for row in x
    ]
    bits_equal(got, np.array(expected))
    assert stats.recomputed >= 40 and (got[:40] == 1 + np.ldexp(1.0, 1 - p)).all()


def test_a_released_array_is_reused_only_when_nothing_else_holds_it() -> None:
    from tc0sim.engines.blocking import Deferred
    from tc0sim.engines.fast import memory as fast
    from tc0sim.engines.fast.engine import FastRun

    engine = FastRun(Format(8), EvalStats())
    memory = fast._MEMORY
    memory.free.clear()
    memory.pooled = 0
    size = fast.POOL_MIN_BYTES // 8
    held = {"a": np.ones(size), "b": np.ones(size), "c": np.ones(size), "d": np.ones(size)}
    view = held["a"].reshape(-1)[1:]
    deferred = Deferred(None, [held["b"]])  # type: ignore[arg-type]
    named = held["c"]
    for key in ("a", "b", "c"):
        engine.release(held.pop(key))
    assert memory.pooled == 0, "a view, a deferred node and a name still hold them"
    engine.release(held.pop("d"))
    assert memory.pooled == 8 * size
    reused = memory.output((2, size // 2))
    assert reused.base is None and reused.shape == (2, size // 2) and memory.pooled == 0
    assert view.sum() == size - 1 and deferred.args[0].sum() == size and named.sum() == size


@pytest.mark.parametrize("path", EXAMPLES, ids=[f.stem for f in EXAMPLES])
def test_examples_with_every_output_array_pooled_keep_the_bits(path: Path, monkeypatch) -> None:
    """Every freed array reused (not only those of 1 MB and more), evaluated twice so that the
    second evaluation runs in memory freed by the first: the same bits as the MPFR engine."""
    from tc0sim.engines.fast import memory as fast

    monkeypatch.setattr(fast, "POOL_MIN_BYTES", 8)
    spec = load_model(path)
    graph = spec.build(None)
    if size(graph).total > 10**7:
        pytest.skip("released-size model: too many gates to evaluate here")
    for _ in range(2):
        same_outcome(lambda: graph, 11, {}, chunk_elements=257)


def _fuzz_inputs(graph, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Inputs of one fuzz case: normal(0, 1) at a random scale, sometimes with mixed magnitudes
    (binary64 subnormals and huge values included), small dyadics with ties, or another dtype."""
    from tc0sim.interp.evaluate import random_inputs

    scale = float(rng.choice([1e-300, 1e-40, 1e-5, 0.5, 1.0, 2.0, 10.0, 1e5, 1e40, 1e300]))
    inputs = random_inputs(graph, int(rng.integers(10**6)), scale)
    mode = rng.integers(6)
    with np.errstate(all="ignore"):
        for name, v in inputs.items():
            if mode == 1:
                v = v * 10.0 ** rng.integers(-30, 31, size=v.shape)
            elif mode == 2:
                v = np.round(v / scale * 4) / 4
            elif mode == 3:
                v = v.astype(np.float32)
            elif mode == 4:
                v = np.clip(np.round(v), -(2.0**62), 2.0**62).astype(np.int64)
            inputs[name] = np.where(np.isfinite(v), v, 0) if v.dtype.kind == "f" else v
    return inputs


@pytest.mark.parametrize("seed", range(8))
def test_differential_fuzz_of_the_examples_against_the_mpfr_engine(seed: int) -> None:
    """Random examples, precisions, input scales, dtypes and --chunk sizes: the fast engine gives
    the MPFR engine's pairs, or its error (class and message). A longer run of this found the
    subnormal-input and integer-message bugs pinned by the tests above."""
    rng = np.random.default_rng([18, seed])
    graphs = [g for g in (load_model(f).build(None) for f in EXAMPLES) if size(g).total <= 20_000]
    assert len(graphs) >= 10
    for _ in range(60):
        graph = graphs[rng.integers(len(graphs))]
        p = int(rng.choice([2, 3, 5, 8, 10, 11, 14, 16, 24, MAX_FAST_P]))
        chunk = [None, 1, 3, 64][rng.integers(4)]
        same_outcome(lambda g=graph: g, p, _fuzz_inputs(graph, rng), chunk_elements=chunk)
