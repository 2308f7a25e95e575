"""The fast engine at 26 <= p <= 53 (the double-double kernels of tc0sim.fastfp_dd, wired in by
tc0sim.engines.fast.wide) through whole graphs, against independent oracles and the MPFR engine.

Oracles, none of them tc0sim code: gmpy2/MPFR called directly at precision p (one rounding of
each operation), exact rationals (fractions.Fraction rounded by tests/reference.py), Python
integers. Cases: constructed ties and near-midpoints where binary64 itself lands on a p-bit
midpoint (the double rounding trap), cancellation in sums, the limits of binary64's range (F_p
is wider there), whole examples, and a differential fuzz of the examples at every p in 2..53.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import gmpy2
import numpy as np
import pytest
from reference import round_fraction
from test_fastfp import EXAMPLES, _fuzz_inputs, bits_equal, run_map, run_reduce, same_outcome

from tc0sim.engines import ENGINES, plan
from tc0sim.fp import DivisionByZero, Format, NegativeSqrt
from tc0sim.interp.evaluate import EvalStats, evaluate
from tc0sim.interp.size import size
from tc0sim.ir.graph import Builder
from tc0sim.kinds import build
from tc0sim.modelfile import load_model

WIDE = (26, 32, 40, 52, 53)


def oracle(op, p: int, *cols: np.ndarray) -> np.ndarray:
    """op on gmpy2 mpfr values at precision p (exponent range far wider than binary64's)."""
    with gmpy2.context(precision=p, emin=-(1 << 20), emax=1 << 20):
        return np.array([float(op(*(gmpy2.mpfr(float(v)) for v in row))) for row in zip(*cols)])


def random_p_bit(rng: np.random.Generator, p: int, n: int, lo: int = -4, hi: int = 4) -> np.ndarray:
    """Random p-bit values with random signs and exponents in [lo, hi]."""
    m = rng.integers(1 << (p - 1), 1 << p, size=n, dtype=np.int64).astype(np.float64)  # exact: p <= 53
    return np.ldexp(m * rng.choice([-1.0, 1.0], n), rng.integers(lo, hi + 1, n) - (p - 1))


def on_midpoint(y: np.ndarray, p: int) -> np.ndarray:
    """Binary64 values that are p-bit midpoints (their low 53 − p bits are 10...0)."""
    if p == 53:
        return np.zeros(y.shape, dtype=bool)
    low = y.view(np.int64) & ((1 << (53 - p)) - 1)
    return low == 1 << (52 - p)


@pytest.mark.parametrize("p", WIDE)
def test_add_and_sub_ties_and_near_midpoints(p: int) -> None:
    """a in [1, 2) plus 2^-p (an exact tie: to even), plus 2^-p·(1 + 2^(1−p)) (just above the
    midpoint) and 2^-p·(1 − 2^-p) (just below): for p >= 28 binary64 rounds the last two onto the
    midpoint, and only the exact residual tells which way to go."""
    rng = np.random.default_rng([31, p])
    a = np.abs(random_p_bit(rng, p, 3000, 0, 0))
    half = np.ldexp(1.0, -p)
    for b in (np.full(a.size, half), np.full(a.size, half * (1 + 2.0 ** (1 - p))), np.full(a.size, half * (1 - half))):
        got = run_map("add", p, a, b)
        bits_equal(got, oracle(lambda x, y: x + y, p, a, b))
        bits_equal(run_map("sub", p, -a, b), -got)
    if 28 <= p < 53:
        trap = a + half * (1 + 2.0 ** (1 - p))
        assert on_midpoint(trap, p).all(), "the constructed sums must land binary64 on a midpoint"


@pytest.mark.parametrize("p", [40, 52, 53])
@pytest.mark.parametrize("prim", ["mul", "div", "sqrt"])
def test_mul_div_sqrt_match_mpfr_also_where_binary64_lands_on_a_midpoint(prim: str, p: int) -> None:
    rng = np.random.default_rng([32, p, len(prim)])
    n = 100_000
    a, b = random_p_bit(rng, p, n, -300, 300), random_p_bit(rng, p, n, -300, 300)
    if prim == "sqrt":
        a = np.abs(a)
        got, expected, y = run_map("sqrt", p, a), oracle(gmpy2.sqrt, p, a), np.sqrt(a)
    else:
        fn = {"mul": np.multiply, "div": np.divide}[prim]
        got, y = run_map(prim, p, a, b), fn(a, b)
        expected = oracle(lambda x, z: x * z if prim == "mul" else x / z, p, a, b)
    bits_equal(got, expected)
    if p < 53 and prim != "sqrt":
        assert on_midpoint(y, p).sum() > 5, "the sample must hold results binary64 puts on a midpoint"


@pytest.mark.parametrize("p", WIDE)
def test_exp_matches_mpfr(p: int) -> None:
    rng = np.random.default_rng([33, p])
    x = np.concatenate([rng.uniform(-20, 20, 20_000), rng.uniform(-700, 700, 2000), [0.0, -0.0]])
    x = oracle(lambda v: +v, p, x)  # arguments rounded to p bits
    stats = EvalStats()
    bits_equal(run_map("exp", p, x, stats=stats), oracle(gmpy2.exp, p, x))
    assert stats.certified >= 0.99 * x.size


def exact_sums(rows: np.ndarray, p: int) -> list[Fraction]:
    return [round_fraction(sum((Fraction(float(v)) for v in row), Fraction(0)), p) for row in rows]


@pytest.mark.parametrize("p", WIDE)
def test_sums_with_cancellation_and_midpoint_traps(p: int) -> None:
    """[big, small, −big, small] (binary64 loses the small terms), 1 + 2^-p ± a tiny term (binary64
    lands on the midpoint), and long rows of mixed magnitudes: the exact sum rounded once."""
    rng = np.random.default_rng([34, p])
    big, small = random_p_bit(rng, p, 400, 40, 80), random_p_bit(rng, p, 400, -40, -10)
    cancel = np.stack([big, small, -big, small], axis=1)
    tiny = np.ldexp(1.0, -p - 60)
    traps = np.array([[1.0, np.ldexp(1.0, -p), tiny, 0.0], [1.0, np.ldexp(1.0, -p), -tiny, tiny]] * 3)
    long_rows = random_p_bit(rng, p, 50 * 300, -60, 60).reshape(50, 300)
    for rows in (cancel, traps, long_rows):
        got = run_reduce("sum", p, rows)
        assert [Fraction(float(v)) for v in got] == exact_sums(rows, p)
    got = run_reduce("sum", p, traps)
    assert got[0] == 1 + np.ldexp(1.0, 1 - p) and got[1] == 1.0


@pytest.mark.parametrize("p", WIDE)
def test_products_match_python_integers(p: int) -> None:
    rng = np.random.default_rng([35, p])
    rows = random_p_bit(rng, p, 200 * 7, -3, 3).reshape(200, 7)
    expected = [round_fraction(np.prod([Fraction(float(v)) for v in row]), p) for row in rows]
    assert [Fraction(float(v)) for v in run_reduce("prod", p, rows)] == expected


def graph_of(fn, *shapes: tuple[int, ...]):
    b = Builder()
    with b.scope("op"):
        b.output("y", fn(b, *(b.input(f"x{i}", s) for i, s in enumerate(shapes))))
    return b.graph


@pytest.mark.parametrize("p", WIDE)
def test_results_beyond_binary64_and_back(p: int) -> None:
    """F_p (p >= 26) reaches far beyond binary64's normal range: an overflowing sum, an underflowing
    product, exp(710), a subnormal input are MPFR values of F_p (no error), and a node that fits
    binary64 again continues on the fast path."""
    F = Format(p)
    x = np.array([1.5 * 2.0**1023, 2.0**-600, 710.0, 5e-324])
    y = np.array([1.5 * 2.0**1023, 2.0**-500, 2.0, 2.0**-1000])
    b = Builder()
    with b.scope("op"):
        u, v = b.input("x0", (4,)), b.input("x1", (4,))
        for name, t in (("add", b.add(u, v)), ("mul", b.mul(u, v)), ("back", b.div(b.mul(u, v), v)), ("square", b.mul(u, u))):
            b.output(name, t)
    graph = b.graph
    stats = EvalStats()
    out = evaluate(graph, p, {"x0": x, "x1": y}, engine="fast", stats=stats)
    got = np.stack([out[name] for name in ("add", "mul", "back", "square")], axis=1)
    with gmpy2.context(precision=p, emin=-(1 << 20), emax=1 << 20):
        us, vs = [gmpy2.mpfr(float(t)) for t in x], [gmpy2.mpfr(float(t)) for t in y]
        expected = [[a + c, a * c, (a * c) / c, a * a] for a, c in zip(us, vs)]
    exact = [[Fraction(*e.as_integer_ratio()) for e in row] for row in expected]
    assert [[F.to_fraction(e) for e in row] for row in got.tolist()] == exact
    assert stats.recomputed > 0
    same_outcome(lambda: graph, p, {"x0": x, "x1": y})
    exp_graph = graph_of(lambda b, u: b.exp(u), (3,))
    args = (710.0, -745.5, 1.0)  # e^x above binary64's range, below it, and inside
    got = evaluate(exp_graph, p, {"x0": np.array(args)}, engine="fast")["y"]
    with gmpy2.context(precision=p, emin=-(1 << 20), emax=1 << 20):
        assert [F.to_fraction(e) for e in got] == [Fraction(*gmpy2.exp(gmpy2.mpfr(t)).as_integer_ratio()) for t in args]


@pytest.mark.parametrize("p", WIDE)
def test_errors_are_the_mpfr_engines(p: int) -> None:
    """Division by zero and the square root of a negative number: the same error and message."""
    graph = graph_of(lambda b, u, v: b.div(u, v), (3,), (3,))
    outcome = same_outcome(lambda: graph, p, {"x0": np.array([1.0, 2.0, 3.0]), "x1": np.array([1.0, 0.0, 2.0])})
    assert outcome[0] is DivisionByZero and "(1,)" in outcome[1]
    graph = graph_of(lambda b, u: b.sqrt(u), (3,))
    assert same_outcome(lambda: graph, p, {"x0": np.array([4.0, -1.0, 2.0])})[0] is NegativeSqrt


@pytest.mark.parametrize("path", EXAMPLES, ids=[f.stem for f in EXAMPLES])
def test_examples_are_bit_identical_across_engines_at_wide_precisions(path: Path) -> None:
    graph = load_model(path).build(None)
    if size(graph).total > 10**7:
        pytest.skip("released-size model: too many gates to evaluate here")
    for p in WIDE:
        same_outcome(lambda: graph, p, {}, chunk_elements=257)


@pytest.mark.parametrize("kind, dims", [("matmul", {"n1": 40, "d": 50, "n2": 30}), ("attention", {"n": 24, "d": 16}),
                                        ("layernorm", {"n": 30, "c": 64})])
def test_larger_graphs_bit_identical_and_rarely_recomputed(kind: str, dims: dict) -> None:
    graph = build(kind, dims)
    inputs = {name: np.random.default_rng(36).standard_normal(graph.node(i).shape) * 0.3 for name, i in graph.inputs.items()}
    for p in WIDE:
        assert same_outcome(lambda: graph, p, inputs, chunk_elements=1000)[0] == "ok"
        stats = EvalStats()
        evaluate(graph, p, inputs, stats=stats)
        assert stats.engine == "fast" and stats.recomputed <= 0.01 * sum(stats.gates.values())


@pytest.mark.parametrize("seed", range(4))
def test_differential_fuzz_of_the_examples_at_every_precision(seed: int) -> None:
    """Random examples, precisions 2..53, input scales, dtypes and --chunk sizes: the fast engine
    gives the MPFR engine's pairs, or its error (class and message)."""
    rng = np.random.default_rng([37, seed])
    graphs = [g for g in (load_model(f).build(None) for f in EXAMPLES) if size(g).total <= 20_000]
    for _ in range(30):
        graph = graphs[rng.integers(len(graphs))]
        p = int(rng.integers(2, 54))
        chunk = [None, 1, 3, 64][rng.integers(4)]
        same_outcome(lambda g=graph: g, p, _fuzz_inputs(graph, rng), chunk_elements=chunk)


def test_auto_picks_the_fast_engine_up_to_p53() -> None:
    graph = build("matmul", {"n1": 2, "d": 2, "n2": 2})
    assert [plan(graph, p).engine for p in (2, 25, 26, 53, 54)] == ["fast"] * 4 + ["mpfr"]
    assert ENGINES["fast"].supports(53) is None and "got p=54" in ENGINES["fast"].supports(54)
    assert ENGINES["fast"].memory_bytes(graph, 53) >= ENGINES["fast"].memory_bytes(graph, 25)


@pytest.mark.parametrize("p", [40, 52, 53])
def test_memory_estimate_bounds_the_measured_peak(p: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan's estimate (Variant.work_bytes per element of a block) is above what tracemalloc
    measures for a fused matmul (products in blocks of 2^18) and a layer norm, from an empty pool."""
    import tracemalloc

    from tc0sim.engines.fast import memory

    for kind, dims in (("matmul", {"n1": 128, "d": 128, "n2": 128}), ("layernorm", {"n": 256, "c": 512})):
        graph = build(kind, dims)
        inputs = {name: np.random.default_rng(38).standard_normal(graph.node(i).shape) for name, i in graph.inputs.items()}
        evaluate(graph, p, inputs, engine="fast", values="native")  # numba loads its kernels once per process
        for name, empty in (("free", {}), ("work", {}), ("pooled", 0)):  # this thread's pool and work arrays
            monkeypatch.setattr(memory._MEMORY, name, empty)
        tracemalloc.start()
        try:
            evaluate(graph, p, inputs, engine="fast", values="native")
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak <= ENGINES["fast"].memory_bytes(graph, p) <= 6 * peak, kind
