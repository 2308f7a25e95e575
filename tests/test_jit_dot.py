"""The fused product-sum kernel of the fast engine (tc0sim.engines.fast.jit_dot, docs/fuseddot.md
(to be docs/semantics.md §2.8) against the MPFR engine and exact rationals: ties at p bits, near-midpoints, cancellation,
the range limits, zeros of both signs, tiny values; one thread and two give the same bits."""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

import reference as R
from engine_compare import outcome, p_bit, same_as_mpfr, same_bits_on_one_and_all_threads
from tc0sim import engines
from tc0sim.engines import plan
from tc0sim.engines.fast import memory as fast_memory
from tc0sim.engines.fast import jit_dot
from tc0sim.interp.size import size
from tc0sim.kinds import build
from tc0sim.modelfile import load_model

PRECISIONS = [2, 8, 11, 24, 25]


@pytest.fixture
def kernel_calls(monkeypatch) -> list[int]:
    """Counts the fused kernel's calls (each test checks that it really ran)."""
    calls: list[int] = []
    original = jit_dot.Dot.sums

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(jit_dot.Dot, "sums", counted)
    monkeypatch.setattr(fast_memory, "JIT_COLD_ELEMENTS", 0)  # the kernel for graphs of any size
    return calls


def _evaluate(graph, inputs: dict[str, np.ndarray], p: int, engine: str, chunk: int | None = 16):
    return outcome(graph, inputs, p, engine, chunk)


def _same_as_mpfr(graph, inputs: dict[str, np.ndarray], p: int, chunk: int | None = 16) -> engines.EvalStats:
    return same_as_mpfr(graph, inputs, p, chunk)


def _matmul(n1: int, d: int, n2: int):
    return build("matmul", {"n1": n1, "d": d, "n2": n2})


@pytest.mark.parametrize("p", PRECISIONS)
def test_ties_and_cancellation_match_mpfr_and_the_exact_sums(p: int, kernel_calls: list[int]) -> None:
    """Small integers and halves: many products are exact ties at p bits, many sums cancel to 0."""
    rng = np.random.default_rng(p)
    top = 13 if p > 2 else 3
    x = rng.integers(-top + 1, top, size=(6, 12)) / 2.0
    y = rng.integers(-top + 1, top, size=(12, 5)) / 2.0
    x[:, 6:] = x[:, :6]
    y[6:, 0] = -y[:6, 0]  # products that cancel pairwise: the exact sum is 0
    y[6:, 1] = y[:6, 1]
    graph = _matmul(6, 12, 5)
    _same_as_mpfr(graph, {"X": x, "Y": y}, p)
    out, _ = _evaluate(graph, {"X": x, "Y": y}, p, "fast")
    if p > 2:
        expected = R.Exact(p).matmul(R.to_fractions(x, p), R.to_fractions(y, p))
        assert [Fraction(*v.as_integer_ratio()) for v in out["out"].ravel()] == list(expected.ravel())
        assert all(v == 0 for v in out["out"][:, 0])
    assert kernel_calls


@pytest.mark.parametrize("p", [8, 11, 24, 25])
def test_near_midpoint_sums_match_mpfr(p: int, kernel_calls: list[int]) -> None:
    """Rows whose exact sum lies within a binary64 ulp of an F_p midpoint: a big term on a
    midpoint of its own p-bit interval plus tiny terms of either sign (or none)."""
    rng = np.random.default_rng(100 + p)
    d = 16
    x = np.zeros((8, d))
    y = np.ones((d, 3))
    midpoint = (2.0**p + 1) / 2.0**p  # 1 + 2^-p: between 1 and 1 + 2^(1-p)
    x[:, 0] = [1.0, 1.0, 1.0, 1.0, 1.0 + 2.0 ** (1 - p), 1.0, 1.0, 1.0]
    x[:, 1] = 2.0**-p  # together with x[:, 0] the sum is a midpoint (a tie)
    tiny = 2.0 ** -(p + 40)
    x[1, 2], x[2, 2], x[3, 2:4] = tiny, -tiny, (tiny, -tiny)
    x[5, 2:] = p_bit(rng, p, (d - 2,), (-60, -50))
    x[6, 2:4] = (2.0**60, -(2.0**60))  # cancellation far above the result
    x[7, 2:] = p_bit(rng, p, (d - 2,), (-2, 2))
    y[:, 1] = -1.0
    y[:, 2] = p_bit(rng, p, (d,), (0, 1))
    assert x[0, 0] + x[0, 1] == midpoint
    graph = _matmul(8, d, 3)
    stats = _same_as_mpfr(graph, {"X": x, "Y": y}, p)
    assert kernel_calls and stats.recomputed + stats.certified >= 24


@pytest.mark.parametrize("p", PRECISIONS)
def test_random_products_with_wide_exponents_match_mpfr(p: int, kernel_calls: list[int]) -> None:
    """Random p-bit operands over 2^±20: products at every position of their binades, sums of
    very different magnitudes (many rows need the exact recomputation)."""
    rng = np.random.default_rng(200 + p)
    spread = (-20, 20) if p > 2 else (-1, 1)  # F_2 holds exponents e in [-4, 3] only
    x = p_bit(rng, p, (9, 33), spread)
    y = p_bit(rng, p, (33, 7), spread)
    x[rng.random(x.shape) < 0.2] = 0.0
    y[rng.random(y.shape) < 0.1] = -0.0
    _same_as_mpfr(_matmul(9, 33, 7), {"X": x, "Y": y}, p)
    assert kernel_calls


@pytest.mark.parametrize("p, big, tiny, top", [(2, 8.0, 2.0**-2, 8.0), (8, 2.0**135, 2.0**-126, 2.0**261),
                                               (11, 2.0**520, 2.0**-520, 2.0**1021), (24, 2.0**520, 2.0**-520, 2.0**1021),
                                               (25, 2.0**520, 2.0**-520, 2.0**1021)])
@pytest.mark.parametrize("case", ["overflow", "underflow", "sum overflow", "fits"])
def test_range_limits_give_mpfr_values_and_errors(p: int, big: float, tiny: float, top: float, case: str,
                                                 kernel_calls: list[int]) -> None:
    """Products above F_p (p <= 9) or binary64 at the top, below them at the bottom, sums of
    in-range products above them: the MPFR engine's values (held as mpfr beyond binary64) or
    its error, with the same message and element."""
    x = np.ones((4, 10))
    y = np.ones((10, 3)) * 0.5
    if case == "overflow":
        x[2, 3], y[3, 1] = big, big
    elif case == "underflow":
        x[1, 4], y[4, 2] = tiny, tiny
        x[1, 5], y[5, 2] = tiny, -tiny
    elif case == "sum overflow":
        x[:], y[:] = top, 1.0
    x[3, 0] = 0.0
    _same_as_mpfr(_matmul(4, 10, 3), {"X": x, "Y": y}, p)
    assert kernel_calls


@pytest.mark.parametrize("p", [11, 24, 25])
def test_values_beyond_binary64_and_tiny_values(p: int, kernel_calls: list[int]) -> None:
    """Products and sums outside binary64's normal range but inside F_p's (p >= 11): tiny
    operands whose products would be binary64 subnormals, huge ones whose products overflow it."""
    x = np.full((3, 9), 1.5)
    y = np.full((9, 2), 0.75)
    x[0, :] = 2.0**-530
    y[:, 0] = 2.0**-530
    x[1, 0], y[0, 1] = 2.0**600, 2.0**600
    x[2, 1:3] = (2.0**-1000, -(2.0**-1000))
    _same_as_mpfr(_matmul(3, 9, 2), {"X": x, "Y": y}, p)
    assert kernel_calls


@pytest.mark.parametrize("p", PRECISIONS)
def test_linear_and_conv2d_with_bias_match_mpfr(p: int, kernel_calls: list[int]) -> None:
    rng = np.random.default_rng(300 + p)
    clip = 2.0 if p <= 3 else 100.0
    lin = build("linear", {"n": 7, "d_in": 12, "d_out": 5})
    inputs = {"X": p_bit(rng, p, (7, 12), (-3, 3)), "weight": p_bit(rng, p, (5, 12), (-3, 3)),
              "bias": p_bit(rng, p, (5,), (-3, 3))}
    _same_as_mpfr(lin, {k: np.clip(v, -clip, clip) for k, v in inputs.items()}, p)
    conv = build("conv2d", {"h": 5, "w": 4, "c": 3, "k": 2, "hk": 3, "wk": 3})
    inputs = {"X": rng.integers(-6, 7, size=(5, 4, 3)) / 2.0, "K": rng.integers(-6, 7, size=(2, 3, 3, 3)) / 2.0,
              "b": rng.integers(-6, 7, size=(2,)) / 2.0}
    _same_as_mpfr(conv, inputs, p)
    assert kernel_calls


@pytest.mark.parametrize("p", [8, 24])
def test_one_thread_and_two_give_the_same_bits(p: int, kernel_calls: list[int]) -> None:
    rng = np.random.default_rng(p)
    inputs = {"X": rng.normal(size=(64, 96)), "Y": rng.normal(size=(96, 80))}
    same_bits_on_one_and_all_threads(_matmul(64, 96, 80), inputs, p, 1024)
    assert kernel_calls


def test_rounding_on_the_bit_pattern_is_ties_to_even_at_every_p() -> None:
    """The kernel's rounding of single products against exact rational rounding (R.round_fraction)."""
    rng = np.random.default_rng(7)
    for p in range(2, 26):
        spread = (0, 2) if p <= 4 else (-5, 5)  # products inside F_p's range (F_2: [1/8, 24])
        a = p_bit(rng, p, (400,), spread)
        b = p_bit(rng, p, (400,), spread)
        b[:50] = 1.5  # a·1.5 has p + 1 bits: a tie at p bits for every odd significand of a
        y, abs_sum, exact, bad = jit_dot.Dot([a[:, None], b[:, None]], (400, 1), [0], None).sums(_kernels(p), check=True)
        expected = [R.round_fraction(Fraction(u) * Fraction(v), p) for u, v in zip(a, b)]
        assert [Fraction(v) for v in y] == expected and not bad.any(), p
        assert list(abs_sum) == [abs(v) for v in y] and exact.all()


@pytest.mark.parametrize("p", [8, 24])
def test_the_exactness_certificate_holds_for_any_order(p: int) -> None:
    """Rows the kernel calls exact have the exact rational sum as their binary64 sum in every
    order tried; rows of terms spanning more than 52 bits above the smallest ulp are not exact."""
    rng = np.random.default_rng(p)
    K = _kernels(p)
    a = p_bit(rng, p, (300, 24), (-4, 4))
    a[150:, 0] = np.ldexp(a[150:, 0], rng.integers(40 - p, 56 - p, 150))  # spans around 53 - p bits
    a[:100, 0] = 2.0**60  # 60 + p bits above the other terms' ulps: never exact
    a[100:150] = 0.0
    b = np.ones((1, 24))
    y, abs_sum, exact, _ = jit_dot.Dot([a, b], (300, 24), [0], None).sums(K, check=False)
    assert not exact[:100].any() and exact[100:150].all() and exact[150:].any()
    for i in range(300):  # the certificate's own definition, on exact rationals
        nonzero = [Fraction(t) for t in a[i] if t != 0]
        ulps = [Fraction(2) ** (R.floor_log2(abs(t)) - p + 1) for t in nonzero]
        assert exact[i] == (not nonzero or sum(map(abs, nonzero)) < min(ulps) * 2**52), i
    for i in np.flatnonzero(exact):
        terms = a[i].tolist()
        true = sum(map(Fraction, terms), Fraction(0))
        assert Fraction(y[i]) == true
        for order in (terms[::-1], sorted(terms), sorted(terms, key=abs)):
            assert Fraction(math.fsum(order)) == true and Fraction(sum(order)) == true


def _kernels(p: int):
    from tc0sim.fastfp import Kernels

    return Kernels(p)


def _erf_graph(n: int):
    from tc0sim.ir.graph import Builder

    b = Builder()
    b.output("y", b.erf(b.input("x", (n,))))
    return b.graph


@pytest.mark.parametrize("p", [2, 8, 11, 24, 25, 30])
def test_erf_certified_or_recomputed_matches_mpfr(p: int) -> None:
    """erf on the fast engine (binary64 erf certified against 2^-40, the rest by MPFR): normal
    arguments, zeros of both signs, saturation near ±6 and beyond, tiny and huge arguments."""
    rng = np.random.default_rng(p)
    spread = (-2, 2) if p == 2 else (-40, 8)
    specials = [0.0, -0.0, 5.9, -6.0, 27.0, 2.0**-30] if p > 2 else [0.0, -0.0, 2.0, -1.5]
    x = np.concatenate([p_bit(rng, p, (3000,), spread), specials, p_bit(rng, p, (200,), (-2, 2))])
    if p >= 11:
        x = np.concatenate([x, [2.0**-1000, -(2.0**-1020), 2.0**1000]])
    graph = _erf_graph(x.size)
    stats = _same_as_mpfr(graph, {"x": x}, p)
    if p <= 25:
        assert stats.certified > 0.99 * x.size


def test_binary64_erf_error_is_far_inside_the_assumed_bound() -> None:
    """The certificate assumes a relative error <= 2^-40 (fastfp.EXP_RELATIVE_ERROR); measure the
    C library's erf (through numba) against MPFR at 200 bits."""
    import gmpy2

    from tc0sim.engines.fast.jit_erf import erf

    rng = np.random.default_rng(5)
    x = np.concatenate([rng.normal(size=20_000) * 2, rng.uniform(-7, 7, 10_000), rng.normal(size=5_000) * 1e-3,
                        np.ldexp(rng.uniform(1, 2, 2_000), rng.integers(-1000, -10, 2_000))])
    y = erf(x)
    with gmpy2.context(precision=200):
        worst = max(abs(gmpy2.mpfr(float(a)) - e) / abs(e) for a, e in zip(y.tolist(), (gmpy2.erf(gmpy2.mpfr(v)) for v in x.tolist())))
    assert worst < 2.0**-50


EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.yaml"))


@pytest.mark.parametrize("path", EXAMPLES, ids=[f.stem for f in EXAMPLES])
def test_examples_are_bit_identical_across_engines_with_the_kernel(path: Path) -> None:
    """Every small example at p = 8 and 24, products fused (blocks of 257 elements): the fast
    engine's values or error are the MPFR engine's."""
    graph = load_model(path).build(None)
    if size(graph).total > 2 * 10**6:
        pytest.skip("too many gates to evaluate with MPFR here")
    for p in (8, 24):
        _same_as_mpfr(graph, {}, p, chunk=257)


def _fork_child_sum() -> float:
    graph = _matmul(64, 96, 80)
    inputs = {"X": np.full((64, 96), 0.5), "Y": np.full((96, 80), 0.25)}
    return float(engines.evaluate(graph, inputs, plan(graph, 8, "fast", chunk=1024), values="float64")["out"].sum())


def test_a_forked_child_runs_the_kernel_after_its_parent(kernel_calls: list[int]) -> None:
    """The kernel's thread pool survives fork (GNU OpenMP's would terminate the child), and
    threads calling it at once take turns."""
    import multiprocessing
    from concurrent.futures import ThreadPoolExecutor

    expected = 64 * 80 * 96 * 0.125
    assert _fork_child_sum() == expected and kernel_calls
    with multiprocessing.get_context("fork").Pool(1) as pool:
        assert pool.apply_async(_fork_child_sum).get(timeout=60) == expected
    with ThreadPoolExecutor(4) as threads:
        assert list(threads.map(lambda _: _fork_child_sum(), range(4))) == [expected] * 4


def test_a_small_job_in_a_fresh_process_stays_on_numpy_and_a_large_one_is_compiled() -> None:
    """Loading numba and the cached kernels costs about 0.45 s: a process that has not loaded them
    evaluates a small graph (the 4 × 4 · 4 × 8 matmul example) without them, and the memory
    estimate does not charge them; a graph of at least JIT_COLD_ELEMENTS elements uses them."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from tc0sim import engines\n"
        "from tc0sim.engines import plan\n"
        "from tc0sim.engines.fast import memory\n"
        "from tc0sim.modelfile import load_model\n"
        f"graph = load_model({str(Path(__file__).resolve().parents[1] / 'examples' / 'matmul.yaml')!r}).build(None)\n"
        "assert not memory.loads_jit(8, graph.live())\n"
        "engines.evaluate(graph, None, plan(graph, 8, 'fast'))\n"
        "print('numba' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"
    big = build("matmul", {"n1": 512, "d": 512, "n2": 512})  # 512³ products: 2^27 elements in one map
    assert sum(node.size for node in big.live()) >= fast_memory.JIT_COLD_ELEMENTS
    assert fast_memory.compiled_worthwhile(big.live())
