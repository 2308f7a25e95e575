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

from tc0sim import ddjit, ddsum
from tc0sim.engines import EvalStats
from tc0sim.engines.fast import pool
from tc0sim.fp import Format, FpArithmeticError
from tc0sim.interp.evaluate import evaluate
from tc0sim.ir.graph import Builder

N = ddjit.PARALLEL_MIN  # the parallel loops run

two_numba_threads = pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="numba has one thread here")


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


@two_numba_threads
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


@two_numba_threads
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


@two_numba_threads
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


@two_numba_threads
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
        on_threads(threads, ddsum.sum_rows, rows, p, out, flagged)
        results.append((out, flagged))
    assert same_bits(results[0][0], results[1][0]) and np.array_equal(results[0][1], results[1][1])
    assert np.signbit(results[0][0][n // 4: n // 2: 2]).all() and results[0][1][n // 2: n // 2 + 8].all()


# --- the fast engine: blocks in two halves (tc0sim.engines.fast.pool) ----------------------------

SHAPE = (60, 70)


def outcome(graph, p: int, inputs: dict, threads: str, monkeypatch, engine: str = "fast", split: bool = True) -> tuple:
    """(('ok', pairs by output), certified, recomputed) or (error class, message): the fast engine
    with every block of at least 64 elements split (threads '2') or none ('1'); or the MPFR engine.
    ``split``: whether a block is cut in halves on two threads (else: no block to split)."""
    monkeypatch.setenv(pool.THREADS_ENV, threads)
    monkeypatch.setattr(pool, "SPLIT_MIN", 64)
    calls = []
    side_by_side = pool.side_by_side
    monkeypatch.setattr(pool, "side_by_side", lambda f, g: calls.append(1) or side_by_side(f, g))
    stats = EvalStats()
    try:
        out = evaluate(graph, p, inputs, engine=engine, stats=stats, chunk_elements=1000)
    except FpArithmeticError as e:
        return type(e), str(e)
    finally:
        assert bool(calls) == (threads == "2" and engine == "fast" and split)  # halves exactly when asked
    return ("ok", {k: Format(p).to_pairs(v) for k, v in out.items()}), (stats.certified, stats.recomputed)


def elementwise_graph():
    b = Builder()
    x, y = b.input("x", SHAPE), b.input("y", SHAPE)
    b.output("sum", b.add(x, y))
    b.output("product", b.mul(x, y))
    b.output("quotient", b.div(x, y))
    b.output("exp", b.exp(x))
    b.output("matmul", b.sum(b.mul(b.reshape(x, (60, 70, 1)), b.reshape(y, (1, 70, 60))), axis=1))
    return b.graph


def hard_inputs(p: int, rng: np.random.Generator) -> dict:
    """p-bit x, y: sums that are exact ties (1 + 2^-p) and near-ties, x = −y (±0 results), products
    beyond binary64 (F_p holds them for p >= 10: MPFR values among floats), ordinary values."""
    x = random_fp(rng, p, rng.integers(-8, 5, SHAPE))  # |x| < 32: e^x inside F_8
    y = random_fp(rng, p, rng.integers(-8, 8, SHAPE))
    x[:10], y[:10] = 1.0, np.ldexp(1.0 + 2.0 * rng.integers(0, 3, (10, 70)), -p - 1)  # ties and next to them
    y[10:20] = -x[10:20]
    x[20:22, 5:9], y[20:22, 5:9] = -0.0, -1.0  # −0·(−1) = +0, −0/(−1) = +0
    if p >= 10:
        x[40, 3], y[40, 3] = 2.0**-600, 2.0**-600  # the product is below binary64, inside F_p's range
        x[55, 60], y[55, 60] = 2.0**-600, -(2.0**1000)  # x/y beyond binary64
    return {"x": x, "y": y}


@pytest.mark.parametrize("p", [8, 24, 40, 53])
def test_engine_one_and_two_threads_same_bits_as_mpfr(p: int, monkeypatch) -> None:
    graph, inputs = elementwise_graph(), hard_inputs(p, np.random.default_rng([9, p]))
    one, two = (outcome(graph, p, inputs, t, monkeypatch) for t in ("1", "2"))
    assert one == two and one[0][0] == "ok"  # values, certificates and recomputations alike
    assert one[0] == outcome(graph, p, inputs, "1", monkeypatch, engine="mpfr")[0]


@pytest.mark.parametrize("p, prim, big, zero", [(9, "mul", 2.0**300, None), (24, "div", 1.0, 0.0), (40, "div", 3.0, -0.0)])
def test_engine_first_error_in_element_order(p: int, prim: str, big: float, zero: float | None, monkeypatch) -> None:
    """Overflows (x·y beyond F_9) or divisions by zero in both halves of a block and in later
    blocks: the same error, naming the first element in row-major order, on one thread, on two and
    on the MPFR engine."""
    rng = np.random.default_rng([10, p])
    b = Builder()
    b.output("z", getattr(b, prim)(b.input("x", SHAPE), b.input("y", SHAPE)))
    for cells in ([(45, 3), (13, 8), (59, 69)], [(31, 0), (30, 69)], [(0, 1)]):
        x, y = random_fp(rng, p, rng.integers(-4, 4, SHAPE)), random_fp(rng, p, rng.integers(-4, 4, SHAPE))
        for i, j in cells:
            x[i, j], y[i, j] = big, (-big if zero is None else zero)
        results = [outcome(b.graph, p, {"x": x, "y": y}, t, monkeypatch, engine=e) for t, e in
                   (("1", "fast"), ("2", "fast"), ("1", "mpfr"))]
        assert results[0] == results[1] == results[2] and issubclass(results[0][0], FpArithmeticError)
        assert f"element {min(cells)}" in results[0][1], results[0][1]


@pytest.mark.parametrize("p", [8, 24, 40])
def test_entry_rounding_one_and_two_threads(p: int, monkeypatch) -> None:
    """Inputs of 53 bits rounded once on entry, by blocks in two halves: ties (to even), values a
    binary64 ulp off a midpoint, ±0, values below binary64's normal range; then one beyond F_8."""
    rng = np.random.default_rng([11, p])
    x = random_fp(rng, 53, rng.integers(-30, 30, SHAPE))
    x[:15] = np.ldexp(np.floor(x[:15] * 2.0**20) + 0.5, -20) if p <= 20 else x[:15]  # exact p-bit ties (p >= 21: random)
    x[15:20] = np.nextafter(np.ldexp(2.0 * np.arange(5 * 70).reshape(5, 70) + 3.0, -p), np.inf)
    x[20, :4] = [0.0, -0.0, 2.0**-1070, -(2.0**-1030)]
    b = Builder()
    b.output("y", b.neg(b.input("x", SHAPE)))
    results = [outcome(b.graph, p, {"x": x}, t, monkeypatch, engine=e, split=p <= 25)  # p >= 26: ddjit's threads
               for t, e in (("1", "fast"), ("2", "fast"), ("1", "mpfr"))]
    assert results[0] == results[1] and results[0][0] == results[2][0]
    x[33, 3], x[37, 1] = 2.0**300, 2.0**400
    errors = [outcome(b.graph, 8, {"x": x}, t, monkeypatch, engine=e) for t, e in (("1", "fast"), ("2", "fast"), ("1", "mpfr"))]
    assert errors[0] == errors[1] == errors[2] and issubclass(errors[0][0], FpArithmeticError)


def test_memory_estimate_bounds_the_peak_with_halves(monkeypatch) -> None:
    """The plan's estimate covers the pool thread's work arrays: a layer norm and a large
    elementwise product whose blocks (2^18 elements, the default) are split, tracemalloc's peak
    over every thread, each thread's work arrays emptied first."""
    import tracemalloc

    from tc0sim.engines.fast import memory
    from tc0sim.interp.evaluate import evaluation_bytes, random_inputs
    from tc0sim.kinds import build

    monkeypatch.setenv(pool.THREADS_ENV, "2")
    monkeypatch.setattr(pool, "SPLIT_MIN", 1 << 18)
    b = Builder()
    b.output("z", b.exp(b.mul(b.input("x", (1024, 1024)), b.input("y", (1024, 1024)))))
    for graph in (build("layernorm", {"n": 2048, "c": 512}), b.graph):
        inputs = random_inputs(graph, 0, 0.3)
        evaluate(graph, 24, inputs, engine="fast", values="native")
        memory._MEMORY.__init__()
        pool.side_by_side(lambda: None, memory._MEMORY.__init__)  # the pool thread's too
        tracemalloc.start()
        try:
            evaluate(graph, 24, inputs, engine="fast", values="native")
            measured = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        estimate = evaluation_bytes(graph, 24, "fast")
        assert measured <= estimate <= 2 * measured, (measured, estimate)


def test_a_bad_thread_setting_is_one_line_and_exit_2(tmp_path) -> None:
    """TC0SIM_THREADS other than 1 or 2 is refused before any work, on one line, with exit 2."""
    import os
    import subprocess
    import sys

    model = tmp_path / "mm.yaml"
    model.write_text("kind: matmul\ndims: {n1: 4, d: 4, n2: 4}\n")
    out = tmp_path / "out.npz"
    env = {**os.environ, "TC0SIM_THREADS": "many"}
    done = subprocess.run([sys.executable, "-m", "tc0sim", "eval", str(model), "--precision", "8", "--output", str(out)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["error: TC0SIM_THREADS='many': expected 1 (one thread) or 2 (both cores), or unset"]
    assert not out.exists()
    env["TC0SIM_THREADS"] = "1"
    done = subprocess.run([sys.executable, "-m", "tc0sim", "eval", str(model), "--precision", "8", "--output", str(out)],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and out.exists()
